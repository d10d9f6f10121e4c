import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoCluster } from "../../lib/local/demo.js";
import { localPaths } from "../../lib/local/settings.js";
import { testbedUnavailableReason } from "../../lib/providers/local/slurm-testbed.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { CLI, runCliAsync } from "../support/cli.js";
import { until } from "../support/until.js";

/**
 * Day-2 commands on the local mode's real Slurm, as a user runs them (the built CLI): `use`, `nodes
 * list` while the cluster has scaled out to its jobs, and, once it has shrunk back to zero, `usage`
 * whose figures add up to the node records (every launched node, its launch as `nodes list` showed it,
 * its end no later than its TERMINATED event, hours × the configured price), `--csv` equal to `--json`,
 * and `history` naming local:root for the operator's creation. Its own prefix, subnet and ports keep it
 * apart from the other real-Slurm suites; run by hand under `flock /work/notes/slurm.lock`.
 */
const PORTS = { api: 7580, agent: 7519, slurmctld: 7517, slurmd: 7518 };
const PRICES: Record<string, number> = { "local.c1m1": 0.01, "local.c2m2": 0.02, "local.c2m4": 0.04 };

/** The demo's cluster with a price on each type, shrinking after 5 s idle. */
function pricedCluster() {
  const c = demoCluster(5);
  const types = c.autoscaling.instanceTypes as Record<string, { vcpus: number; memoryMiB: number }>;
  const priced = Object.fromEntries(
    Object.entries(types).map(([name, shape]) => [name, { ...shape, pricePerHour: PRICES[name] }]),
  );
  return { ...c, name: "ops", autoscaling: { ...c.autoscaling, instanceTypes: priced } };
}

