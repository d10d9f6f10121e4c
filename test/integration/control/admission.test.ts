import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiDeps, type ApiRequest, handleApiRequest } from "../../../lib/control/api/routes.js";
import { admissionLeaseKey } from "../../../lib/control/launch.js";
import { reconcileAll } from "../../../lib/control/reconcile-all.js";
import { type ReconcileSummary, reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { RecordingWorkflowStarter } from "../../../lib/workflow/starter.js";
import { CONFIG, type ControlBed, controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const MAX_FOUR: ConfigInput = {
  ...CONFIG,
  queueConfigs: [
    {
      queueName: "compute",
      maxSize: 4,
      expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
    },
  ],
};

function apiOn(bed: ControlBed) {
  // Waiting for the admission lease takes real (short) time here: on the fake clock, twelve waiters
  // sleeping would each push everyone's time, and leases, forward.
  const clock = {
    now: () => bed.clock.now(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms / 50)),
  };
  const deps: ApiDeps = {
    store: bed.store,
    clock,
    workflows: new RecordingWorkflowStarter(),
    metrics: bed.metrics,
    runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
  };
  return async (method: string, path: string, body?: unknown) => {
    const req: ApiRequest = {
      method,
      path,
      headers: { "content-type": "application/json" },
      query: {},
      body: body === undefined ? null : JSON.stringify(body),
    };
    const res = await handleApiRequest(deps, req);
    return { status: res.statusCode, body: JSON.parse(res.body) };
  };
}

describe("one admission for every launch path (class 5)", () => {
  it("12 concurrent manual add-nodes on a queue of maxSize 4 launch 4 instances, and refuse the rest with 409", async () => {
    // Prepare
    const bed = await controlBed(db, "demo", MAX_FOUR);
    const call = apiOn(bed);
    // Act
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => call("POST", "/clusters/demo/nodes", { queue: "compute", count: 1 })),
    );
    // Assess
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 409 || s === 503)).toBe(true);
    expect(bed.provider.fakeCloud.live()).toHaveLength(4);
    const refused = answers.find((a) => a.status === 409);
    expect(refused?.body.error).toMatch(/maxSize 4/);
  });

  it("manual add-nodes and a scale cycle at once stay within maxSize", async () => {
    // Prepare
    const bed = await controlBed(db, "demo", MAX_FOUR);
    const call = apiOn(bed);
    bed.agent.addPending("compute", "7", { nodes: 3, cpus: 4 });
    // Act
    await Promise.all([
      runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 0 }),
      call("POST", "/clusters/demo/nodes", { queue: "compute", count: 2 }),
      call("POST", "/clusters/demo/nodes", { queue: "compute", count: 2 }),
    ]);
    // Assess
    expect(bed.provider.fakeCloud.live().length).toBeLessThanOrEqual(4);
  });

  it("counts the instances the cloud lists for the queue even when their records are lost", async () => {
    // Prepare: four tagged instances of the queue run, and nobody recorded them
    const bed = await controlBed(db, "demo", MAX_FOUR);
    const call = apiOn(bed);
    for (let i = 0; i < 4; i++) {
      bed.provider.fakeCloud.seed({
        instanceType: "c5.xlarge",
        zone: "zone-a",
        tags: { "nowscale:cluster": "demo", "nowscale:queue": "compute", "nowscale:managed": "true" },
      });
    }
    // Act
    const added = await call("POST", "/clusters/demo/nodes", { queue: "compute", count: 1 });
    // Assess
    expect(added.status).toBe(409);
    expect(bed.provider.fakeCloud.live()).toHaveLength(4);
  });

  it("a manual add-nodes on a queue in protected mode is refused with 409 naming the queue", async () => {
    // Prepare
    const bed = await controlBed(db, "demo", MAX_FOUR);
    const call = apiOn(bed);
    await bed.store.recordBootstrapFailure("demo", "compute", 1, bed.clock.now(), "c5.xlarge@zone-a");
    // Act
    const added = await call("POST", "/clusters/demo/nodes", { queue: "compute", count: 1 });
    // Assess
    expect(added.status).toBe(409);
    expect(added.body.error).toMatch(/compute.*protected/);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
  });
});

