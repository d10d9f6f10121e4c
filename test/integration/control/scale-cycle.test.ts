import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { ROUND_TAG, runScaleCycle, ShrinkMemory } from "../../../lib/control/scale-cycle.js";
import { type ConfigInput, parseConfig } from "../../../lib/core/config.js";
import { AgentUnreachableError } from "../../../lib/ports/agent-channel.js";
import type { ReportNode } from "../../../lib/ports/agent-report.js";
import { InvalidRequestError, ThrottledError } from "../../../lib/ports/errors.js";
import { placeholderSpecs } from "../../../scheduler-plugins/slurm/placeholders.js";
import { CONFIG, controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0, pollMs: 15_000 };

/** A node launched for job `id` that joined Slurm and now sits idle, the job gone; its name. */
async function idleJoinedNode(bed: Awaited<ReturnType<typeof controlBed>>, id: string): Promise<string> {
  bed.agent.addPending("compute", id, { nodes: 1, cpus: 4 });
  await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
  const [instance] = bed.provider.fakeCloud.live();
  if (instance === undefined) throw new Error("nothing launched");
  bed.agent.jobs = [];
  bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
  return instance.id;
}

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

  it("marks nodes joined when Slurm reports them, drains an idle one and terminates it in the poll that drained it", async () => {
    // Prepare
    const bed = await controlBed(db);
    const instance = await idleJoinedNode(bed, "30");
    // Act: joins, idles past shrinkIdleTime → drained once two polls agree, read back, terminated at once
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    const joined = await bed.store.listNodes("demo");
    bed.clock.advance(301_000);
    const memory = new ShrinkMemory();
    const drainSeen = await runScaleCycle("demo", { ...bed.deps("inv-3"), shrinkMemory: memory }, ONE_POLL);
    bed.agent.calls.length = 0;
    const drain = await runScaleCycle("demo", { ...bed.deps("inv-4"), shrinkMemory: memory }, ONE_POLL);
    // Assess
    expect(joined[0]?.status).toBe("JOINED");
    expect(drainSeen.drained).toEqual([]);
    expect(drain.drained).toEqual([instance]);
    expect(drain.terminated).toEqual([instance]);
    // The order: the plan's report, the drain, a second report read after it, then Slurm told.
    expect(bed.agent.calls.map((c) => c.action).filter((a) => a !== "setJobNotes")).toEqual([
      "report",
      "drain",
      "report",
      "deleteNode",
    ]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
    expect(bed.agent.nodes).toHaveLength(0);
    expect(await bed.store.listNodes("demo")).toHaveLength(0);
    expect(bed.agent.calls.some((c) => c.action === "drain" && c.reason.startsWith("nowscale"))).toBe(true);
    const terminated = (await bed.store.listEvents("demo")).filter((e) => e.kind === "TERMINATED");
    expect(terminated.map((e) => e.message)).toEqual([
      "drained and holds no job: terminated in the poll that drained it",
    ]);
    expect(bed.metrics.sum("NodesTerminated")).toBe(1);
  });

  it("a node that got a job between the report and the drain is kept DRAINING, and terminated once its job ends and two reports agree", async () => {
    // Prepare: an idle node past shrinkIdleTime; Slurm starts a job on it just before the drain lands
    const bed = await controlBed(db);
    const instance = await idleJoinedNode(bed, "31");
    bed.clock.advance(301_000);
    const memory = new ShrinkMemory();
    await runScaleCycle("demo", { ...bed.deps("inv-2"), shrinkMemory: memory }, ONE_POLL);
    const drain = bed.agent.drain.bind(bed.agent);
    bed.agent.drain = async (node, reason) => {
      const n = bed.agent.nodes.find((x) => x.name === node) as ReportNode;
      Object.assign(n, { state: "ALLOCATED", cpusAllocated: 4, slurmState: "ALLOCATED+DYNAMIC_NORM" });
      delete n.idleSince;
      bed.agent.jobs.push({
        queue: "compute",
        state: "RUNNING",
        nodes: 1,
        cpusPerNode: 4,
        count: 1,
        oldestSubmittedAt: new Date(bed.clock.now()).toISOString(),
        jobIds: ["32"],
        nodeNames: [node],
      });
      await drain(node, reason);
    };
    // Act: the drain poll; then the job ends and the usual path runs
    const drained = await runScaleCycle("demo", { ...bed.deps("inv-3"), shrinkMemory: memory }, ONE_POLL);
    const whileBusy = bed.provider.fakeCloud.get(instance)?.state;
    const node = bed.agent.nodes.find((x) => x.name === instance) as ReportNode;
    const stateAfterDrain = node.state;
    Object.assign(node, {
      state: "DRAINED",
      cpusAllocated: 0,
      idleSince: new Date(bed.clock.now()).toISOString(),
    });
    bed.agent.jobs = [];
    const seen = await runScaleCycle("demo", { ...bed.deps("inv-4"), shrinkMemory: memory }, ONE_POLL);
    const agreed = await runScaleCycle("demo", { ...bed.deps("inv-5"), shrinkMemory: memory }, ONE_POLL);
    // Assess
    expect(drained.drained).toEqual([instance]);
    expect(drained.terminated).toEqual([]);
    expect(stateAfterDrain).toBe("DRAINING");
    expect(whileBusy).toBe("RUNNING");
    expect(seen.terminated).toEqual([]);
    expect(agreed.terminated).toEqual([instance]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(0);
  });

  it("terminates nothing in the drain's poll when Slurm cannot be read back after the drain", async () => {
    // Prepare: an idle node past shrinkIdleTime; the agent answers the first report, then slurmctld goes
    const bed = await controlBed(db);
    const instance = await idleJoinedNode(bed, "33");
    bed.clock.advance(301_000);
    const memory = new ShrinkMemory();
    await runScaleCycle("demo", { ...bed.deps("inv-2"), shrinkMemory: memory }, ONE_POLL);
    const drain = bed.agent.drain.bind(bed.agent);
    bed.agent.drain = async (node, reason) => {
      await drain(node, reason);
      bed.agent.outage = "slurmctld";
    };
    // Act
    const summary = await runScaleCycle("demo", { ...bed.deps("inv-3"), shrinkMemory: memory }, ONE_POLL);
    // Assess: drained, not terminated; the record says DRAINING for the usual path
    expect(summary.drained).toEqual([instance]);
    expect(summary.terminated).toEqual([]);
    expect(bed.provider.fakeCloud.get(instance)?.state).toBe("RUNNING");
    expect((await bed.store.listNodes("demo")).map((r) => r.status)).toEqual(["DRAINING"]);
  });

  it("keeps an idle node warm for the arrivals the agent counted, and drains it without them (headroom, issue 15)", async () => {
    // Prepare: headroomSeconds 600, shrinkIdleTime 60 s; one idle 4-vCPU node, no job left in Slurm.
    //   The agent counted 48 CPUs of single-node jobs in the last hour: 48 / 3600 × 600 = 8 vCPUs of
    //   headroom, more than the node's 4: it stays. Without the count the planner sees no recent job.
    const config = { ...CONFIG, shrinkIdleTime: 60, headroomSeconds: 600 };
    const warm = await controlBed(db, "demo", config);
    const cold = await controlBed(db, "demo", config);
    for (const bed of [warm, cold]) {
      await idleJoinedNode(bed, "40");
      bed.clock.advance(120_000);
    }
    warm.agent.arrivals = [
      { queue: "compute", windowS: 300, cpus: 4 },
      { queue: "compute", windowS: 3600, cpus: 48 },
    ];
    // Act: two polls each (a shrink needs two reports that agree)
    const shrunk = async (bed: typeof warm) => {
      const memory = new ShrinkMemory();
      const drained: string[] = [];
      for (const owner of ["inv-2", "inv-3"]) {
        drained.push(
          ...(await runScaleCycle("demo", { ...bed.deps(owner), shrinkMemory: memory }, ONE_POLL)).drained,
        );
      }
      return drained;
    };
    const warmDrained = await shrunk(warm);
    const coldDrained = await shrunk(cold);
    // Assess
    expect(warmDrained).toEqual([]);
    expect(warm.provider.fakeCloud.live()).toHaveLength(1);
    expect(coldDrained).toHaveLength(1);
    expect(cold.provider.fakeCloud.live()).toHaveLength(0);
  });

  it("a busy node flapped to drained or idle in one report is neither drained nor terminated (class 8)", async () => {
    // Prepare: a node NowScale launched runs a job
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "35", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("nothing launched");
    bed.agent.jobs = [];
    bed.agent.join(instance.id, "compute", "c5.xlarge", "zone-a");
    const node = bed.agent.nodes[0] as ReportNode;
    const busy: ReportNode = { ...node, state: "ALLOCATED", cpusAllocated: 4 };
    delete busy.idleSince;
    bed.agent.nodes = [busy];
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    bed.clock.advance(3_600_000);
    // Act: every other poll the report flaps the busy node to DRAINED (by nowscale) or to long IDLE
    const memory = new ShrinkMemory();
    const flaps: ReportNode[] = [
      {
        ...busy,
        state: "DRAINED",
        cpusAllocated: 0,
        reason: "nowscale: idle",
        idleSince: new Date(0).toISOString(),
      },
      { ...busy, state: "IDLE", cpusAllocated: 0, idleSince: new Date(0).toISOString() },
    ];
    for (let poll = 0; poll < 8; poll++) {
      bed.agent.nodes = [poll % 2 === 0 ? (flaps[(poll / 2) % 2] as ReportNode) : busy];
      await runScaleCycle("demo", { ...bed.deps(`inv-f${poll}`), shrinkMemory: memory }, ONE_POLL);
      bed.clock.advance(15_000);
    }
    // Assess
    expect(bed.provider.fakeCloud.callsOf("terminate")).toEqual([]);
    expect(bed.agent.calls.filter((c) => c.action === "drain" || c.action === "deleteNode")).toEqual([]);
    expect(bed.provider.fakeCloud.get(instance.id)?.state).toBe("RUNNING");
  });

  it("a report that leaves out joined nodes does not let the cycle exceed maxSize (class 5)", async () => {
    // Prepare: a queue of maxSize 4 whose 4 nodes joined; the report then leaves them out
    const bed = await controlBed(db, "demo", {
      ...CONFIG,
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 4,
          expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }],
        },
      ],
    });
    bed.agent.addPending("compute", "36", { nodes: 4, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    for (const i of bed.provider.fakeCloud.live()) bed.agent.join(i.id, "compute", "c5.xlarge", "zone-a");
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Act: nodes missing from the report, more demand pending
    bed.agent.nodes = [];
    bed.agent.jobs = [];
    bed.agent.addPending("compute", "37", { nodes: 4, cpus: 4 });
    const summary = await runScaleCycle("demo", bed.deps("inv-3"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(0);
    expect(bed.provider.fakeCloud.live()).toHaveLength(4);
  });

  it("instances a launch started but could not release are recorded and their release retried (class 2)", async () => {
    // Prepare: the cloud starts one more than asked (a token found an earlier, larger call), and the
    // provider's release of the surplus fails every time
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "38", { nodes: 2, cpus: 4 });
    const run = bed.provider.fakeCloud.run.bind(bed.provider.fakeCloud);
    bed.provider.fakeCloud.run = (input) =>
      run({ ...input, maxCount: input.maxCount + 1, minCount: input.minCount + 1 });
    bed.provider.fakeCloud.failNext("terminate", "server", 5); // every retry of the release
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const records = await bed.store.listNodes("demo");
    // the reconciler retries the release once the cloud answers again
    bed.clock.advance(120_000);
    const reconciled = await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(120_000);
    await reconcileCluster("demo", bed.deps("rec-2"));
    // Assess
    expect(summary.launchedNodes).toBe(2);
    expect(bed.provider.fakeCloud.live()).toHaveLength(2);
    expect(records.map((r) => r.status).sort()).toEqual(["LAUNCHING", "LAUNCHING", "TERMINATING"]);
    expect(reconciled.releasesRetried).toHaveLength(1);
    expect(await bed.store.listNodes("demo")).toHaveLength(2);
    expect((await bed.store.listEvents("demo")).map((e) => e.kind)).toContain("RELEASE_PENDING");
  });

  it("a launch admitted before a deletion began is fenced before the provider call (class 4)", async () => {
    // Prepare: the cluster is set DELETING between admission and the launch call
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "39", { nodes: 2, cpus: 4 });
    const record = bed.store.recordLaunchIntent.bind(bed.store);
    bed.store.recordLaunchIntent = async (intent) => {
      const out = await record(intent);
      const c = await bed.store.getCluster("demo");
      if (c !== undefined)
        await bed.store.updateCluster("demo", c.version, { status: "DELETING", now: bed.clock.now() });
      return out;
    };
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(0);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(0);
    const [intent] = await bed.store.listLaunchIntents("demo");
    expect(intent?.status).toBe("FAILED");
    expect(intent?.failures[0]?.kind).toBe("Fenced");
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

  it("writes LAUNCH_FAILED once per offering and reason while launches keep failing, across restarts, then with the count held back", async () => {
    // Prepare: the cloud throttles every launch (not held back by the provider, so retried every poll);
    // every cycle is a new invocation (a Lambda restart: nothing in memory)
    const bed = await controlBed(db);
    bed.provider.fakeCloud.failNext("run", "throttle", 10_000);
    bed.agent.addPending("compute", "71", { nodes: 1, cpus: 4 });
    // Act: a cycle a minute for 12 minutes
    for (let minute = 0; minute <= 12; minute++) {
      await runScaleCycle("demo", bed.deps(`inv-${minute}`), ONE_POLL);
      bed.clock.advance(60_000);
    }
    // Assess: more failed launches than events; the first, then one ten minutes on with the count
    const failedIntents = (await bed.store.listLaunchIntents("demo")).filter((i) => i.status === "FAILED");
    const failed = (await bed.store.listEvents("demo")).filter((e) => e.kind === "LAUNCH_FAILED").reverse();
    expect(failedIntents.length).toBeGreaterThan(10);
    const [first, second] = failed;
    if (first === undefined || second === undefined) throw new Error(`${failed.length} LAUNCH_FAILED events`);
    expect(failed).toHaveLength(2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(10 * 60_000);
    const between = failedIntents.filter((i) => i.intendedAt > first.at && i.intendedAt < second.at);
    expect(first.message).toBe("1 × c5.xlarge: Throttled");
    expect(second.message).toBe(
      `1 × c5.xlarge: Throttled (repeated ${between.length - 1} times since ${new Date(first.at).toISOString()})`,
    );
  });

  it("writes a LAUNCH_FAILED at once when the offering fails again after a launch that succeeded", async () => {
    // Prepare: the cloud throttles the launch, then lets one through, then throttles again, all within
    // the ten minutes; every cycle a new invocation (nothing in memory)
    const bed = await controlBed(db);
    const launch = bed.provider.launch.bind(bed.provider);
    let throttled = true;
    bed.provider.launch = async (request) => {
      if (throttled) throw new ThrottledError("RequestLimitExceeded");
      return launch(request);
    };
    // Act: fail, succeed a minute later, then (new demand) fail two minutes after that
    bed.agent.addPending("compute", "73", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(60_000);
    throttled = false;
    const succeeded = await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    bed.clock.advance(120_000);
    throttled = true;
    bed.agent.addPending("compute", "74", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-3"), ONE_POLL);
    // Assess: the failure after the success is a new episode, written at once, with no count carried over
    const failed = (await bed.store.listEvents("demo")).filter((e) => e.kind === "LAUNCH_FAILED").reverse();
    expect(succeeded.launchedNodes).toBe(1);
    expect(failed.map((e) => e.message)).toEqual(["1 × c5.xlarge: Throttled", "1 × c5.xlarge: Throttled"]);
    expect((failed[1]?.at ?? 0) - (failed[0]?.at ?? 0)).toBe(180_000);
  });

  it("holds back a second LAUNCH_FAILED of the offering within the interval when nothing launched between", async () => {
    // Prepare: the same three cycles as above, but the middle one fails too
    const bed = await controlBed(db);
    bed.provider.launch = async () => {
      throw new ThrottledError("RequestLimitExceeded");
    };
    // Act
    bed.agent.addPending("compute", "75", { nodes: 1, cpus: 4 });
    for (const [i, wait] of [60_000, 120_000, 0].entries()) {
      await runScaleCycle("demo", bed.deps(`inv-${i}`), ONE_POLL);
      bed.clock.advance(wait);
    }
    // Assess
    const failed = (await bed.store.listEvents("demo")).filter((e) => e.kind === "LAUNCH_FAILED");
    expect(failed.map((e) => e.message)).toEqual(["1 × c5.xlarge: Throttled"]);
  });

  it("writes a LAUNCH_FAILED at once when a refused request's reason changes within the interval", async () => {
    // Prepare: the cloud refuses the request as a whole, first for one reason, then (the operator fixed
    // it) for another: the second is news, not a repeat
    const bed = await controlBed(db);
    const reasons = ["user data is over 16 KiB", "image img-123 does not exist"];
    let call = 0;
    bed.provider.launch = async () => {
      throw new InvalidRequestError(reasons[Math.min(call++, 1)] as string);
    };
    bed.agent.addPending("compute", "72", { nodes: 1, cpus: 4 });
    // Act: a cycle a minute for 3 minutes
    for (let minute = 0; minute < 3; minute++) {
      await runScaleCycle("demo", bed.deps(`inv-${minute}`), ONE_POLL);
      bed.clock.advance(60_000);
    }
    // Assess: each reason once, the repeat of the second held back
    const failed = (await bed.store.listEvents("demo")).filter((e) => e.kind === "LAUNCH_FAILED").reverse();
    expect(call).toBe(3);
    expect(failed.map((e) => e.message)).toEqual([
      "1 × c5.xlarge: InvalidRequest: user data is over 16 KiB",
      "1 × c5.xlarge: InvalidRequest: image img-123 does not exist",
    ]);
  });

  it("launches the next-best shape once the provider holds the best fit unavailable (issue 12, case 7)", async () => {
    // Prepare: the best fit for 4 CPUs is c5.xlarge, which has no capacity; c5.2xlarge fits too.
    const bed = await controlBed(db, "demo", {
      ...CONFIG,
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 20,
          expansionNodeConfigs: [
            { zone: "zone-a", instanceType: "c5.xlarge" },
            { zone: "zone-a", instanceType: "c5.2xlarge" },
          ],
        },
      ],
    });
    bed.provider.fakeCloud.setCapacity("c5.xlarge", "zone-a", 0);
    bed.agent.addPending("compute", "71", { nodes: 1, cpus: 4 });
    // Act: the first cycle meets the capacity error; the next plans around the held offering
    const first = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.clock.advance(20_000);
    const second = await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess
    expect(first.launchedNodes).toBe(0);
    expect(await bed.provider.unavailableOfferings()).toEqual([
      expect.objectContaining({ instanceType: "c5.xlarge", zone: "zone-a" }),
    ]);
    expect(second.launchedNodes).toBe(1);
    expect(bed.provider.fakeCloud.live().map((i) => i.instanceType)).toEqual(["c5.2xlarge"]);
  });

  it("reads the cluster record once per poll, not again when the caller hands it over (issue 14)", async () => {
    // Prepare: nothing to launch (a launch re-reads the record for its fences, on purpose)
    const bed = await controlBed(db);
    let reads = 0;
    const getCluster = bed.store.getCluster.bind(bed.store);
    bed.store.getCluster = (id: string) => {
      reads += 1;
      return getCluster(id);
    };
    // Act: the Lambda read the record to build its ports, and hands it over
    const handed = await runScaleCycle("demo", { ...bed.deps("inv-1"), cluster: bed.cluster }, ONE_POLL);
    const handedReads = reads;
    reads = 0;
    bed.clock.advance(20_000);
    await runScaleCycle("demo", bed.deps("inv-2"), { windowMs: 20_000, pollMs: 15_000 });
    // Assess: 0 reads with the record handed over; 1 + 1 for two polls without
    expect(handed.polls).toBe(1);
    expect(handedReads).toBe(0);
    expect(reads).toBe(2);
  });

  it("records each node with the token of the candidate it was started for, even between look-alike candidates", async () => {
    // Prepare: two entries of one type and zone in different subnets; the first one's call fails
    const bed = await controlBed(db, "demo", {
      ...CONFIG,
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 20,
          expansionNodeConfigs: [
            { zone: "zone-a", instanceType: "c5.xlarge", subnetId: "subnet-a1" },
            { zone: "zone-a", instanceType: "c5.xlarge", subnetId: "subnet-a2" },
          ],
        },
      ],
    });
    // Each call delivers one instance, so two one-node jobs take one from each candidate.
    bed.provider.fakeCloud.setUnderDelivery("c5.xlarge", "zone-a", 1);
    bed.agent.addPending("compute", "73", { nodes: 1, cpus: 4 });
    bed.agent.addPending("compute", "74", { nodes: 1, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(2);
    const [intent] = await bed.store.listLaunchIntents("demo");
    expect(intent?.tokens).toHaveLength(2);
    const subnetOf = new Map(bed.provider.fakeCloud.live().map((i) => [i.id, i.subnetId]));
    const nodes = await bed.store.listNodes("demo");
    expect(
      nodes
        .map((n) => [
          subnetOf.get(n.instanceId),
          n.token === intent?.tokens[0] ? 0 : n.token === intent?.tokens[1] ? 1 : -1,
        ])
        .sort(),
    ).toEqual([
      ["subnet-a1", 0],
      ["subnet-a2", 1],
    ]);
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

  it("tells a job it will not serve as one JOB_NOT_SERVED event while it lasts (issue 12)", async () => {
    // Prepare: 64 CPUs per node; c5.xlarge has 4.
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "90", { nodes: 1, cpus: 64 });
    const memory = new ShrinkMemory();
    // Act: four polls in one invocation, then a second invocation with the same memory
    await runScaleCycle(
      "demo",
      { ...bed.deps("inv-1"), shrinkMemory: memory },
      { windowMs: 50_000, pollMs: 15_000 },
    );
    await runScaleCycle("demo", { ...bed.deps("inv-2"), shrinkMemory: memory }, ONE_POLL);
    // Assess
    const told = (await bed.store.listEvents("demo")).filter((e) => e.kind === "JOB_NOT_SERVED");
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ queue: "compute", count: 1 });
    expect(told[0]?.message).toMatch(/^job 90: no instance type of queue compute fits 64 CPU/);
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(0);
  });

  it("the safety net: an idle node Slurm leaves beside a fitting pending job stops covering it (issue 12)", async () => {
    // Prepare: a node joins idle; a pending job it fits arrives and Slurm does not start it there.
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "91", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [first] = bed.provider.fakeCloud.live();
    if (first === undefined) throw new Error("nothing launched");
    bed.agent.join(first.id, "compute", "c5.xlarge", "zone-a");
    // Act: 2 minutes later the job still pends beside the idle node.
    bed.clock.advance(120_000);
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess: the mismatch is an event; the only fitting type is the refused one, so nothing more launches.
    const events = await bed.store.listEvents("demo");
    const mismatch = events.find((e) => e.kind === "SLURM_MISMATCH");
    expect(mismatch).toMatchObject({ nodes: [first.id] });
    expect(mismatch?.message).toMatch(/beside pending job 91/);
    expect(events.find((e) => e.kind === "JOB_NOT_SERVED")?.message).toMatch(
      /Slurm has not started it on idle c5.xlarge/,
    );
    expect(bed.provider.fakeCloud.live()).toHaveLength(1);
  });

  it("a node of its own stuck not ready past bootTimeout covers nothing and is retired (issue 12, class 6)", async () => {
    // Prepare: a launched node registers, then Slurm holds it powered down (not capacity).
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "92", { nodes: 1, cpus: 4 });
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    const [stuck] = bed.provider.fakeCloud.live();
    if (stuck === undefined) throw new Error("nothing launched");
    bed.agent.join(stuck.id, "compute", "c5.xlarge", "zone-a");
    const node = bed.agent.nodes[0] as ReportNode;
    const notReady: ReportNode = { ...node, state: "NOT_READY", slurmState: "IDLE+POWERED_DOWN" };
    delete notReady.idleSince;
    bed.agent.nodes = [notReady];
    const memory = new ShrinkMemory();
    // Act: 16 minutes after launch (bootTimeout 900 s), two polls that agree
    bed.clock.advance(16 * 60_000);
    await runScaleCycle("demo", { ...bed.deps("inv-2"), shrinkMemory: memory }, ONE_POLL);
    const second = await runScaleCycle("demo", { ...bed.deps("inv-3"), shrinkMemory: memory }, ONE_POLL);
    // Assess: the job got a new node; the stuck one is terminated.
    expect(second.terminated).toEqual([stuck.id]);
    expect(bed.provider.fakeCloud.live().map((i) => i.id)).not.toContain(stuck.id);
    expect(bed.provider.fakeCloud.live()).toHaveLength(1);
  });
});

