import { mkdtemp } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentServer } from "../../agent/server.js";
import { AGENT_VERSION } from "../../agent/version.js";
import { HttpAgentChannel } from "../../lib/agent-channels/http.js";
import { runScaleCycle, ShrinkMemory } from "../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../lib/core/config.js";
import { localComputeUserData } from "../../lib/local/user-data.js";
import type { CloudProvider } from "../../lib/ports/cloud-provider.js";
import { createLocalProvider, testbedNamespaceNodes } from "../../lib/providers/local/index.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
  waitForNode,
} from "../../lib/providers/local/slurm-testbed.js";
import { SlurmClient } from "../../scheduler-plugins/slurm/client.js";
import { collectReport } from "../../scheduler-plugins/slurm/collect.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { controlBed } from "../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../support/dynalite.js";

/**
 * Issue 15's same-poll terminate on a real Slurm 22.05: the real scale cycle (on dynalite) launches two
 * local instances (namespace nodes booting the AWS compute user data) through the local provider, reads
 * the real agent's report over signed HTTP, and once both nodes have idled drains them. In that same
 * poll it reads Slurm back: the node that stayed idle is DRAINED with no job and is terminated and
 * removed from Slurm; the other got a job just before its drain (sbatch -w), so Slurm shows it
 * ALLOCATED+DRAIN and it is left running. Own bridge, subnet, ports and prefix; run under
 * `flock /work/notes/slurm.lock`.
 */
describe("same-poll terminate on a real Slurm", () => {
  const prefix = "nsspt-";
  const subnet = "192.168.243";
  const key = Buffer.from("same-poll-terminate-key-0123456789abcdef");
  let tb: Testbed;
  let db: TestDynamo;
  let server: Server;
  let provider: CloudProvider;
  let agent: HttpAgentChannel;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** Polls until `check` holds (real time), or fails naming what was awaited. */
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${what}: not within ${timeoutMs} ms`);
  };
  const jobState = async (id: string) => slurm("squeue", ["--noheader", "--jobs", id, "--format=%T"]);

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    db = await startDynalite();
    const stateDir = await mkdtemp(join(tmpdir(), "nowscale-same-poll-"));
    tb = await startTestbed({
      stateDir,
      clusterName: "samepoll",
      queues: [{ name: "compute" }],
      network: { bridge: "nsspt-br", hostAddress: `${subnet}.1` },
      netnsPrefix: prefix,
      slurmctldPort: 7717,
      slurmdPort: 7718,
    });
    provider = createLocalProvider({
      nodes: testbedNamespaceNodes(tb),
      stateDir: join(stateDir, "instances"),
      subnetPrefix: subnet,
    });
    const client = new SlurmClient({ env: tb.env });
    server = createAgentServer({ key, actions: client, report: () => collectReport(client, AGENT_VERSION) });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    agent = new HttpAgentChannel({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      key,
    });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined)
      await runCommand("scancel", ["--user=root"], { env: tb.env }).catch(() => undefined);
    for (const i of (await provider?.list("spt").catch(() => [])) ?? []) await provider.terminate([i.id]);
    server?.close();
    if (tb !== undefined) await stopTestbed(tb);
    await db?.close();
  }, 180_000);

  it("terminates an idle node in the poll that drains it, and keeps one that got a job before its drain", async () => {
    // Prepare: two one-node jobs launch two nodes; they run, end, and both nodes idle
    const config: ConfigInput = {
      expansionBusyTime: 0,
      shrinkIdleTime: 60,
      instanceTypes: { "local.c1m1": { vcpus: 1, memoryMiB: 1024 } },
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 4,
          scaleUpMemRatio: 1,
          expansionNodeConfigs: [{ zone: "local-a", instanceType: "local.c1m1" }],
        },
      ],
    };
    const bed = await controlBed(db, "spt", config);
    bed.clock.advance(Date.now() - bed.clock.now());
    const memory = new ShrinkMemory();
    const deps = (owner: string) => ({
      ...bed.deps(owner),
      agent,
      provider,
      userData: localComputeUserData(tb),
      shrinkMemory: memory,
    });
    const cycle = (owner: string) => runScaleCycle("spt", deps(owner), { windowMs: 0, pollMs: 15_000 });
    const first = await slurm("sbatch", [
      "--parsable",
      "--output=/dev/null",
      "-p",
      "compute",
      "--wrap",
      "true",
    ]);
    const second = await slurm("sbatch", [
      "--parsable",
      "--output=/dev/null",
      "-p",
      "compute",
      "--wrap",
      "true",
    ]);
    const launched = await cycle("inv-1");
    const [a, b] = (await provider.list("spt")).map((i) => i.id).sort();
    if (a === undefined || b === undefined) throw new Error("two nodes were not launched");
    await waitForNode(tb, a, ["IDLE", "ALLOCATED", "MIXED"], 120_000);
    await waitForNode(tb, b, ["IDLE", "ALLOCATED", "MIXED"], 120_000);
    await until(
      "both jobs ended",
      async () => (await jobState(first)) === "" && (await jobState(second)) === "",
    );
    await waitForNode(tb, a, ["IDLE"]);
    await waitForNode(tb, b, ["IDLE"]);
    await cycle("inv-2"); // records the joins
    // Both idle past shrinkIdleTime by the scaler's clock; the first report calls for their drains.
    bed.clock.advance(Date.now() + 120_000 - bed.clock.now());
    // The time passes on the master too: its reports are stamped by the scaler's clock (a master 120 s
    // behind would have its idle times moved forward by that much: idleOnOurClock).
    const report = agent.report.bind(agent);
    agent.report = async () => ({
      ...(await report()),
      generatedAt: new Date(bed.clock.now()).toISOString(),
    });
    const called = await cycle("inv-3");
    // Slurm starts a job on b just before its drain lands: it arrived after the report the plan read.
    let landed = "";
    const drain = agent.drain.bind(agent);
    agent.drain = async (node, reason) => {
      if (node === b) {
        landed = await slurm("sbatch", [
          "--parsable",
          "--output=/dev/null",
          "-p",
          "compute",
          "-w",
          b,
          "--wrap",
          "sleep 300",
        ]);
        await until(`job ${landed} running on ${b}`, async () => (await jobState(landed)) === "RUNNING");
      }
      await drain(node, reason);
    };

    // Act: the poll that confirms the drains
    const summary = await cycle("inv-4");

    // Assess
    expect(launched.launchedNodes).toBe(2);
    expect(called.drained).toEqual([]);
    expect([...summary.drained].sort()).toEqual([a, b]);
    expect(summary.terminated).toEqual([a]);
    // a: instance gone, Slurm no longer lists it, record deleted
    expect((await provider.list("spt")).map((i) => i.id)).toEqual([b]);
    const shown = await runCommand("scontrol", ["show", "node", a], { env: tb.env });
    expect(`${shown.stdout}${shown.stderr}`).toMatch(/not found|Invalid node name/i);
    expect((await bed.store.listNodes("spt")).map((r) => [r.nodeName, r.status])).toEqual([[b, "DRAINING"]]);
    // b: drained under its running job, which still runs
    expect(await slurm("scontrol", ["--oneliner", "show", "node", b])).toMatch(
      /State=(ALLOCATED|MIXED)\+DRAIN/,
    );
    expect(await jobState(landed)).toBe("RUNNING");
    const events = (await bed.store.listEvents("spt")).filter((e) => e.kind === "TERMINATED");
    expect(events.map((e) => e.nodes)).toEqual([[a]]);
  }, 300_000);
});