describe("deletion fences launches out (class 4)", () => {
  it("DELETE sets DELETING only under the admission lease; afterwards no launch is admitted", async () => {
    // Prepare: a launch is being admitted (it holds the admission lease)
    const bed = await controlBed(db, "demo", MAX_FOUR);
    const call = apiOn(bed);
    const held = await bed.store.acquireLease(admissionLeaseKey("demo"), "a-launch", 30_000, bed.clock.now());
    if (held === undefined) throw new Error("lease not taken");
    // Act
    const whileHeld = await call("DELETE", "/clusters/demo");
    const statusWhileHeld = (await bed.store.getCluster("demo"))?.status;
    await bed.store.releaseLease(held);
    const deleted = await call("DELETE", "/clusters/demo");
    const added = await call("POST", "/clusters/demo/nodes", { queue: "compute", count: 1 });
    // Assess
    expect(whileHeld.status).toBe(503);
    expect(statusWhileHeld).toBe("RUNNING");
    expect(deleted.status).toBe(202);
    expect(deleted.body.status).toBe("DELETING");
    expect(added.status).toBe(409);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
  });
});

describe("the reconciler across clusters (class 9)", () => {
  const cluster = (id: string) => ({ clusterId: id }) as ClusterRecord;
  const done = (id: string) => ({ clusterId: id }) as ReconcileSummary;

  it("isolates a failing cluster, bounds a slow one, and rotates so late clusters are not starved", async () => {
    // Prepare: five clusters; c2 throws, c3 takes the whole per-cluster budget
    const bed = await controlBed(db);
    const clusters = ["c1", "c2", "c3", "c4", "c5"].map(cluster);
    const seen: string[] = [];
    const one = async (c: ClusterRecord, deadline: number) => {
      seen.push(c.clusterId);
      if (c.clusterId === "c2") throw new Error("agent key secret unreadable");
      // c3's master does not answer: it uses its whole budget; the others take 40 s.
      bed.clock.advance(c.clusterId === "c3" ? deadline - bed.clock.now() : 40_000);
      return done(c.clusterId);
    };
    // Act: a budget for about two clusters, one at a time; then the next run starts further on
    const start = bed.clock.now();
    const first = await reconcileAll(clusters, one, {
      clock: bed.clock,
      concurrency: 1,
      perClusterMs: 60_000,
      deadline: start + 150_000,
      rotation: 0,
    });
    const second = await reconcileAll(clusters, one, {
      clock: bed.clock,
      concurrency: 1,
      perClusterMs: 60_000,
      deadline: bed.clock.now() + 150_000,
      rotation: 3,
    });
    // Assess
    expect(first.failed).toEqual([{ clusterId: "c2", error: "agent key secret unreadable" }]);
    expect(first.done.map((s) => s.clusterId)).toEqual(["c1", "c3"]);
    expect(first.deferred).toEqual(["c4", "c5"]);
    expect(second.done.map((s) => s.clusterId).slice(0, 2)).toEqual(["c4", "c5"]);
  });

  it("a failing step does not abort the run: the other steps still act", async () => {
    // Prepare: terminate fails for good, while an intent waits to be closed
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "8", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 0 });
    bed.clock.advance(900_000);
    await reconcileCluster("demo", bed.deps("rec-0"));
    bed.clock.advance(120_000);
    await bed.store.recordLaunchIntent({
      clusterId: "demo",
      round: "dead-round",
      queue: "compute",
      count: 1,
      allOrNothing: false,
      candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
      tokens: ["ns1-x"],
      jobs: [],
      intendedAt: bed.clock.now() - 400_000,
    });
    bed.provider.terminate = async () => {
      throw new Error("terminate refused");
    };
    // Act: the boot timeout's terminate throws
    const summary = await reconcileCluster("demo", bed.deps("rec-1"));
    // Assess
    expect(summary.errors.some((e) => e.startsWith("boot: terminate refused"))).toBe(true);
    expect(summary.intentsClosed).toEqual(["dead-round"]);
  });

  it("stops between steps once its deadline has passed", async () => {
    // Prepare
    const bed = await controlBed(db);
    // Act
    const summary = await reconcileCluster("demo", bed.deps("rec-1"), { deadline: bed.clock.now() - 1 });
    // Assess
    expect(summary.truncated).toBe(true);
  });
});
