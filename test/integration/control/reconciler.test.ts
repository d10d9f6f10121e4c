import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import type { StateStore } from "../../../lib/ports/state-store.js";
import { CONFIG, type ControlBed, controlBed, runJobOn, T0 } from "../../support/control-bed.js";
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

/**
 * The scaler's store, failing the way a Lambda killed right after the cloud answered would: neither the
 * early record of the started instances nor the outcome lands.
 */
function crashingAfterLaunch(store: StateStore): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "recordLaunchOutcome" || prop === "putNode")
        return async () => Promise.reject(new Error("Lambda timed out"));
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const TWO_OFFERINGS: ConfigInput = {
  ...CONFIG,
  queueConfigs: [
    {
      queueName: "compute",
      maxSize: 20,
      expansionNodeConfigs: [
        { zone: "zone-a", instanceType: "c5.xlarge" },
        { zone: "zone-b", instanceType: "c5.xlarge" },
      ],
    },
  ],
};

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
    // The launch recorded its instances as soon as the cloud answered: nothing is left to adopt.
    expect(adopted).toHaveLength(0);
    const records = await bed.store.listNodes("demo");
    expect(records).toHaveLength(2);
    expect(untracked(bed, records)).toEqual([]);
  });

  it("records a tagged instance with no record at once; terminates it only after 300 s and two runs absent from Slurm, never the master", async () => {
    // Prepare
    const bed = await controlBed(db);
    const stray = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    const master = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    await bed.store.updateCluster("demo", bed.cluster.version, {
      resources: [{ type: "masterInstance", id: master.id, createdAt: bed.clock.now() }],
      now: bed.clock.now(),
    });
    // Act
    const first = await reconcileCluster("demo", bed.deps("rec-0"));
    bed.clock.advance(299_000);
    const early = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(1_000);
    const marked = await reconcileCluster("demo", bed.deps("rec-2"));
    bed.clock.advance(120_000);
    const late = await reconcileCluster("demo", bed.deps("rec-3"));
    // Assess
    expect(first.adopted).toEqual([stray.id]);
    expect((await bed.store.listEvents("demo")).map((e) => e.kind)).toContain("NODE_ADOPTED");
    expect(early.orphansTerminated).toEqual([]);
    expect(marked.orphansTerminated).toEqual([]);
    expect(late.orphansTerminated).toEqual([stray.id]);
    expect(bed.provider.fakeCloud.live().map((i) => i.id)).toEqual([master.id]);
    expect(bed.metrics.sum("OrphansTerminated")).toBe(1);
  });

  it("adopts an orphan Slurm reports running a job and never terminates it (class 1)", async () => {
    // Prepare: an instance nobody recorded (its record was lost) whose node runs a job
    const bed = await controlBed(db);
    const busy = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    bed.agent.join(busy.id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, busy.id, "41");
    // Act: many runs, long after any grace
    const runs = [];
    for (let i = 0; i < 5; i++) {
      bed.clock.advance(600_000);
      runs.push(await reconcileCluster("demo", bed.deps(`rec-${i}`)));
    }
    // Assess
    expect(runs[0]?.adopted).toEqual([busy.id]);
    expect(runs.flatMap((r) => r.orphansTerminated)).toEqual([]);
    expect(bed.provider.fakeCloud.get(busy.id)?.state).toBe("RUNNING");
    expect((await bed.store.listNodes("demo")).map((r) => [r.nodeName, r.status])).toEqual([
      [busy.id, "JOINED"],
    ]);
  });

  it("one empty listing terminates nothing and removes no record: busy nodes survive (class 1)", async () => {
    // Prepare: three nodes running jobs
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "30", { nodes: 3, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const ids = bed.provider.fakeCloud.live().map((i) => i.id);
    for (const id of ids) {
      bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
      runJobOn(bed, id, "30");
    }
    bed.agent.jobs = bed.agent.jobs.filter((j) => j.state === "RUNNING");
    bed.clock.advance(200_000);
    // Act: one listing answers empty (a short page, a transient error answered as empty); then normal runs
    const list = bed.provider.list.bind(bed.provider);
    bed.provider.list = async () => [];
    const empty = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.provider.list = list;
    const runs = [];
    for (let i = 0; i < 3; i++) {
      bed.clock.advance(120_000);
      runs.push(await reconcileCluster("demo", bed.deps(`rec-${i + 2}`)));
    }
    // Assess
    expect(empty.gone).toEqual([]);
    expect(runs.flatMap((r) => [...r.gone, ...r.orphansTerminated, ...r.retired])).toEqual([]);
    expect(
      bed.provider.fakeCloud
        .live()
        .map((i) => i.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(bed.provider.fakeCloud.callsOf("terminate")).toEqual([]);
    expect((await bed.store.listNodes("demo")).map((r) => r.nodeName).sort()).toEqual([...ids].sort());
  });

  it("an instance missing from the listing and from describe is forgotten only when a later run agrees", async () => {
    // Prepare: a node whose instance the cloud no longer knows at all (describe answers nothing)
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "31", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("nothing launched");
    bed.clock.advance(200_000);
    bed.provider.list = async () => [];
    bed.provider.describe = async () => [];
    // Act
    const first = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(60_000);
    const tooSoon = await reconcileCluster("demo", bed.deps("rec-2"));
    bed.clock.advance(60_000);
    const agreed = await reconcileCluster("demo", bed.deps("rec-3"));
    // Assess
    expect(first.gone).toEqual([]);
    expect(tooSoon.gone).toEqual([]);
    expect(agreed.gone).toEqual([instance.id]);
    // Its usage ends at the first run that missed it, not at the run that agreed
    const [ended] = await bed.store.listEndedNodes("demo");
    expect(ended).toMatchObject({ nodeName: instance.id, endedAt: T0 + 200_000 });
  });

  it("terminates nodes that never join, and protects the queue after N failures in a row", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "18", { nodes: 3, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(900_000);
    // Act: the first run past the boot timeout only notes them absent; the next one agrees and acts
    const noted = await reconcileCluster("demo", bed.deps("rec-0"), { protectAfterFailures: 3 });
    bed.clock.advance(120_000);
    const summary = await reconcileCluster("demo", bed.deps("rec-1"), { protectAfterFailures: 3 });
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    expect(noted.bootTimeouts).toEqual([]);
    // Assess
    expect(summary.bootTimeouts).toHaveLength(3);
    expect(summary.protectedQueues).toEqual(["compute"]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
    expect((await bed.store.getCluster("demo"))?.queueHealth.compute?.protected).toBe(true);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(1);
    const kinds = (await bed.store.listEvents("demo")).map((e) => e.kind);
    expect(kinds).toContain("PROTECTED_MODE");
  });

  it("a failed boot's event ends with the last lines of the instance's console", async () => {
    // Prepare: a cloud that keeps consoles; the node's boot script stopped at the munge key
    const bed = await controlBed(db);
    const asked: string[] = [];
    Object.assign(bed.provider, {
      consoleOutput: async (id: string, maxLines?: number) => {
        asked.push(`${id}:${maxLines}`);
        return "nowscale-bootstrap: fetching the munge key\nAccessDeniedException: not authorized";
      },
    });
    bed.agent.addPending("compute", "19", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(900_000);

    // Act
    await reconcileCluster("demo", bed.deps("rec-0"));
    bed.clock.advance(120_000);
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));

    // Assess
    expect(summary.bootTimeouts).toHaveLength(1);
    const failed = (await bed.store.listEvents("demo")).find((e) => e.kind === "BOOTSTRAP_FAILED");
    expect(failed?.message).toMatch(/did not join Slurm within 900 s \(1 in a row\); console log ends:\n/);
    expect(failed?.message).toContain("AccessDeniedException: not authorized");
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/:8$/);
  });

  it("protects a queue's failing offering even while jobs run there, and keeps launching its healthy one (class 6)", async () => {
    // Prepare: a queue of two offerings; the first one's nodes never join, while jobs run in the queue
    const bed = await controlBed(db, "demo", TWO_OFFERINGS);
    bed.agent.addPending("compute", "19", { nodes: 2, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.agent.jobs.push({
      ...(bed.agent.jobs[0] as (typeof bed.agent.jobs)[0]),
      state: "RUNNING",
      jobIds: ["5"],
    });
    bed.clock.advance(900_000);
    // Act
    await reconcileCluster("demo", bed.deps("rec-0"), { protectAfterFailures: 2 });
    bed.clock.advance(120_000);
    const summary = await reconcileCluster("demo", bed.deps("rec-1"), { protectAfterFailures: 2 });
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(summary.bootTimeouts).toHaveLength(2);
    expect(summary.protectedQueues).toEqual(["compute"]);
    const health = (await bed.store.getCluster("demo"))?.queueHealth.compute;
    expect(health).toMatchObject({
      consecutiveBootstrapFailures: 2,
      protected: true,
      failedOfferings: ["c5.xlarge@zone-a"],
    });
    const launches = bed.provider.calls.flatMap((c) => (c.method === "launch" ? [c.request] : []));
    expect(launches).toHaveLength(2);
    expect(launches[1]?.candidates.map((c) => `${c.instanceType}@${c.zone}`)).toEqual(["c5.xlarge@zone-b"]);
  });

  it("a queue whose bootstrap always fails stops launching after the threshold, whatever runs elsewhere (class 6)", async () => {
    // Prepare: jobs run in the queue on a node that joined before the boot broke
    const bed = await controlBed(db);
    const old = bed.provider.fakeCloud.seed({ instanceType: "c5.xlarge", zone: "zone-a", tags: TAGS });
    await reconcileCluster("demo", bed.deps("rec-seed"));
    bed.agent.join(old.id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, old.id, "50");
    // Act: three hours of pending demand, scale cycles every minute, the reconciler every two
    for (let minute = 0; minute < 180; minute++) {
      bed.agent.jobs = bed.agent.jobs.filter((j) => j.state === "RUNNING");
      bed.agent.addPending("compute", `p${minute}`, { nodes: 1, cpus: 4 });
      await runScaleCycle("demo", bed.deps(`inv-${minute}`), ONE_POLL);
      if (minute % 2 === 0) await reconcileCluster("demo", bed.deps(`rec-${minute}`));
      bed.clock.advance(60_000);
    }
    // Assess
    const launched = bed.provider.calls
      .flatMap((c) => (c.method === "launch" ? [c.request.count] : []))
      .reduce((a, b) => a + b, 0);
    expect(launched).toBeLessThanOrEqual(4);
    expect((await bed.store.getCluster("demo"))?.queueHealth.compute?.protected).toBe(true);
    expect(bed.provider.fakeCloud.get(old.id)?.state).toBe("RUNNING");
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
    // Act: a describe by id answering TERMINATED is evidence enough
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess
    expect(summary.gone).toEqual([instance.id]);
    expect(await bed.store.listNodes("demo")).toEqual([]);
    expect(bed.agent.calls).toContainEqual({ action: "deleteNode", node: instance.id });
    expect(bed.agent.nodes).toEqual([]);
  });

  it("retires a node DOWN past the grace that runs no job, and its demand is launched elsewhere (class 7)", async () => {
    // Prepare: two joined nodes go DOWN (slurmd died, the instances still run); one still holds a job
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "60", { nodes: 2, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [idle, busy] = bed.provider.fakeCloud.live().map((i) => i.id);
    if (idle === undefined || busy === undefined) throw new Error("nothing launched");
    bed.agent.jobs = [];
    for (const id of [idle, busy]) bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    await reconcileCluster("demo", bed.deps("rec-0"));
    runJobOn(bed, busy, "61");
    for (const n of bed.agent.nodes) {
      n.state = "DOWN";
      n.slurmState = n.name === busy ? "DOWN*+DYNAMIC_NORM" : "DOWN+NOT_RESPONDING+DYNAMIC_NORM";
      if (n.name === busy) n.state = "ALLOCATED";
    }
    // Act
    bed.clock.advance(60_000);
    const noted = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(120_000);
    const tooSoon = await reconcileCluster("demo", bed.deps("rec-2"));
    bed.clock.advance(200_000);
    const retired = await reconcileCluster("demo", bed.deps("rec-3"));
    const kept = (await bed.store.listNodes("demo")).map((r) => r.nodeName);
    bed.agent.addPending("compute", "62", { nodes: 1, cpus: 4 });
    const cycle = await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(noted.retired).toEqual([]);
    expect(tooSoon.retired).toEqual([]);
    expect(retired.retired).toEqual([idle]);
    expect(bed.provider.fakeCloud.get(idle)?.state).toBe("TERMINATED");
    expect(bed.provider.fakeCloud.get(busy)?.state).toBe("RUNNING");
    expect(bed.agent.calls).toContainEqual({ action: "deleteNode", node: idle });
    expect(kept).toEqual([busy]);
    expect((await bed.store.listEvents("demo")).map((e) => e.kind)).toContain("NODE_RETIRED");
    expect(cycle.launchedNodes).toBe(1);
  });

  it("a node missing from one report is not terminated: the next report that shows it clears the mark (class 8)", async () => {
    // Prepare: two launched nodes past the boot timeout; both joined and one runs a job, but the first
    // report the reconciler gets leaves both out
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "70", { nodes: 2, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const ids = bed.provider.fakeCloud.live().map((i) => i.id);
    bed.agent.jobs = [];
    for (const id of ids) bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, ids[0] as string, "71");
    bed.clock.advance(900_000);
    const report = bed.agent.report.bind(bed.agent);
    let missing = true;
    bed.agent.report = async () => {
      const r = await report();
      return missing ? { ...r, nodes: [], jobs: [] } : r;
    };
    // Act
    const first = await reconcileCluster("demo", bed.deps("rec-1"));
    missing = false;
    bed.clock.advance(120_000);
    const second = await reconcileCluster("demo", bed.deps("rec-2"));
    bed.clock.advance(600_000);
    const third = await reconcileCluster("demo", bed.deps("rec-3"));
    // Assess
    for (const run of [first, second, third]) {
      expect([...run.bootTimeouts, ...run.retired, ...run.gone, ...run.orphansTerminated]).toEqual([]);
    }
    expect(bed.provider.fakeCloud.callsOf("terminate")).toEqual([]);
    const records = await bed.store.listNodes("demo");
    expect(records.map((r) => r.status)).toEqual(["JOINED", "JOINED"]);
    expect(records.every((r) => r.absentSince === undefined && r.downSince === undefined)).toBe(true);
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
