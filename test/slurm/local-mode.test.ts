import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { listNamespaceNodes, sleep, vethName } from "../../lib/local/netns.js";
import { localPaths } from "../../lib/local/settings.js";
import { testbedUnavailableReason } from "../../lib/local/slurm-testbed.js";
import { readLocalState } from "../../lib/local/state-file.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI } from "../support/cli.js";

/**
 * `nowscale local up/down` as a user runs them (the built CLI, a background supervisor, real Slurm):
 * a cluster created through the API grows to its jobs and shrinks to zero, and `local down` leaves
 * nothing behind, also after the supervisor was killed with SIGKILL mid-run. Its own prefix, subnet and
 * ports keep it apart from the other real-Slurm suites; run by hand under `flock /tmp/slurm-test.lock`.
 */
const PREFIX = "nslm-";
const SUBNET = "192.168.254";
const PORTS = { api: 7380, agent: 7319, slurmctld: 7317, slurmd: 7318 };
const API = `http://127.0.0.1:${PORTS.api}`;

const CLUSTER = {
  name: "e2e",
  cloud: "local",
  region: "local",
  network: { vpcId: "local-vpc", subnetIds: ["local-subnet"] },
  master: { instanceType: "local.master", zone: "local-a", imageId: "local" },
  autoscaling: {
    expansionBusyTime: 0,
    shrinkIdleTime: 5,
    instanceTypes: {
      "local.c1m1": { vcpus: 1, memoryMiB: 1024 },
      "local.c2m2": { vcpus: 2, memoryMiB: 2048 },
      "local.c2m4": { vcpus: 2, memoryMiB: 4096 },
    },
    queueConfigs: [
      {
        queueName: "compute",
        maxSize: 4,
        scaleUpMemRatio: 1,
        expansionNodeConfigs: [
          { zone: "local-a", instanceType: "local.c1m1" },
          { zone: "local-a", instanceType: "local.c2m2" },
        ],
      },
      {
        queueName: "bigmem",
        maxSize: 1,
        scaleUpMemRatio: 1,
        expansionNodeConfigs: [{ zone: "local-b", instanceType: "local.c2m4" }],
      },
    ],
  },
};

