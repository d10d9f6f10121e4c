import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { cloudMasterPower } from "../../../lib/aws/master-power.js";
import { type ClusterAdminDeps, listNodes } from "../../../lib/control/cluster-admin.js";
import { UnknownNameError } from "../../../lib/control/errors.js";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import {
  type MasterPower,
  resumeNodes,
  SLEEP_DRAIN_REASON,
  type SleepDeps,
  sleepCluster,
  stopNodes,
  wakeCluster,
} from "../../../lib/control/sleep.js";
import { ConflictError } from "../../../lib/ports/state-store.js";
import { MANAGED_TAG, ROLE_TAG } from "../../../lib/ports/tags.js";
import { FakeClock, FakeCloud, FakeProvider } from "../../../lib/providers/fake/index.js";
import { CONFIG, type ControlBed, controlBed, T0 } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";
import {
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../../unit/providers/simulators/alibaba-ecs.js";
import {
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../../unit/providers/simulators/tencent-cvm.js";

/**
 * Sleep and wake, and nodes stopped or resumed by hand (lib/control/sleep.ts), on the real state store
 * (dynalite), the fake cloud and the fake agent: a node running a job is never terminated, the scaler
 * launches nothing while the cluster sleeps, the reconciler retires the waiting nodes as their jobs end.
 */
let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

/** Two launched nodes joined to Slurm; the first runs a job (all its CPUs), the second sits idle. */
async function twoNodes(bed: ControlBed): Promise<{ busy: string; idle: string }> {
  bed.agent.addPending("compute", "10", { nodes: 1, cpus: 4, count: 2 });
  await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 0 });
  const [a, b] = bed.provider.fakeCloud.live();
  if (a === undefined || b === undefined) throw new Error("two nodes were not launched");
  bed.agent.join(a.id, "compute", "c5.xlarge", "zone-a");
  bed.agent.join(b.id, "compute", "c5.xlarge", "zone-a");
  const busy = bed.agent.nodes.find((n) => n.name === a.id);
  if (busy === undefined) throw new Error("no node");
  busy.state = "ALLOCATED";
  busy.cpusAllocated = 4;
  bed.agent.jobs = [
    {
      queue: "compute",
      state: "RUNNING",
      nodes: 1,
      cpusPerNode: 4,
      count: 1,
      oldestSubmittedAt: new Date(bed.clock.now()).toISOString(),
      jobIds: ["10"],
      nodeNames: [a.id],
    },
  ];
  // The scale cycle records the joins.
  await runScaleCycle("demo", bed.deps("inv-2"), { windowMs: 0 });
  return { busy: a.id, idle: b.id };
}

/** The job on `node` ends: Slurm shows it drained and empty. */
function jobEnds(bed: ControlBed, node: string): void {
  bed.agent.jobs = [];
  const n = bed.agent.nodes.find((x) => x.name === node);
  if (n === undefined) throw new Error("no node");
  n.cpusAllocated = 0;
  n.state = n.reason === undefined ? "IDLE" : "DRAINED";
}

function sleepDeps(bed: ControlBed, masterPower?: MasterPower): SleepDeps {
  return {
    store: bed.store,
    clock: bed.clock,
    runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
    ...(masterPower === undefined ? {} : { masterPower: () => masterPower }),
    by: "arn:aws:iam::123456789012:user/ops",
  };
}

/** A MasterPower that records what it was asked. */
function recordingPower(): MasterPower & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    stop: async (ids) => {
      calls.push(`stop ${ids.join(",")}`);
    },
    start: async (ids) => {
      calls.push(`start ${ids.join(",")}`);
    },
  };
}

