import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUND_TAG, runScaleCycle } from "../../../lib/control/scale-cycle.js";
import { controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0, pollMs: 15_000 };

describe("scale cycle", () => {
  it("records the intent with its tokens before the launch, then the nodes it started", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "17", { nodes: 3, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary).toMatchObject({ outcome: "done", polls: 1, launchedNodes: 3 });
    const [intent] = await bed.store.listLaunchIntents("demo");
    expect(intent?.status).toBe("LAUNCHED");
    expect(intent?.tokens).toHaveLength(1);
    const launch = bed.provider.calls.find((c) => c.method === "launch");
    expect(launch?.method === "launch" && launch.request.round).toBe(intent?.round);
    expect(launch?.method === "launch" && launch.request.tags?.[ROUND_TAG]).toBe(intent?.round);
    const nodes = await bed.store.listNodes("demo");
    expect(nodes.map((n) => n.instanceId).sort()).toEqual(
      bed.provider.fakeCloud
        .live()
        .map((i) => i.id)
        .sort(),
    );
    expect(nodes.every((n) => n.status === "LAUNCHING" && n.token === intent?.tokens[0])).toBe(true);
    expect(bed.metrics.sum("NodesLaunched")).toBe(3);
    expect(bed.metrics.sum("PendingDemand")).toBe(1);
    const events = await bed.store.listEvents("demo");
    expect(events.map((e) => e.kind)).toContain("LAUNCHED");
  });

  it("two invocations at once for one cluster launch exactly one set", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "20", { nodes: 4, cpus: 4 });
    // Act
    const [a, b] = await Promise.all([
      runScaleCycle("demo", bed.deps("inv-a"), ONE_POLL),
      runScaleCycle("demo", bed.deps("inv-b"), ONE_POLL),
    ]);
    // Assess
    expect([a.outcome, b.outcome].sort()).toEqual(["done", "lease-held-elsewhere"]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(4);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(1);
  });

  it("does not launch again for demand its launching nodes already cover, across polls and invocations", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "21", { nodes: 2, cpus: 4 });
    // Act: one invocation polling four times, then another invocation
    const first = await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 50_000, pollMs: 15_000 });
    const second = await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(first.polls).toBe(4);
    expect(second.outcome).toBe("done");
    expect(bed.provider.fakeCloud.live()).toHaveLength(2);
  });

  it("marks nodes joined when Slurm reports them, drains idle ones and terminates drained ones", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "30", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("nothing launched");
    bed.agent.jobs = [];
    bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
    // Act: joins, idles past shrinkIdleTime → drained, next poll → terminated
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    const joined = await bed.store.listNodes("demo");
    bed.clock.advance(301_000);
    const drain = await runScaleCycle("demo", bed.deps("inv-3"), ONE_POLL);
    const terminate = await runScaleCycle("demo", bed.deps("inv-4"), ONE_POLL);
    // Assess
    expect(joined[0]?.status).toBe("JOINED");
    expect(drain.drained).toEqual([instance.id]);
    expect(terminate.terminated).toEqual([instance.id]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
    expect(bed.agent.nodes).toHaveLength(0);
    expect(await bed.store.listNodes("demo")).toHaveLength(0);
    expect(bed.agent.calls.some((c) => c.action === "drain" && c.reason.startsWith("nowscale"))).toBe(true);
  });

  it("launches nothing for a queue in protected mode", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.recordBootstrapFailure("demo", "compute", 1, bed.clock.now());
    bed.agent.addPending("compute", "40", { nodes: 2, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(0);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(0);
    expect(bed.metrics.sum("ProtectedQueues")).toBe(1);
  });

  it("a stale lease holder loses: it stops before launching once another invocation took the lease", async () => {
    // Prepare: the report takes longer than the lease; meanwhile another invocation takes over
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "50", { nodes: 2, cpus: 4 });
    const report = bed.agent.report.bind(bed.agent);
    let takenOver = false;
    bed.agent.report = async () => {
      if (!takenOver) {
        takenOver = true;
        bed.clock.advance(61_000);
        await bed.store.acquireLease("scaler#demo", "inv-new", 60_000, bed.clock.now());
      }
      return report();
    };
    // Act
    const stale = await runScaleCycle("demo", bed.deps("inv-old"), ONE_POLL);
    // Assess
    expect(stale.outcome).toBe("lease-lost");
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(0);
    expect(await bed.store.listLaunchIntents("demo")).toHaveLength(0);
  });

  it("refuses a launch when the heartbeat is too close to expiry", async () => {
    // Prepare: a lease shorter than the safety margin
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "51", { nodes: 1, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), {
      ...ONE_POLL,
      leaseTtlMs: 5_000,
      leaseMarginMs: 10_000,
    });
    // Assess
    expect(summary.outcome).toBe("lease-lost");
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
  });

  it("does nothing but record an event when the agent or slurmctld cannot be reached", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "60", { nodes: 1, cpus: 4 });
    bed.agent.outage = "slurmctld";
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.agent.outage = "agent";
    bed.clock.advance(1_000);
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(0);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(0);
    const kinds = (await bed.store.listEvents("demo")).map((e) => e.kind);
    expect(kinds).toEqual(["AGENT_UNREACHABLE", "SLURMCTLD_UNREACHABLE"]);
  });

  it("records a failed launch with the failure reason as a metric", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.provider.fakeCloud.setCapacity("c5.xlarge", "zone-a", 0);
    bed.agent.addPending("compute", "70", { nodes: 1, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(0);
    const [intent] = await bed.store.listLaunchIntents("demo");
    expect(intent?.status).toBe("FAILED");
    expect(bed.metrics.recorded.find((m) => m.name === "LaunchFailures")?.dimensions).toEqual({
      Reason: "InsufficientCapacity",
    });
  });

  it("skips a cluster that is not RUNNING", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.updateCluster("demo", bed.cluster.version, { status: "SLEEPING", now: bed.clock.now() });
    bed.agent.addPending("compute", "80", { nodes: 1, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.outcome).toBe("not-running");
    expect(bed.agent.calls).toHaveLength(0);
  });
});
