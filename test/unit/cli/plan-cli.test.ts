import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, tempFiles } from "../../support/cli.js";

const NOW = "2026-01-01T00:10:00Z";
const GB = 1024;

function seedConfig(
  types: Record<string, { vcpus: number; memoryMiB: number }>,
  queue: Record<string, unknown> = {},
) {
  return {
    instanceTypes: types,
    queueConfigs: [
      {
        queueName: "compute",
        maxSize: 100,
        expansionNodeConfigs: Object.keys(types).map((instanceType) => ({ zone: "zone-1", instanceType })),
        ...queue,
      },
    ],
  };
}

function pendingJob(id: string, cpus: number, memMiB: number) {
  return {
    id,
    queue: "compute",
    state: "PENDING",
    submittedAt: "2026-01-01T00:00:00Z",
    nodes: 1,
    cpusPerNode: cpus,
    memPerNodeMiB: memMiB,
    gpusPerNode: 0,
  };
}

function plan(dir: string) {
  const r = runCli([
    "plan",
    "--config",
    join(dir, "config.json"),
    "--state",
    join(dir, "state.json"),
    "--now",
    NOW,
  ]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

describe("nowscale plan", () => {
  it("seed example a: a 4 CPU / 4 GB job launches A (4 vCPU / 16 GB), not B (8 / 8)", () => {
    // Prepare
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB }, B: { vcpus: 8, memoryMiB: 8 * GB } }),
      "state.json": { jobs: [pendingJob("17", 4, 4 * GB)], nodes: [] },
    });
    // Act
    const decision = plan(dir);
    // Assess
    expect(decision.launches).toEqual([
      expect.objectContaining({
        queue: "compute",
        instanceType: "A",
        zone: "zone-1",
        count: 1,
        candidates: [{ instanceType: "A", zone: "zone-1", chargeType: "ON_DEMAND" }],
        jobs: ["17"],
      }),
    ]);
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped).toEqual([]);
  });

  it("seed example b: a 4 CPU / 4 GB job launches B (4 / 8), not A (4 / 16)", () => {
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB }, B: { vcpus: 4, memoryMiB: 8 * GB } }),
      "state.json": { jobs: [pendingJob("17", 4, 4 * GB)], nodes: [] },
    });
    expect(plan(dir).launches.map((l: { instanceType: string }) => l.instanceType)).toEqual(["B"]);
  });

  it.each([
    [0, [50, 25, 13, 6, 3, 2, 1]],
    [20, [50, 25, 13, 12]],
  ])(
    "ratio 50, threshold %i: replaying plan with launched nodes as LAUNCHING gives rounds %j",
    (threshold, expected) => {
      // Prepare: 100 one-node jobs, so 100 nodes are needed.
      const jobs = Array.from({ length: 100 }, (_, i) => pendingJob(`j${i}`, 4, 4 * GB));
      const dir = tempFiles({
        "config.json": seedConfig(
          { c4: { vcpus: 4, memoryMiB: 8 * GB } },
          { scaleOutRatio: 50, scaleOutNodeThreshold: threshold },
        ),
      });
      const nodes: unknown[] = [];
      const rounds: number[] = [];
      // Act: each round, the nodes launched so far are LAUNCHING.
      for (let i = 0; i < 20; i++) {
        writeFileSync(join(dir, "state.json"), JSON.stringify({ jobs, nodes }));
        const launches: { count: number; instanceType: string; zone: string }[] = plan(dir).launches;
        const launched = launches.reduce((n, l) => n + l.count, 0);
        if (launched === 0) break;
        rounds.push(launched);
        for (const l of launches) {
          for (let k = 0; k < l.count; k++) {
            nodes.push({
              name: `n${nodes.length}`,
              queue: "compute",
              instanceType: l.instanceType,
              zone: l.zone,
              state: "LAUNCHING",
            });
          }
        }
      }
      // Assess
      expect(rounds).toEqual(expected);
    },
  );

  it("rejects an unknown key, naming the field, and prints no decision", () => {
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB } }, { scaleoutRatio: 50 }),
      "state.json": { jobs: [], nodes: [] },
    });
    const r = runCli(["plan", "--config", join(dir, "config.json"), "--state", join(dir, "state.json")]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("queueConfigs[0].scaleoutRatio: unknown key");
  });

  it("rejects a bad state field, naming it", () => {
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB } }),
      "state.json": { jobs: [{ ...pendingJob("1", 4, 100), cpusPerNode: -2 }], nodes: [] },
    });
    const r = runCli(["plan", "--config", join(dir, "config.json"), "--state", join(dir, "state.json")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/jobs\[0\]\.cpusPerNode: must be at least 1/);
  });

  it.each([
    [["--now", "yesterday"], /--now must be an ISO-8601 time/],
    [
      ["--state", "/nonexistent/state.json"],
      /cannot read state file \/nonexistent\/state.json: no such file/,
    ],
  ])("rejects bad options %j with a clear message", (extra, message) => {
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB } }),
      "state.json": "{}",
    });
    const args = ["plan", "--config", join(dir, "config.json"), "--state", join(dir, "state.json"), ...extra];
    const r = runCli(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("exits 2 (bad usage) for commander's own refusals, naming the option or what was meant", () => {
    // Act
    const missing = runCli(["plan", "--config", "examples/config.json"]);
    const typo = runCli(["plna", "--config", "examples/config.json"]);
    const help = runCli(["plan", "--help"]);
    // Assess
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("required option '--state <file>' not specified");
    expect(missing.stdout).toBe("");
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("(Did you mean plan?)");
    expect(help.status).toBe(0);
  });

  it("notes a node whose instance type the config does not name (a typo), beside its drain", () => {
    // Prepare: an idle node of type A (in the config) and one of "A.typo" (not), both idle 10 min
    // (past the default shrinkIdleTime).
    const idle = (name: string, instanceType: string) => ({
      name,
      queue: "compute",
      instanceType,
      zone: "zone-1",
      state: "IDLE",
      idleSince: "2026-01-01T00:00:00Z",
    });
    const dir = tempFiles({
      "config.json": seedConfig({ A: { vcpus: 4, memoryMiB: 16 * GB } }),
      "state.json": { jobs: [], nodes: [idle("known", "A"), idle("typo", "A.typo")] },
    });
    // Act
    const decision = plan(dir);
    // Assess: the decision is the usual one (both drained); the unknown type is said, by name.
    expect(decision.shrinks).toEqual([
      expect.objectContaining({ node: "known", action: "drain" }),
      expect.objectContaining({ node: "typo", action: "drain" }),
    ]);
    expect(decision.skipped).toEqual([
      {
        node: "typo",
        queue: "compute",
        code: "TYPE_NOT_CONFIGURED",
        reason: expect.stringMatching(
          /^instance type A\.typo is not in the config's catalog .*planned to drain/,
        ),
      },
    ]);
  });

  it("names a file that is not JSON", () => {
    const dir = tempFiles({ "config.json": "{ nope", "state.json": "{}" });
    const r = runCli(["plan", "--config", join(dir, "config.json"), "--state", join(dir, "state.json")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/config file .*config.json is not valid JSON/);
  });

  it("plans the shipped example", () => {
    const r = runCli(
      ["plan", "--config", "examples/config.json", "--state", "examples/state.json", "--now", NOW],
      {
        cwd: join(import.meta.dirname, "../../.."),
      },
    );
    expect(r.status).toBe(0);
    const decision = JSON.parse(r.stdout);
    expect(decision.launches.length).toBeGreaterThan(0);
    expect(decision.shrinks).toEqual([
      expect.objectContaining({ node: "compute-c5-3", action: "terminate" }),
    ]);
  });
});