describe("sleep and wake", () => {
  it("retires the idle node at once, keeps and names the one running a job, launches nothing asleep, retires it when its job ends", async () => {
    // Prepare
    const bed = await controlBed(db);
    const { busy, idle } = await twoNodes(bed);
    // Act: sleep, then a job arrives and the scaler runs
    const slept = await sleepCluster(sleepDeps(bed), "demo");
    bed.agent.addPending("compute", "11", { nodes: 1, cpus: 4 });
    const cycle = await runScaleCycle("demo", bed.deps("inv-3"), { windowMs: 0 });
    const liveWhileAsleep = bed.provider.fakeCloud.live().map((i) => i.id);
    // Assess: the idle node is gone, the busy one drained and kept, nothing launched
    expect(slept.cluster.status).toBe("SLEEPING");
    expect(slept.retired).toEqual([idle]);
    expect(slept.waiting).toEqual([{ node: busy, reason: expect.stringContaining("with a job") }]);
    expect(bed.provider.fakeCloud.get(idle)?.state).toBe("TERMINATED");
    expect(bed.agent.nodes.find((n) => n.name === busy)).toMatchObject({
      state: "DRAINING",
      reason: SLEEP_DRAIN_REASON,
    });
    expect(cycle.outcome).toBe("not-running");
    expect(liveWhileAsleep).toEqual([busy]);
    const events = await bed.store.listEvents("demo", 50);
    expect(events.find((e) => e.message === "asleep")?.by).toBe("arn:aws:iam::123456789012:user/ops");

    // Act: the job ends; the reconciler runs on the sleeping cluster
    const before = await reconcileCluster("demo", bed.deps("rec-1"));
    jobEnds(bed, busy);
    const after = await reconcileCluster("demo", bed.deps("rec-2"));
    // Assess: kept while it ran, retired once it was empty
    expect(before.retired).toEqual([]);
    expect(after.retired).toEqual([busy]);
    expect(bed.provider.fakeCloud.live()).toEqual([]);
    expect(await bed.store.listNodes("demo")).toEqual([]);
  });

  it("wakes: RUNNING again, the sleep-drained node resumed, and the scaler launches for the queued job", async () => {
    // Prepare: asleep with a node still running its job, and a job queued meanwhile
    const bed = await controlBed(db);
    const { busy } = await twoNodes(bed);
    await sleepCluster(sleepDeps(bed), "demo");
    bed.agent.addPending("compute", "12", { nodes: 1, cpus: 4 });
    // Act
    const woken = await wakeCluster(sleepDeps(bed), "demo");
    const again = await wakeCluster(sleepDeps(bed), "demo");
    const cycle = await runScaleCycle("demo", bed.deps("inv-4"), { windowMs: 0 });
    // Assess
    expect(woken.cluster.status).toBe("RUNNING");
    expect(woken.resumed).toEqual([busy]);
    expect(bed.agent.nodes.find((n) => n.name === busy)?.reason).toBeUndefined();
    expect((await bed.store.listNodes("demo")).find((r) => r.nodeName === busy)?.status).toBe("JOINED");
    expect(again.cluster.version).toBe(woken.cluster.version);
    expect(cycle.outcome).toBe("done");
    expect(cycle.launchedNodes).toBe(1);
  });

  it("stops the master only once no compute node is left, says why otherwise, and starts it on wake", async () => {
    // Prepare: a cluster whose workflow created a master instance
    const bed = await controlBed(db);
    await bed.store.updateCluster("demo", bed.cluster.version, {
      resources: [{ type: "masterInstance", id: "i-master", createdAt: bed.clock.now() }],
      now: bed.clock.now(),
    });
    const { busy } = await twoNodes(bed);
    const power = recordingPower();
    // Act: sleep with the master stop while a node runs a job; then again once it is empty
    const first = await sleepCluster(sleepDeps(bed, power), "demo", { stopMaster: true });
    const callsWhileBusy = [...power.calls];
    jobEnds(bed, busy);
    const second = await sleepCluster(sleepDeps(bed, power), "demo", { stopMaster: true });
    const woken = await wakeCluster(sleepDeps(bed, power), "demo");
    // Assess
    expect(first.master).toMatchObject({ state: "running", reason: expect.stringContaining(busy) });
    expect(callsWhileBusy).toEqual([]);
    expect(second.retired).toEqual([busy]);
    expect(second.master).toEqual({ state: "stopped", instanceIds: ["i-master"] });
    expect(woken.master).toEqual({ state: "started", instanceIds: ["i-master"] });
    expect(power.calls).toEqual(["stop i-master", "start i-master"]);
  });

  it("leaves the master running where the deployment cannot stop it, and says so (or why the cloud refused); refuses a FAILED cluster", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.updateCluster("demo", bed.cluster.version, {
      resources: [{ type: "masterInstance", id: "i-master", createdAt: bed.clock.now() }],
      now: bed.clock.now(),
    });
    const other = await controlBed(db, "creating");
    await other.store.updateCluster("creating", other.cluster.version, {
      status: "FAILED",
      reason: "x",
      now: 1,
    });
    // Act
    const slept = await sleepCluster(sleepDeps(bed), "demo", { stopMaster: true });
    const refused = await sleepCluster(sleepDeps(other), "creating").catch((e: unknown) => e);
    const refusing = {
      ...recordingPower(),
      stop: async () => Promise.reject(new Error("instance store root")),
    };
    const refusedStop = await sleepCluster(sleepDeps(bed, refusing), "demo", { stopMaster: true });
    // Assess
    expect(slept.master).toMatchObject({
      state: "running",
      instanceIds: ["i-master"],
      reason: expect.stringContaining("cannot stop a master on fake"),
    });
    expect(refused).toBeInstanceOf(ConflictError);
    expect(refusedStop.master).toMatchObject({
      state: "running",
      reason: expect.stringContaining("the cloud refused the stop: instance store root"),
    });
    expect(refusedStop.cluster.status).toBe("SLEEPING");
    expect((await other.store.getCluster("creating"))?.status).toBe("FAILED");
  });
});