describe("scale cycle: job notes, where users look (issue 12)", () => {
  const notesCalls = (bed: Awaited<ReturnType<typeof controlBed>>) =>
    bed.agent.calls.flatMap((c) => (c.action === "setJobNotes" ? [c.notes] : []));

  it("writes why a job is not served into its Comment once, and clears it when the job is served", async () => {
    // Prepare: 64 CPUs per node; c5.xlarge has 4.
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "90", { nodes: 1, cpus: 64 });
    // Act: four polls; then the user shrinks the job to 4 CPUs (scontrol update) and a new invocation runs.
    await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 50_000, pollMs: 15_000 });
    const noted = structuredClone(bed.agent.jobs[0]);
    (bed.agent.jobs[0] as { cpusPerNode: number }).cpusPerNode = 4;
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    // Assess: one write while it lasted, the note as squeue would show it, then one clear.
    expect(noted).toMatchObject({
      note: "nowscale: no instance type of queue compute fits 64 CPU, 0 MiB per node",
      noteIn: "comment",
    });
    expect(notesCalls(bed)).toEqual([
      [{ jobIds: ["90"], text: noted?.note, field: "comment" }],
      [{ jobIds: ["90"], text: "", field: "comment" }],
    ]);
    expect(bed.agent.jobs[0]).not.toHaveProperty("note");
    expect(bed.provider.calls.filter((c) => c.method === "launch")).toHaveLength(1);
  });

  it("a new scaler reads the note Slurm holds: nothing is rewritten, and a stale note is cleared", async () => {
    // Prepare: an earlier scaler wrote both notes; job 93 is served now.
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "92", { nodes: 1, cpus: 64 });
    bed.agent.addPending("compute", "93", { nodes: 1, cpus: 2 });
    Object.assign(bed.agent.jobs[0] as object, {
      note: "nowscale: no instance type of queue compute fits 64 CPU, 0 MiB per node",
      noteIn: "comment",
    });
    Object.assign(bed.agent.jobs[1] as object, { note: "nowscale: old reason", noteIn: "comment" });
    // Act
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(notesCalls(bed)).toEqual([[{ jobIds: ["93"], text: "", field: "comment" }]]);
  });

  it("a job with a user's comment gets the note in AdminComment; the user's text is never touched", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "94", { nodes: 1, cpus: 64 });
    Object.assign(bed.agent.jobs[0] as object, { userComment: true });
    // Act
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(
      notesCalls(bed)
        .flat()
        .map((n) => n.field),
    ).toEqual(["adminComment"]);
    expect(bed.agent.jobs[0]).toMatchObject({ noteIn: "adminComment", userComment: true });
  });

  it("writes at most 20 notes per poll, in one agent call; the rest at the next poll", async () => {
    // Prepare: 25 groups no type fits.
    const bed = await controlBed(db);
    for (let i = 0; i < 25; i++) bed.agent.addPending("compute", `${100 + i}`, { nodes: 1, cpus: 64 + i });
    // Act
    await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 20_000, pollMs: 15_000 });
    // Assess
    expect(notesCalls(bed).map((notes) => notes.length)).toEqual([20, 5]);
    expect(bed.agent.jobs.every((g) => g.note?.startsWith("nowscale: no instance type"))).toBe(true);
  });

  it("a queue in protected mode: its jobs say so", async () => {
    // Prepare
    const bed = await controlBed(db);
    await bed.store.recordBootstrapFailure("demo", "compute", 1, bed.clock.now());
    bed.agent.addPending("compute", "41", { nodes: 2, cpus: 4 });
    // Act
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(bed.agent.jobs[0]?.note).toMatch(/^nowscale: queue compute is in protected mode/);
  });

  it("a failed note call does not stop the cycle and is retried at the next poll", async () => {
    // Prepare: the agent refuses the first notes call only.
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "95", { nodes: 1, cpus: 64 });
    bed.agent.addPending("compute", "96", { nodes: 1, cpus: 4 });
    const write = bed.agent.setJobNotes.bind(bed.agent);
    let failures = 1;
    bed.agent.setJobNotes = async (notes) => {
      if (failures-- > 0) throw new AgentUnreachableError("agent down for a moment");
      return write(notes);
    };
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 20_000, pollMs: 15_000 });
    // Assess
    expect(summary).toMatchObject({ outcome: "done", polls: 2, launchedNodes: 1 });
    expect(bed.agent.jobs[0]?.note).toMatch(/^nowscale: no instance type/);
  });

  it("writes nothing from a format-string report (Slurm before 22.05): a user's comment cannot be seen there", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.addPending("compute", "97", { nodes: 1, cpus: 64 });
    const report = bed.agent.report.bind(bed.agent);
    bed.agent.report = async () => ({ ...(await report()), source: "format" });
    // Act
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(notesCalls(bed)).toEqual([]);
    expect((await bed.store.listEvents("demo")).map((e) => e.kind)).toContain("JOB_NOT_SERVED");
  });
});