describe("day-2 commands on the local mode's real Slurm", () => {
  let stateDir = "";
  let configDir = "";
  let clusterId = "";

  const cli = (args: string[]) =>
    runCliAsync(args, { NOWSCALE_LOCAL_DIR: stateDir, NOWSCALE_CONFIG_DIR: configDir });

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-ops-"));
    configDir = await mkdtemp(join(tmpdir(), "nowscale-ops-config-"));
    const up = await cli([
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
      "nsop-",
      "--subnet",
      "192.168.241",
      "--interval",
      "2",
      "--boot-delay",
      "200",
    ]);
    if (up.status !== 0) throw new Error(`local up failed: ${up.stdout}${up.stderr}`);
  }, 240_000);

  afterAll(async () => {
    if (stateDir !== "") {
      const down = await cli(["local", "down", "--state-dir", stateDir]);
      expect(down.status, down.stderr).toBe(0);
      await rm(stateDir, { recursive: true, force: true });
    }
    if (configDir !== "") await rm(configDir, { recursive: true, force: true });
  }, 240_000);

  it("lists the nodes while it has scaled, and usage afterwards adds up to the node records", async () => {
    // Prepare: the cluster, created with the CLI and chosen as the current one
    const file = join(configDir, "cluster.json");
    await writeFile(file, JSON.stringify(pricedCluster()));
    const created = await cli(["cluster", "create", "--file", file, "--wait", "--json"]);
    expect(created.status, created.stderr).toBe(0);
    clusterId = JSON.parse(created.stdout).clusterId;
    const use = await cli(["use", clusterId]);
    expect(use.status, use.stderr).toBe(0);

    // Act: three jobs make it grow (two one-CPU jobs in compute, one large-memory job in bigmem)
    const env = { ...process.env, SLURM_CONF: join(localPaths(stateDir).slurmDir, "slurm.conf") };
    for (const args of [
      ["-p", "compute", "-n1", "--wrap", "sleep 8"],
      ["-p", "compute", "-n1", "--wrap", "sleep 8"],
      ["-p", "bigmem", "--mem=3000", "--wrap", "sleep 8"],
    ]) {
      const job = await runCommand("sbatch", ["--output=/dev/null", ...args], { env });
      expect(job.code, job.stderr).toBe(0);
    }
    // Watch `nodes list` (the current cluster) until nodes are in Slurm, keeping every record seen
    const seen = new Map<string, { launchedAt: string; instanceType: string; queue: string }>();
    const table = await until(
      "two nodes in Slurm",
      async () => {
        const list = await cli(["nodes", "list", "--json"]);
        expect(list.status, list.stderr).toBe(0);
        const nodes = JSON.parse(list.stdout).nodes as {
          node: string;
          launchedAt: string;
          instanceType: string;
          queue: string;
          slurmState: string | null;
        }[];
        for (const n of nodes) seen.set(n.node, n);
        if (nodes.length < 2 || nodes.filter((n) => n.slurmState !== null).length < 2) return undefined;
        return (await cli(["nodes", "list"])).stdout;
      },
      120_000,
    );
    // Assess the list: a table with each node, its queue, type, zone and Slurm's state
    expect(table).toMatch(
      /^NODE\s+QUEUE\s+TYPE\s+ZONE\s+STATUS\s+SLURM\s+LAUNCHED\s+IDLE\s+HOURS\s+COST\s+REBUILD$/m,
    );
    expect(table).toMatch(
      /\s(compute|bigmem)\s+local\.c\d+m\d+\s+local-[ab]\s+(LAUNCHING|JOINED|DRAINING)\s+[A-Z]+/,
    );

    // Act: wait until the jobs are done and the cluster is back to zero nodes
    await until(
      "the cluster back to zero nodes",
      async () => {
        const list = await cli(["nodes", "list", clusterId, "--json"]);
        const nodes = JSON.parse(list.stdout).nodes as {
          node: string;
          launchedAt: string;
          instanceType: string;
          queue: string;
        }[];
        for (const n of nodes) seen.set(n.node, n);
        return nodes.length === 0 ? true : undefined;
      },
      150_000,
      2000,
    );
    const usage = await cli(["usage", "--json"]);
    const csv = await cli(["usage", "--csv"]);
    const history = await cli(["history", "--limit", "200", "--json"]);

    // Assess: every launched node is in the usage, ended, its hours its own (end − launch)
    expect(usage.status, usage.stderr).toBe(0);
    const report = JSON.parse(usage.stdout) as {
      rows: {
        day: string;
        queue: string;
        instanceType: string;
        nodes: number;
        nodeHours: number;
        cost: number | null;
      }[];
      total: { nodeHours: number; cost: number; unpricedNodeHours: number };
      nodes: {
        node: string;
        queue: string;
        instanceType: string;
        launchedAt: string;
        endedAt?: string;
        hours: number;
        cost: number | null;
      }[];
    };
    const events = (
      JSON.parse(history.stdout) as {
        events: { kind: string; at: string; nodes?: string[]; by?: string; message: string }[];
      }
    ).events;
    const launched = new Set(events.filter((e) => e.kind === "LAUNCHED").flatMap((e) => e.nodes ?? []));
    expect(launched.size).toBeGreaterThanOrEqual(2);
    expect(new Set(report.nodes.map((n) => n.node))).toEqual(launched);
    for (const n of report.nodes) {
      const record = seen.get(n.node);
      if (record !== undefined) {
        expect(n.launchedAt, n.node).toBe(record.launchedAt);
        expect(n.instanceType).toBe(record.instanceType);
        expect(n.queue).toBe(record.queue);
      }
      expect(n.endedAt, `${n.node} ended`).toBeDefined();
      const span = (Date.parse(n.endedAt as string) - Date.parse(n.launchedAt)) / 3_600_000;
      expect(n.hours).toBeCloseTo(span, 5);
      expect(n.cost).toBeCloseTo(span * (PRICES[n.instanceType] as number), 5);
      // Its end is the retirement: no later than the event that says it was terminated
      const terminated = events.find((e) => e.kind === "TERMINATED" && (e.nodes ?? []).includes(n.node));
      if (terminated !== undefined)
        expect(Date.parse(n.endedAt as string)).toBeLessThanOrEqual(Date.parse(terminated.at));
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(report.total.nodeHours).toBeCloseTo(sum(report.nodes.map((n) => n.hours)), 5);
    expect(report.total.nodeHours).toBeCloseTo(sum(report.rows.map((r) => r.nodeHours)), 5);
    expect(report.total.cost).toBeCloseTo(sum(report.nodes.map((n) => n.cost ?? 0)), 5);
    expect(report.total.unpricedNodeHours).toBe(0);
    // --csv holds the same rows
    const lines = csv.stdout.trimEnd().split("\r\n");
    expect(lines[0]).toBe("cluster,day,queue,instance_type,nodes,node_hours,price_per_hour,cost");
    expect(lines.slice(1)).toEqual(
      report.rows.map((r) =>
        [
          clusterId,
          r.day,
          r.queue,
          r.instanceType,
          r.nodes,
          r.nodeHours,
          PRICES[r.instanceType],
          r.cost,
        ].join(","),
      ),
    );
    // history: the creation was the operator's (the local token's principal); scaling was NowScale's
    expect(events.find((e) => e.message === "cluster creation started")?.by).toBe("local:root");
    expect(events.filter((e) => e.kind === "LAUNCHED").every((e) => e.by === undefined)).toBe(true);
    console.log(
      `ops: ${report.nodes.length} nodes, ${report.total.nodeHours.toFixed(6)} node-hours, cost ${report.total.cost.toFixed(6)}; ` +
        report.nodes.map((n) => `${n.node} ${n.instanceType} ${(n.hours * 3600).toFixed(1)} s`).join(", "),
    );
  }, 400_000);
});