describe("nodes stopped and resumed by hand (shutdownc / turnonc)", () => {
  it("retires the empty node, keeps the busy one drained, resumes it; unknown names change nothing", async () => {
    // Prepare
    const bed = await controlBed(db);
    const { busy, idle } = await twoNodes(bed);
    // Act
    const unknown = await stopNodes(sleepDeps(bed), "demo", [idle, "i-none"]).catch((e: unknown) => e);
    const liveAfterUnknown = bed.provider.fakeCloud.live().length;
    const stopped = await stopNodes(sleepDeps(bed), "demo", [busy, idle]);
    const resumed = await resumeNodes(sleepDeps(bed), "demo", [busy, idle]);
    // Assess
    expect(unknown).toBeInstanceOf(UnknownNameError);
    expect((unknown as UnknownNameError).issues).toEqual([
      { path: "nodes[1]", message: "no node i-none in this cluster" },
    ]);
    expect(liveAfterUnknown).toBe(2);
    expect(stopped.retired).toEqual([idle]);
    expect(stopped.waiting.map((w) => w.node)).toEqual([busy]);
    expect(resumed.resumed).toEqual([busy]);
    expect(resumed.notResumed).toEqual([{ node: idle, reason: expect.stringContaining("retired") }]);
    expect(bed.agent.nodes.find((n) => n.name === busy)?.state).toBe("ALLOCATED");
  });

  it("refuses to resume a name the cluster never had (404 naming nodes[i]), resuming none of the others", async () => {
    // Prepare: the busy node stopped by hand (drained with its job), so a resume would act on it
    const bed = await controlBed(db);
    const { busy } = await twoNodes(bed);
    await stopNodes(sleepDeps(bed), "demo", [busy]);
    // Act
    const unknown = await resumeNodes(sleepDeps(bed), "demo", [busy, "i-typo"]).catch((e: unknown) => e);
    // Assess: the same refusal as stop's, and the stopped node still drained
    expect(unknown).toBeInstanceOf(UnknownNameError);
    expect((unknown as UnknownNameError).issues).toEqual([
      { path: "nodes[1]", message: "no node i-typo in this cluster" },
    ]);
    expect(bed.agent.calls.filter((c) => c.action === "resume")).toEqual([]);
    expect(bed.agent.nodes.find((n) => n.name === busy)?.state).toBe("DRAINING");
    expect((await bed.store.listNodes("demo")).find((r) => r.nodeName === busy)?.status).toBe("DRAINING");
  });

  it("a resumed busy node is JOINED again at once (record and nodes list), a second resume is a no-op, and no cycle treats it as drained", async () => {
    // Prepare: the busy node stopped by hand (DRAINING with its job)
    const bed = await controlBed(db);
    const { busy } = await twoNodes(bed);
    await stopNodes(sleepDeps(bed), "demo", [busy]);
    const recordOf = async () => (await bed.store.listNodes("demo")).find((r) => r.nodeName === busy);
    const stoppedRecord = await recordOf();
    const admin: ClusterAdminDeps = {
      store: bed.store,
      clock: bed.clock,
      // nodes list starts no workflow
      workflows: { start: async () => Promise.reject(new Error("no workflow here")) } as never,
      metrics: bed.metrics,
      runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
    };
    // Act: resume, list, resume again
    const resumed = await resumeNodes(sleepDeps(bed), "demo", [busy]);
    const record = await recordOf();
    const listed = (await listNodes(admin, "demo")).nodes.find((n) => n.node === busy);
    const again = await resumeNodes(sleepDeps(bed), "demo", [busy]);
    const recordAfterAgain = await recordOf();
    // Assess: in service again, in Slurm and in NowScale's record, its first join kept
    expect(stoppedRecord?.status).toBe("DRAINING");
    expect(resumed).toEqual({ resumed: [busy], notResumed: [] });
    expect(bed.agent.nodes.find((n) => n.name === busy)).toMatchObject({ state: "ALLOCATED" });
    expect(record?.status).toBe("JOINED");
    expect(record?.joinedAt).toBe(stoppedRecord?.joinedAt);
    expect(listed?.status).toBe("JOINED");
    expect(again.resumed).toEqual([]);
    expect(again.notResumed).toEqual([
      { node: busy, reason: "already in service (Slurm shows it ALLOCATED, not drained): nothing to resume" },
    ]);
    expect(recordAfterAgain).toEqual(record);

    // Act: a scale cycle and a reconcile while it runs its job, then its job ends and two more cycles
    const busyCycle = await runScaleCycle("demo", bed.deps("inv-r1"), { windowMs: 0 });
    const busyReconcile = await reconcileCluster("demo", bed.deps("rec-r1"));
    const recordWhileBusy = await recordOf();
    jobEnds(bed, busy);
    const idleCycles = [
      await runScaleCycle("demo", bed.deps("inv-r2"), { windowMs: 0 }),
      await runScaleCycle("demo", bed.deps("inv-r3"), { windowMs: 0 }),
    ];
    const idleReconcile = await reconcileCluster("demo", bed.deps("rec-r2"));
    // Assess: never drained nor retired while busy; idle, it is only the idle shrink's (300 s, not yet)
    expect(busyCycle.drained).toEqual([]);
    expect(busyCycle.terminated).toEqual([]);
    expect(busyReconcile.retired).toEqual([]);
    expect(recordWhileBusy?.status).toBe("JOINED");
    expect(bed.agent.nodes.find((n) => n.name === busy)).toMatchObject({ state: "IDLE" });
    expect(idleCycles.flatMap((c) => [...c.drained, ...c.terminated])).toEqual([]);
    expect(idleReconcile.retired).toEqual([]);
    expect((await recordOf())?.status).toBe("JOINED");
    expect(bed.provider.fakeCloud.get(busy)?.state).not.toBe("TERMINATED");
  });
});