describe("scale cycle: placeholder FUTURE nodes in step with the configuration (issue 12)", () => {
  const syncs = (bed: Awaited<ReturnType<typeof controlBed>>) =>
    bed.agent.calls.flatMap((c) => (c.action === "syncPlaceholders" ? [c.names] : []));

  it("creates them once, leaves them alone while in step, and replaces them when the configuration changes", async () => {
    // Prepare: Slurm holds none yet, and one stale placeholder of an old configuration.
    const bed = await controlBed(db);
    bed.agent.placeholders = ["ph-00000000000000aa"];
    const wanted = placeholderSpecs(parseConfig(CONFIG)).map((s) => s.name);
    // Act: one invocation of four polls, a second one; then the queue gets a second type.
    await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 50_000, pollMs: 15_000 });
    await runScaleCycle("demo", bed.deps("inv-2"), ONE_POLL);
    const afterFirst = [...(bed.agent.placeholders ?? [])];
    const changed: ConfigInput = {
      ...CONFIG,
      queueConfigs: [
        {
          queueName: "compute",
          maxSize: 20,
          expansionNodeConfigs: [
            { zone: "zone-a", instanceType: "c5.xlarge" },
            { zone: "zone-a", instanceType: "c5.2xlarge" },
          ],
        },
      ],
    };
    const cluster = await bed.store.getCluster("demo");
    await bed.store.updateCluster("demo", cluster?.version ?? 0, {
      autoscaling: changed,
      now: bed.clock.now(),
    });
    await runScaleCycle("demo", bed.deps("inv-3"), ONE_POLL);
    // Assess: one sync per change, never one while Slurm's match the configuration.
    const next = placeholderSpecs(parseConfig(changed)).map((s) => s.name);
    expect(afterFirst).toEqual(wanted);
    expect(syncs(bed)).toEqual([wanted, next]);
    expect(bed.agent.placeholders).toEqual(next);
    expect(next).toHaveLength(2);
    expect(next).toContain(wanted[0]);
  });

  it("never counts them as capacity: a pending job still launches beside them", async () => {
    // Prepare
    const bed = await controlBed(db);
    bed.agent.placeholders = placeholderSpecs(parseConfig(CONFIG)).map((s) => s.name);
    bed.agent.addPending("compute", "60", { nodes: 1, cpus: 4 });
    // Act
    const summary = await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    // Assess
    expect(summary.launchedNodes).toBe(1);
    expect(syncs(bed)).toEqual([]);
  });

  it("syncs nothing when the report cannot list them, and retries a failed sync at the next poll", async () => {
    // Prepare: the first invocation's agent cannot read them; the second's refuses the first sync.
    const bed = await controlBed(db);
    await runScaleCycle("demo", bed.deps("inv-1"), ONE_POLL);
    bed.agent.placeholders = [];
    const sync = bed.agent.syncPlaceholders.bind(bed.agent);
    let failures = 1;
    bed.agent.syncPlaceholders = async (specs) => {
      if (failures-- > 0) throw new AgentUnreachableError("agent down for a moment");
      return sync(specs);
    };
    // Act
    await runScaleCycle("demo", bed.deps("inv-2"), { windowMs: 20_000, pollMs: 15_000 });
    // Assess
    expect(syncs(bed)).toHaveLength(1);
    expect(bed.agent.placeholders).toEqual(placeholderSpecs(parseConfig(CONFIG)).map((s) => s.name));
  });
});
