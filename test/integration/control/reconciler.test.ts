import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import type { StateStore } from "../../../lib/ports/state-store.js";
import { type ControlBed, controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0 };
const TAGS = { "nowscale:cluster": "demo", "nowscale:queue": "compute", "nowscale:managed": "true" };

/** The scaler's store, failing the way a Lambda killed between launch and record would. */
function crashingAfterLaunch(store: StateStore): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "recordLaunchOutcome") return async () => Promise.reject(new Error("Lambda timed out"));
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function untracked(bed: ControlBed, records: { instanceId: string }[]) {
  const ids = new Set(records.map((r) => r.instanceId));
  return bed.provider.fakeCloud.live().filter((i) => !ids.has(i.id));
}

describe("reconciler", () => {
  it("a crash between launch and record leaves nothing untracked after the reconciler runs", async () => {
    // Prepare: the scaler launches, then dies before recording the outcome
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "17", { nodes: 3, cpus: 4 });
    await expect(
      runScaleCycle("demo", { ...bed.deps("inv-1"), store: crashingAfterLaunch(bed.store) }, ONE_POLL),
    ).rejects.toThrow(/timed out/);
    const before = untracked(bed, await bed.store.listNodes("demo"));
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess
    expect(before).toHaveLength(3);
    expect(summary.adopted).toHaveLength(3);
    const records = await bed.store.listNodes("demo");
    expect(untracked(bed, records)).toEqual([]);
    expect((await bed.store.listLaunchIntents("demo"))[0]?.status).toBe("LAUNCHED");
    // and the next cycle does not launch a second set for the same job
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    expect(bed.provider.fakeCloud.live()).toHaveLength(3);
  });

  it("adopting a launch while the scaler is still recording it leaves one record per instance", async () => {
    // Prepare: the reconciler runs between the provider's answer and the scaler's outcome record
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "24", { nodes: 2, cpus: 4 });
    const launch = bed.provider.launch.bind(bed.provider);
    let adopted: string[] = [];
    bed.provider.launch = async (request) => {
      const result = await launch(request);
      adopted = (await reconcileCluster("demo", bed.deps("rec-1"))).adopted;
      return result;
    };
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.outcome).toBe("done");
    expect(adopted).toHaveLength(2);
    const records = await bed.store.listNodes("demo");
    expect(records).toHaveLength(2);
    expect(untracked(bed, records)).toEqual([]);
  });

  it("terminates a tagged instance with no record only after 300 s, never the master", async () => {
    // Prepare
    const bed = await controlBed(db);
    const stray = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    const master = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    await bed.store.updateCluster("demo", bed.cluster.version, {
      resources: [{ type: "masterInstance", id: master.id, createdAt: bed.clock.now() }],
      now: bed.clock.now(),
    });
    // Act
    bed.clock.advance(299_000);
    const early = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(1_000);
    const late = await reconcileCluster("demo", bed.deps("rec-2"));
    // Assess
    expect(early.orphansTerminated).toEqual([]);
    expect(late.orphansTerminated).toEqual([stray.id]);
    expect(bed.provider.fakeCloud.live().map((i) => i.id)).toEqual([master.id]);
    expect(bed.metrics.sum("OrphansTerminated")).toBe(1);
  });

  it("terminates nodes that never join, and protects the queue after N failures in a row", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "18", { nodes: 3, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(900_000);
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"), { protectAfterFailures: 3 });
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(summary.bootTimeouts).toHaveLength(3);
    expect(summary.protectedQueues).toEqual(["compute"]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
    expect((await bed.store.getCluster("demo"))?.queueHealth.compute?.protected).toBe(true);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(1);
    const kinds = (await bed.store.listEvents("demo")).map((e) => e.kind);
    expect(kinds).toContain("PROTECTED_MODE");
  });

  it("never protects a queue while jobs run there", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "19", { nodes: 2, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.agent.jobs.push({
      ...(bed.agent.jobs[0] as (typeof bed.agent.jobs)[0]),
      state: "RUNNING",
      jobIds: ["5"],
    });
    bed.clock.advance(900_000);
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"), { protectAfterFailures: 1 });
    // Assess
    expect(summary.bootTimeouts).toHaveLength(2);
    expect(summary.protectedQueues).toEqual([]);
    const health = (await bed.store.getCluster("demo"))?.queueHealth.compute;
    expect(health).toMatchObject({ consecutiveBootstrapFailures: 2, protected: false });
  });

  it("a node joining clears the failure streak; an operator reset clears protected mode", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.recordBootstrapFailure("demo", "compute", 1, bed.clock.now());
    // Act
    const reset = await bed.store.resetProtectedMode("demo", "compute", bed.clock.now());
    bed.agent.addPending("compute", "22", { nodes: 1, cpus: 4 });
    const cycle = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(reset.protected).toBe(false);
    expect(cycle.launchedNodes).toBe(1);
  });

  it("removes the record of an instance that is gone and tells Slurm", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "23", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("nothing launched");
    bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
    bed.provider.fakeCloud.terminate([instance.id]); // e.g. a spot reclaim
    bed.clock.advance(200_000);
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess
    expect(summary.gone).toEqual([instance.id]);
    expect(await bed.store.listNodes("demo")).toEqual([]);
    expect(bed.agent.calls).toContainEqual({ action: "deleteNode", node: instance.id });
    expect(bed.agent.nodes).toEqual([]);
  });

  it("closes an intent a crashed scaler left with nothing started", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.recordLaunchIntent({
      clusterId: "demo",
      round: "x-f1-p0-l0-0",
      queue: "compute",
      count: 2,
      allOrNothing: true,
      candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
      tokens: ["ns1-x"],
      jobs: ["9"],
      intendedAt: bed.clock.now(),
    });
    bed.clock.advance(300_000);
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess
    expect(summary.intentsClosed).toEqual(["x-f1-p0-l0-0"]);
    expect(await bed.store.listLaunchIntents("demo", "INTENDED")).toEqual([]);
    // and a day later the closed intent is pruned from the history
    bed.clock.advance(86_400_001);
    const later = await reconcileCluster("demo", bed.deps("rec-2"));
    expect(later.intentsPruned).toBe(1);
    expect(await bed.store.listLaunchIntents("demo")).toEqual([]);
  });
});
