import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobGroup, type OkReport, parseReport, type Report } from "../../lib/ports/agent-report.js";
import { signRequest } from "../../lib/ports/agent-signing.js";
import { killNamespaceProcesses, listNamespaceNodes, sleep } from "../../lib/providers/local/netns.js";
import {
  startSlurmctld,
  startTestbed,
  stopSlurmctld,
  stopTestbed,
  type Testbed,
  testbedPaths,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import { addTestbedNode, removeTestbedNode } from "../../lib/providers/local/testbed-nodes.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";

/**
 * The agent against a real Slurm (the "Done when"): the one-file bundle reports what sbatch
 * submitted, a namespace node runs a job, the signed HTTP API drains and deletes the node, and a stopped
 * slurmctld is reported as an outage. Its own bridge, subnet, ports and namespace prefix keep it apart
 * from the other real-Slurm tests; run by hand under `flock /tmp/slurm-test.lock npm run test:slurm`.
 */
describe("nowscale-agent on a real Slurm", () => {
  const prefix = "nsag-";
  const bridge = "nsag-br";
  const key = "agent-test-key-0123456789abcdef0123456789";
  let tb: Testbed;
  let bundle: string;
  let serve: ChildProcess | undefined;
  let baseUrl: string;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const sbatch = (args: string[]) => slurm("sbatch", ["--parsable", "--output=/dev/null", ...args]);
  const agentReport = async (): Promise<{ code: number | null; report: Report }> => {
    const r = await runCommand(process.execPath, [bundle, "report"], { env: tb.env, timeoutMs: 60_000 });
    return { code: r.code, report: parseReport(JSON.parse(r.stdout)) };
  };
  const okReport = async (): Promise<OkReport> => {
    const { code, report } = await agentReport();
    if (report.status !== "ok") throw new Error(`expected an ok report, got ${JSON.stringify(report)}`);
    expect(code).toBe(0);
    return report;
  };
  const call = async (method: string, path: string, body?: string) => {
    const headers = signRequest(Buffer.from(key), { method, path, ...(body === undefined ? {} : { body }) });
    const res = await fetch(baseUrl + path, { method, headers, ...(body === undefined ? {} : { body }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const until = async <T>(
    what: string,
    probe: () => Promise<T | undefined>,
    timeoutMs = 60_000,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value !== undefined) return value;
      await sleep(500);
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-agent-test-"));
    // The very file that goes to masters, built the way `npm run build:agent` builds it.
    bundle = join(stateDir, "nowscale-agent.js");
    await build({
      entryPoints: [join(import.meta.dirname, "..", "..", "agent", "cli.ts")],
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      minify: true,
      keepNames: true,
      outfile: bundle,
      logLevel: "error",
    });
    tb = await startTestbed({
      stateDir,
      clusterName: "agenttest",
      queues: [{ name: "compute" }, { name: "gpu", defMemPerCpuMiB: 1000 }],
      network: { bridge, hostAddress: "192.168.252.1" },
      netnsPrefix: prefix,
      slurmctldPort: 7017,
      slurmdPort: 7018,
    });
  }, 180_000);

  afterAll(async () => {
    serve?.kill("SIGTERM");
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  it("reports sbatch jobs of varied shapes, grouped, with blocked jobs apart", async () => {
    // Prepare
    const multiNode = await sbatch(["-N", "2", "--wrap", "true"]);
    const mem = await sbatch(["-n", "3", "--mem=2000", "--wrap", "true"]);
    const memPerCpu = await sbatch(["-n", "4", "-c", "2", "--mem-per-cpu=100", "--wrap", "true"]);
    const exclusive = await sbatch(["--exclusive", "-c", "2", "--wrap", "true"]);
    const held = await sbatch(["-H", "--wrap", "true"]);
    const dependent = await sbatch([`--dependency=afterok:${held}`, "--wrap", "true"]);
    const same = [];
    for (let i = 0; i < 3; i++) same.push(await sbatch(["-c", "3", "--mem=500", "--wrap", "true"]));
    const gpuQueue = await sbatch(["-p", "gpu", "-c", "2", "--wrap", "true"]);

    // Act
    const report = await okReport();

    // Assess
    const group = (id: string): JobGroup | undefined => report.jobs.find((g) => g.jobIds.includes(id));
    expect(report.slurmVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(report.source).toBe("json");
    expect(group(multiNode)).toMatchObject({ state: "PENDING", queue: "compute", nodes: 2, cpusPerNode: 1 });
    expect(group(mem)).toMatchObject({ state: "PENDING", nodes: 1, cpusPerNode: 3, memPerNodeMiB: 2000 });
    expect(group(memPerCpu)).toMatchObject({
      state: "PENDING",
      tasks: 4,
      cpusPerTask: 2,
      memPerTaskMiB: 200,
    });
    expect(group(exclusive)).toMatchObject({ state: "PENDING", exclusive: true, cpusPerNode: 2 });
    expect(group(held)).toMatchObject({ state: "BLOCKED", reason: "JobHeldUser" });
    expect(group(dependent)).toMatchObject({ state: "BLOCKED", reason: "Dependency" });
    expect(group(same[0] as string)).toMatchObject({
      state: "PENDING",
      count: 3,
      cpusPerNode: 3,
      memPerNodeMiB: 500,
    });
    expect(group(same[0] as string)?.jobIds.sort()).toEqual([...same].sort());
    expect(group(gpuQueue)).toMatchObject({
      state: "PENDING",
      queue: "gpu",
      cpusPerNode: 2,
      memPerNodeMiB: 2000,
    });
    const pendingJobs = report.jobs.filter((g) => g.state === "PENDING").reduce((n, g) => n + g.count, 0);
    expect(pendingJobs).toBe(8);
    expect(
      report.jobs.find((g) => g.state === "PENDING" && g.oldestSubmittedAt === undefined),
    ).toBeUndefined();

    await slurm("scancel", ["--user=root"]);
  });

  it("sees a job run on a namespace node started with slurmd -Z", async () => {
    // Prepare
    await addTestbedNode(tb, {
      name: "c4-a",
      address: "192.168.252.11",
      cpus: 4,
      realMemoryMiB: 4000,
      features: placementFeatures({ queue: "compute", instanceType: "local.c4m4", zone: "local-a" }),
    });
    const marker = join(tb.stateDir, "ran-on");
    // Act
    const job = await sbatch([
      "-c",
      "1",
      "--mem=100",
      "--wrap",
      `echo "$SLURMD_NODENAME" > ${marker}; sleep 600`,
    ]);
    // Assess
    const running = await until("the job to run", async () => {
      const report = await okReport();
      return report.jobs.find((g) => g.state === "RUNNING" && g.jobIds.includes(job));
    });
    expect(running.nodeNames).toEqual(["c4-a"]);
    const ranOn = await until("the job's output", async () =>
      existsSync(marker) ? (await readFile(marker, "utf8")).trim() || undefined : undefined,
    );
    expect(ranOn).toBe("c4-a");
    const node = (await okReport()).nodes.find((n) => n.name === "c4-a");
    expect(node).toMatchObject({
      queue: "compute",
      instanceType: "local.c4m4",
      zone: "local-a",
      state: "MIXED",
      cpus: 4,
      cpusAllocated: 1,
    });
  });

  it("drains and then deletes the node through the signed HTTP API, refusing unsigned requests", async () => {
    // Prepare: serve on a free port.
    serve = spawn(process.execPath, [bundle, "serve", "--listen", "127.0.0.1:0"], {
      env: { ...tb.env, NOWSCALE_AGENT_KEY: key },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    serve.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
    });
    const port = await until("the agent to listen", async () => /"port":(\d+)/.exec(log)?.[1]);
    baseUrl = `http://127.0.0.1:${port}`;
    expect(log).not.toContain(key);

    // Act / Assess: an unsigned drain changes nothing.
    const unsigned = await fetch(`${baseUrl}/v1/nodes/c4-a/drain`, {
      method: "POST",
      body: '{"reason":"x"}',
    });
    expect(unsigned.status).toBe(401);
    expect((await okReport()).nodes.find((n) => n.name === "c4-a")).toMatchObject({ state: "MIXED" });

    // A signed drain: the running job keeps the node DRAINING, with NowScale's reason.
    expect((await call("GET", "/v1/health")).status).toBe(200);
    expect((await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"idle 300 s"}')).status).toBe(200);
    expect((await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"idle 300 s"}')).status).toBe(200);
    const draining = (await okReport()).nodes.find((n) => n.name === "c4-a");
    expect(draining).toMatchObject({ state: "DRAINING", reason: "nowscale: idle 300 s" });

    // Once the job has gone the node is DRAINED; resume and drain again show both actions work.
    await slurm("scancel", ["--user=root"]);
    await until("the node to be drained", async () =>
      (await okReport()).nodes.find((n) => n.name === "c4-a" && n.state === "DRAINED"),
    );
    expect((await call("POST", "/v1/nodes/c4-a/resume")).status).toBe(200);
    const resumed = await until("the node to be back in service", async () =>
      (await okReport()).nodes.find((n) => n.name === "c4-a" && !n.slurmState.includes("DRAIN")),
    );
    expect(resumed).toMatchObject({ state: "IDLE" });
    expect((await call("POST", "/v1/nodes/c4-a/resume")).status).toBe(200);
    expect((await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"nowscale: shrink"}')).status).toBe(200);

    // The instance goes away (its slurmd stops), then the agent deletes the node; twice is fine.
    await killNamespaceProcesses(`${prefix}c4-a`);
    expect((await call("DELETE", "/v1/nodes/c4-a")).status).toBe(200);
    expect((await call("DELETE", "/v1/nodes/c4-a")).status).toBe(200);
    expect((await call("POST", "/v1/nodes/c4-a/drain", '{"reason":"x"}')).status).toBe(404);
    const after = await okReport();
    expect(after.nodes.map((n) => n.name)).not.toContain("c4-a");
    expect(await slurm("sinfo", ["--noheader", "--Node", "--format=%N"])).toBe("");
    await removeTestbedNode(tb, "c4-a");
  });

  it("reports a stopped slurmctld as an outage, never as an empty queue", async () => {
    // Prepare
    await sbatch(["-c", "1", "--wrap", "true", "--hold"]);
    // Act
    await stopSlurmctld(tb);
    const { code, report } = await agentReport();
    const overHttp = await call("GET", "/v1/report");
    // Assess
    expect(code).toBe(2);
    expect(report.status).toBe("slurmctld-unreachable");
    expect(report).not.toHaveProperty("jobs");
    expect(overHttp.status).toBe(200);
    expect(overHttp.body.status).toBe("slurmctld-unreachable");
    expect((await call("DELETE", "/v1/nodes/c4-b")).status).toBe(503);
    // And back: the controller's state was kept, so the held job is there again.
    await startSlurmctld(tb);
    const back = await okReport();
    expect(back.jobs.filter((g) => g.state === "BLOCKED").length).toBe(1);
  });

  it("leaves no namespace, veth, bridge or daemon behind", async () => {
    // Act
    serve?.kill("SIGTERM");
    await stopTestbed(tb);
    // Assess
    expect(await listNamespaceNodes(prefix)).toEqual([]);
    expect((await runCommand("ip", ["link", "show", "dev", bridge])).code).not.toBe(0);
    expect((await runCommand("ip", ["-o", "link", "show"])).stdout).not.toMatch(
      /nsv[0-9a-f]{10}.*master nsag-br/,
    );
    for (const pidFile of [testbedPaths(tb.stateDir).slurmctldPid, testbedPaths(tb.stateDir).mungedPid]) {
      expect(existsSync(pidFile)).toBe(false);
    }
    const ping = await runCommand("scontrol", ["ping"], { env: tb.env, timeoutMs: 30_000 });
    expect(ping.stdout).toMatch(/DOWN/);
  });
});