function cli(args: string[], timeoutMs = 240_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function up(stateDir: string) {
  return cli([
    "local",
    "up",
    "--state-dir",
    stateDir,
    "--port",
    String(PORTS.api),
    "--agent-port",
    String(PORTS.agent),
    "--slurmctld-port",
    String(PORTS.slurmctld),
    "--slurmd-port",
    String(PORTS.slurmd),
    "--prefix",
    PREFIX,
    "--subnet",
    SUBNET,
    "--interval",
    "2",
    "--boot-delay",
    "200",
  ]);
}

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${API}${path}`, init);
  return { status: res.status, body: await res.json() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

async function createRunningCluster(): Promise<string> {
  const created = await api("/clusters", { method: "POST", body: JSON.stringify(CLUSTER) });
  expect(created.status).toBe(202);
  const id = (created.body as { clusterId: string }).clusterId;
  await waitFor(
    "the cluster to be RUNNING",
    async () => ((await api(`/clusters/${id}`)).body as { status: string }).status === "RUNNING" || undefined,
    60_000,
  );
  return id;
}

function slurm(stateDir: string) {
  const env = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
  return (file: string, args: string[]) => runCommand(file, args, { env, timeoutMs: 30_000 });
}

/** Processes whose command line or environment mentions the state directory (slurmd gets SLURM_CONF). */
function processesOf(stateDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = `${readFileSync(`/proc/${entry}/cmdline`, "utf8")}\0${readFileSync(`/proc/${entry}/environ`, "utf8")}`;
      if (text.includes(stateDir)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function expectClean(stateDir: string, nodes: readonly string[]): Promise<void> {
  expect(await listNamespaceNodes(PREFIX)).toEqual([]);
  for (const node of nodes) {
    expect((await runCommand("ip", ["link", "show", "dev", vethName(`${PREFIX}${node}`)])).code).not.toBe(0);
  }
  expect((await runCommand("ip", ["link", "show", "dev", `${PREFIX}br`])).code).not.toBe(0);
  expect(processesOf(stateDir)).toEqual([]);
  const paths = localPaths(stateDir);
  for (const gone of [paths.stateFile, paths.lockFile, paths.agentKey, paths.instancesDir]) {
    expect(existsSync(gone), gone).toBe(false);
  }
  // slurmctld's saved state holds the dynamic nodes: without it no node can come back.
  expect(existsSync(join(paths.slurmDir, "ctld"))).toBe(false);
}

describe("nowscale local up/down on a real Slurm", () => {
  beforeAll(() => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  });

  it("grows a cluster to its jobs, shrinks it to zero, and down leaves nothing behind", async () => {
    // Prepare
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-mode-"));
    const started = up(stateDir);
    expect(started.status, started.out).toBe(0);
    const run = slurm(stateDir);
    const seen = new Set<string>();
    try {
      const id = await createRunningCluster();

      // Act: jobs of varied shapes, one of them on two nodes
      const jobs = [
        ["-p", "compute", "-n1", "--wrap", "sleep 2"],
        ["-p", "compute", "-N2", "--wrap", "sleep 2"],
        ["-p", "bigmem", "--mem=3000", "--wrap", "sleep 2"],
      ];
      for (const args of jobs) expect((await run("sbatch", args)).code).toBe(0);
      await waitFor(
        "every job to finish",
        async () => {
          for (const n of await listNamespaceNodes(PREFIX)) seen.add(n);
          const q = await run("squeue", ["-h"]);
          return q.code === 0 && q.stdout.trim() === "" ? true : undefined;
        },
        180_000,
      );
      await waitFor(
        "the cluster to shrink to zero nodes",
        async () => {
          const nodes = await run("sinfo", ["-h", "-N", "-o", "%N"]);
          return nodes.stdout.trim() === "" && (await listNamespaceNodes(PREFIX)).length === 0
            ? true
            : undefined;
        },
        120_000,
      );

      // Assess: launched for every job (the multi-node job got two nodes), and all of them terminated
      const events = (await api(`/clusters/${id}/events?limit=1000`)).body as {
        events: { kind: string; count?: number }[];
      };
      const launched = events.events
        .filter((e) => e.kind === "LAUNCHED")
        .reduce((s, e) => s + (e.count ?? 0), 0);
      const terminated = events.events.filter((e) => e.kind === "TERMINATED").length;
      expect(launched).toBeGreaterThanOrEqual(4);
      expect(terminated).toBe(launched);
      expect(seen.size).toBe(launched);
    } finally {
      // Act: down
      const down = cli(["local", "down", "--state-dir", stateDir]);
      expect(down.status, down.out).toBe(0);
    }

    // Assess
    await expectClean(stateDir, [...seen]);
  }, 420_000);

  it("after the supervisor is killed with SIGKILL mid-run, down leaves nothing behind", async () => {
    // Prepare: a running cluster with a node that runs a long job
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-kill-"));
    const started = up(stateDir);
    expect(started.status, started.out).toBe(0);
    const run = slurm(stateDir);
    await createRunningCluster();
    expect((await run("sbatch", ["-p", "compute", "--wrap", "sleep 600"])).code).toBe(0);
    const nodes = await waitFor(
      "a node running the job",
      async () => {
        const q = await run("squeue", ["-h", "-t", "R", "-o", "%N"]);
        return q.stdout.trim() !== "" ? await listNamespaceNodes(PREFIX) : undefined;
      },
      120_000,
    );
    const state = readLocalState(stateDir);
    expect(state?.phase).toBe("ready");
    expect(processesOf(stateDir).length).toBeGreaterThan(2);

    // Act: kill the supervisor as a crash would, then down
    process.kill(state?.supervisorPid as number, "SIGKILL");
    await sleep(500);
    const down = cli(["local", "down", "--state-dir", stateDir]);

    // Assess
    expect(down.status, down.out).toBe(0);
    await expectClean(stateDir, nodes);
  }, 420_000);
});
