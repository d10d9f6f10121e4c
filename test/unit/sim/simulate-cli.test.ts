import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { swf } from "./helpers.js";

/** The built CLI, run as a user would (build first: npm run build). */
const CLI = resolve(import.meta.dirname, "../../../dist/bin/nowscale.js");

function nowscale(args: readonly string[]) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A temp dir with a trace and the one-queue config of the hand-made scenarios. */
function inputs(trace: string, queue: { maxSize?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "nowscale-sim-"));
  writeFileSync(join(dir, "trace.swf"), trace);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      instanceTypes: { n4: { vcpus: 4, memoryMiB: 8192, pricePerHour: 0.4 } },
      queueConfigs: [
        {
          queueName: "q",
          maxSize: queue.maxSize ?? 50,
          expansionNodeConfigs: [{ zone: "z1", instanceType: "n4" }],
        },
      ],
      simulation: { queueMap: { "*": "q" } },
    }),
  );
  return dir;
}

describe("nowscale simulate (built CLI)", () => {
  it("prints every policy's metrics as JSON and writes a self-contained HTML report", () => {
    // Prepare: the one-job trace worked out in scenarios.test.ts (thpc: wait 300 s, 0.3 node-hours).
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));
    const report = join(dir, "report.html");

    // Act
    const r = nowscale([
      "simulate",
      "--trace",
      join(dir, "trace.swf"),
      "--config",
      join(dir, "config.json"),
      "--compare",
      "thpc,packed,static:2,per-job",
      "--json",
      "--out",
      report,
    ]);

    // Assess
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out.policies)).toEqual(["thpc", "packed", "static:2", "per-job"]);
    expect(out.policies.thpc).toMatchObject({
      jobs: 1,
      completedJobs: 1,
      meanWaitS: 300,
      nodeHours: 0.3,
      cost: 0.12,
    });
    expect(out.policies["per-job"]).toMatchObject({ meanWaitS: 180, launches: 1 });
    expect(out.policies["static:2"]).toMatchObject({ meanWaitS: 0, launches: 2 });
    expect(out.settings).toMatchObject({ pollSeconds: 60, bootSeconds: "180", seed: 1 });
    expect(out.trace.header).toEqual({ Version: "2" });
    const html = readFileSync(report, "utf8");
    expect(html).toContain("<svg");
    expect(html).toContain("static:2");
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    expect(r.stderr).toContain("report written to");
  });

  it("refuses a report path whose directory is missing before replaying, naming it", () => {
    // Prepare
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));
    const report = join(dir, "no-such-dir", "report.html");

    // Act
    const r = nowscale([
      "simulate",
      "--trace",
      join(dir, "trace.swf"),
      "--config",
      join(dir, "config.json"),
      "--out",
      report,
    ]);

    // Assess: nothing replayed, nothing printed on stdout
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--out ${report}: no directory ${join(dir, "no-such-dir")}`);
    expect(r.stdout).toBe("");
    expect(existsSync(report)).toBe(false);
  });

  it("--set overrides config fields and simulation levers, and names an unknown field", () => {
    // Prepare: the one-job trace: thpc waits busy time 120 s + boot 180 s; with busy time 0 it
    //   launches at poll 0 and waits only the boot; with same-poll terminate off the drain tail is back
    //   (one poll of the 4-vCPU node, drained and empty: 240 vCPU-s).
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));
    const base = [
      "simulate",
      "--trace",
      join(dir, "trace.swf"),
      "--config",
      join(dir, "config.json"),
      "--json",
    ];

    // Act
    const set = nowscale([...base, "--set", "expansionBusyTime=0,simulation.terminateAtDrain=false"]);
    const bad = nowscale([...base, "--set", "shrinkIdle=60"]);

    // Assess
    expect(set.status).toBe(0);
    const out = JSON.parse(set.stdout);
    expect(out.policies.thpc).toMatchObject({ meanWaitS: 180 });
    expect(out.policies.thpc.breakdown.drainTail).toBeCloseTo(240 / 3600, 2);
    expect(out.settings.levers).toEqual({
      terminateAtDrain: false,
      wakeSeconds: null,
      placement: "fewest-free",
    });
    expect(out.bound.vcpuHours).toBeCloseTo((4 * (180 + 600)) / 3600, 2);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--set: unknown field "shrinkIdle"/);
    expect(bad.stdout).toBe("");
  });

  it("prints a table by default and no progress bar when stderr is not a terminal", () => {
    // Prepare
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));

    // Act
    const r = nowscale(["simulate", "--trace", join(dir, "trace.swf"), "--config", join(dir, "config.json")]);

    // Assess: the config's policy (thpc by default) only.
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^policy\s+done\s+never ran\s+mean wait/m);
    expect(r.stdout).toMatch(/^thpc\s+1\/1\s+0\s+5.0m/m); // 300 s
    expect(r.stderr).toBe("");
  });

  it("counts jobs that never started and prints their waits as lower bounds, never a 0 wait", () => {
    // Prepare: a 16-processor job on a queue of at most 2 four-vCPU nodes can never start.
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 16 }]), { maxSize: 2 });

    // Act
    const r = nowscale(["simulate", "--trace", join(dir, "trace.swf"), "--config", join(dir, "config.json")]);

    // Assess
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^thpc\s+0\/1\s+1\s+≥\d/m);
    expect(r.stdout).not.toMatch(/^thpc\s+0\/1\s+1\s+0s/m);
  });

  it("draws the progress bar on stderr only, with --progress, keeping --json stdout clean", () => {
    // Prepare
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));

    // Act
    const r = nowscale([
      "simulate",
      "--trace",
      join(dir, "trace.swf"),
      "--config",
      join(dir, "config.json"),
      "--json",
      "--progress",
    ]);

    // Assess
    expect(r.status).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(r.stderr).toContain("simulate thpc");
  });

  it("names the line of a malformed trace and exits 2", () => {
    // Prepare
    const dir = inputs("; Version: 2\n1 0 -1 600 4 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1\n2 0 -1 600\n");

    // Act
    const r = nowscale(["simulate", "--trace", join(dir, "trace.swf"), "--config", join(dir, "config.json")]);

    // Assess
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/line 3: expected 18 fields, found 4/);
    expect(r.stdout).toBe("");
  });

  it("rejects an unknown policy and a bad boot time with the fix in the message", () => {
    // Prepare
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));
    const base = ["simulate", "--trace", join(dir, "trace.swf"), "--config", join(dir, "config.json")];

    // Act
    const policy = nowscale([...base, "--compare", "thpc,fastest"]);
    const boot = nowscale([...base, "--boot-seconds", "soon"]);

    // Assess
    expect(policy.status).toBe(2);
    expect(policy.stderr).toMatch(/unknown policy "fastest".*static:N/);
    expect(boot.status).toBe(2);
    expect(boot.stderr).toMatch(/--boot-seconds: .*uniform:MIN:MAX/);
  });

  it("rejects an unknown key in the simulation section, naming it", () => {
    // Prepare
    const dir = inputs(swf([{ id: 1, submit: 0, run: 600, procs: 4 }]));
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    config.simulation.capacty = [];
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));

    // Act
    const r = nowscale(["simulate", "--trace", join(dir, "trace.swf"), "--config", join(dir, "config.json")]);

    // Assess
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/capacty: unknown key/);
  });
});