describe("the master of a Tencent or Alibaba cluster, stopped by sleep and started by wake", () => {
  /**
   * A RUNNING cluster record on `cloud` whose master (tagged as the creation workflow tags it) lives in
   * `fakeCloud`, served by the loopback CVM or ECS; no compute node. The master power is the API's own
   * (lib/aws/master-power.ts) pointed at the loopback endpoint with the test keys.
   */
  async function cloudBed(cloud: "tencent" | "alibaba", fakeCloud: FakeCloud, endpoint: string) {
    const { store } = await freshStore(db);
    const clock = new FakeClock(T0);
    const master = fakeCloud.seed({
      instanceType: cloud === "tencent" ? "SA2.MEDIUM4" : "ecs.g7.large",
      zone: cloud === "tencent" ? "ap-shanghai-2" : "cn-hangzhou-h",
      tags: { [MANAGED_TAG]: "true", [ROLE_TAG]: "master", "nowscale:cluster": "hpc1" },
    });
    const region = cloud === "tencent" ? "ap-shanghai" : "cn-hangzhou";
    const { cluster } = await store.createCluster({
      clusterId: "hpc1",
      name: "hpc1",
      placement: { cloud, region, imageId: "img-compute" },
      autoscaling: CONFIG,
      now: T0,
    });
    await store.updateCluster("hpc1", cluster.version, {
      status: "RUNNING",
      resources: [{ type: "masterInstance", id: master.id, createdAt: T0 }],
      now: T0,
    });
    const deps: SleepDeps = {
      store,
      clock,
      runtime: async () => ({ provider: new FakeProvider({ clock }), agent: new FakeAgent(clock) }),
      masterPower: cloudMasterPower({
        tencentCredential: async () => ({ secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY }),
        alibabaCredential: async () => ({
          accessKeyId: TEST_ACCESS_KEY_ID,
          accessKeySecret: TEST_ACCESS_KEY_SECRET,
        }),
        endpoints: { tencent: { endpoint, protocol: "http://" }, alibaba: { endpoint, protocol: "http" } },
      }),
      by: "arn:aws:iam::123456789012:user/ops",
    };
    return { store, master: master.id, deps };
  }

  it("Tencent: sleep stops the master with STOP_CHARGING (STOPPED in CVM), wake starts it (RUNNING)", async () => {
    // Prepare
    const fakeCloud = new FakeCloud({ idPrefix: "ins-" });
    const sim = await startCvmSimulator(fakeCloud);
    try {
      const { store, master, deps } = await cloudBed("tencent", fakeCloud, sim.endpoint);
      // Act
      const slept = await sleepCluster(deps, "hpc1", { stopMaster: true });
      const asleep = sim.stopped.get(master);
      const woken = await wakeCluster(deps, "hpc1");
      // Assess
      expect(slept.master).toEqual({ state: "stopped", instanceIds: [master] });
      expect(asleep).toBe("STOP_CHARGING");
      expect(sim.callsOf("StopInstances").map((c) => c.params.StoppedMode)).toEqual(["STOP_CHARGING"]);
      expect(woken.master).toEqual({ state: "started", instanceIds: [master] });
      expect(woken.cluster.status).toBe("RUNNING");
      expect(sim.stopped.has(master)).toBe(false);
      expect(sim.callsOf("StartInstances").map((c) => c.params.InstanceIds)).toEqual([[master]]);
      const events = await store.listEvents("hpc1", 20);
      expect(events.map((e) => e.message)).toContain("master stopped (asleep)");
    } finally {
      await sim.close();
    }
  });

  it("Alibaba: sleep stops the master in economical mode (Stopped, StopCharging), wake starts it", async () => {
    // Prepare
    const fakeCloud = new FakeCloud({ idPrefix: "i-" });
    const sim = await startEcsSimulator(fakeCloud);
    try {
      const { master, deps } = await cloudBed("alibaba", fakeCloud, sim.endpoint);
      // Act
      const slept = await sleepCluster(deps, "hpc1", { stopMaster: true });
      const asleep = sim.world.stopped.get(master);
      const woken = await wakeCluster(deps, "hpc1");
      // Assess
      expect(slept.master).toEqual({ state: "stopped", instanceIds: [master] });
      expect(asleep).toBe("StopCharging");
      expect(woken.master).toEqual({ state: "started", instanceIds: [master] });
      expect(sim.world.stopped.has(master)).toBe(false);
      expect(sim.callsOf("StartInstances")).toHaveLength(1);
    } finally {
      await sim.close();
    }
  });
});
