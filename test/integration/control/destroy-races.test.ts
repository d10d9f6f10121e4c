import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detachStep } from "../../../lib/control/detach.js";
import { rebuildNodes } from "../../../lib/control/node-rebuild.js";
import { reconcileCluster } from "../../../lib/control/reconciler.js";
import { runScaleCycle, ShrinkMemory } from "../../../lib/control/scale-cycle.js";
import { resumeNodes, type SleepDeps, stopNodes } from "../../../lib/control/sleep.js";
import type { NodeStatus, StateStore } from "../../../lib/ports/state-store.js";
import { CONFIG, type ControlBed, controlBed, runJobOn } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * Destroying races (docs/control-plane.md, "no busy node terminated"): something changes the node
 * between the observation a destroying decision rests on and the terminate. Each test puts the change at
 * the worst moment, right before the retirement's first write, and asks that no instance whose Slurm
 * node runs a job is terminated. Real store (dynalite), fake cloud and agent.
 */
let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const ONE_POLL = { windowMs: 0 };

/**
 * The store as one actor sees it, with `before` run (once) right before its first status write
 * `from` → `to`: another actor's change landing at that moment.
 */
function interposing(
  store: StateStore,
  from: NodeStatus,
  to: NodeStatus,
  before: () => Promise<void>,
): StateStore {
  let done = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== "updateNodeStatus") return typeof value === "function" ? value.bind(target) : value;
      return async (c: string, n: string, expected: NodeStatus, status: NodeStatus, at: number) => {
        if (!done && expected === from && status === to) {
          done = true;
          await before();
        }
        return target.updateNodeStatus(c, n, expected, status, at);
      };
    },
  });
}

function sleepDeps(bed: ControlBed): SleepDeps {
  return {
    store: bed.store,
    clock: bed.clock,
    runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
  };
}

/** One node launched for a pending job; its instance id. */
async function launchOne(bed: ControlBed): Promise<string> {
  bed.agent.addPending("compute", "1", { nodes: 1, cpus: 4 });
  await runScaleCycle("demo", bed.deps("inv-launch"), ONE_POLL);
  const [instance] = bed.provider.fakeCloud.live();
  if (instance === undefined) throw new Error("nothing launched");
  return instance.id;
}

describe("destroying races", () => {
  it("a slow boot that joins Slurm and takes a job while the reconciler retires it for its boot timeout is kept", async () => {
    // Prepare: a node not in Slurm past the boot timeout, marked absent by a first run
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.clock.advance(900_000);
    await reconcileCluster("demo", bed.deps("rec-0"));
    bed.clock.advance(120_000);
    // The node registers after the run's report and gets its job; the scaler records the join just
    // before the reconciler's retirement writes TERMINATING.
    const store = interposing(bed.store, "LAUNCHING", "TERMINATING", async () => {
      bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
      runJobOn(bed, id, "1");
      await bed.store.updateNodeStatus("demo", id, "LAUNCHING", "JOINED", bed.clock.now());
    });
    // Act
    const summary = await reconcileCluster("demo", { ...bed.deps("rec-1"), store });
    // Assess: the instance runs its job, its record says JOINED, no bootstrap failure counted
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("RUNNING");
    expect(bed.provider.fakeCloud.callsOf("terminate")).toEqual([]);
    expect(summary.bootTimeouts).toEqual([]);
    expect((await bed.store.listNodes("demo")).find((r) => r.nodeName === id)?.status).toBe("JOINED");
    expect((await bed.store.getCluster("demo"))?.queueHealth.compute?.consecutiveBootstrapFailures ?? 0).toBe(
      0,
    );
  });

  it("a node stopped by hand and resumed while the scaler retires it, which then takes a job, is kept", async () => {
    // Prepare: a joined node running a job is stopped by hand (drained, waiting); its job ends
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, id, "1");
    await runScaleCycle("demo", bed.deps("inv-join"), ONE_POLL);
    const stopped = await stopNodes(sleepDeps(bed), "demo", [id]);
    expect(stopped.waiting.map((w) => w.node)).toEqual([id]);
    bed.agent.jobs = [];
    const node = bed.agent.nodes.find((n) => n.name === id);
    if (node === undefined) throw new Error("no node");
    node.cpusAllocated = 0;
    node.state = "DRAINED";
    // The operator resumes it (turnonc) right before the scaler's terminate, and Slurm gives it a job.
    const memory = new ShrinkMemory();
    await runScaleCycle("demo", { ...bed.deps("inv-1"), shrinkMemory: memory }, ONE_POLL);
    const store = interposing(bed.store, "DRAINING", "TERMINATING", async () => {
      const { resumed } = await resumeNodes(sleepDeps(bed), "demo", [id]);
      expect(resumed).toEqual([id]);
      runJobOn(bed, id, "2");
    });
    // Act: the second report in a row calls for its terminate
    await runScaleCycle("demo", { ...bed.deps("inv-2"), shrinkMemory: memory, store }, ONE_POLL);
    // Assess
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("RUNNING");
    expect(bed.provider.fakeCloud.callsOf("terminate")).toEqual([]);
    expect((await bed.store.listNodes("demo")).find((r) => r.nodeName === id)?.status).toBe("JOINED");
  });

  it("a release whose terminate failed, for a slow boot that then joined Slurm idle, is drained before any terminate", async () => {
    // Prepare: the boot timeout retires a node that never joined, but the cloud refuses the terminate;
    // the instance then joins Slurm after all, IDLE and not drained
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.agent.jobs = [];
    bed.clock.advance(900_000);
    await reconcileCluster("demo", bed.deps("rec-0"));
    bed.clock.advance(120_000);
    bed.provider.fakeCloud.failNext("terminate", "server", 5);
    await reconcileCluster("demo", bed.deps("rec-1"));
    expect((await bed.store.listNodes("demo")).find((r) => r.nodeName === id)?.status).toBe("TERMINATING");
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    bed.clock.advance(120_000);
    // Slurm gives the idle node a job after the run's report was read, right before its terminate.
    const store = new Proxy(bed.store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== "listNodes") return typeof value === "function" ? value.bind(target) : value;
        return async (clusterId: string) => {
          const records = await target.listNodes(clusterId);
          if (bed.agent.nodes.some((n) => n.name === id && n.state === "IDLE")) runJobOn(bed, id, "2");
          return records;
        };
      },
    });
    // Act: the run that retries the release
    await reconcileCluster("demo", { ...bed.deps("rec-2"), store });
    const whileBusy = bed.provider.fakeCloud.get(id)?.state;
    // its job ends: a later run sees it drained and empty
    bed.agent.jobs = [];
    const node = bed.agent.nodes.find((n) => n.name === id);
    if (node === undefined) throw new Error("no node");
    node.cpusAllocated = 0;
    node.state = "DRAINED";
    bed.clock.advance(120_000);
    const later = await reconcileCluster("demo", bed.deps("rec-3"));
    // Assess: the node was drained, not terminated under its job, and released once empty
    expect(whileBusy).toBe("RUNNING");
    expect(bed.agent.calls).toContainEqual(expect.objectContaining({ action: "drain", node: id }));
    expect(later.releasesRetried).toEqual([id]);
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("TERMINATED");
  });

  it("a master clock an hour behind does not make a node whose job just ended look idle past shrinkIdleTime", async () => {
    // Prepare: a joined node runs a job; the master's clock (the report's times) is an hour behind
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, id, "1");
    await runScaleCycle("demo", bed.deps("inv-join"), ONE_POLL);
    const behindMs = 3_600_000;
    const report = bed.agent.report.bind(bed.agent);
    bed.agent.report = async () => {
      const r = await report();
      const back = (iso: string) => new Date(Date.parse(iso) - behindMs).toISOString();
      return {
        ...r,
        generatedAt: back(r.generatedAt),
        jobs: r.jobs.map((g) => ({ ...g, oldestSubmittedAt: back(g.oldestSubmittedAt) })),
        nodes: r.nodes.map((n) => (n.idleSince === undefined ? n : { ...n, idleSince: back(n.idleSince) })),
      };
    };
    // its job ends now
    bed.agent.jobs = [];
    const node = bed.agent.nodes.find((n) => n.name === id);
    if (node === undefined) throw new Error("no node");
    node.cpusAllocated = 0;
    node.state = "IDLE";
    node.idleSince = new Date(bed.clock.now()).toISOString();
    // Act: three polls, 30 s of the 300 s shrinkIdleTime
    const early = await runScaleCycle("demo", bed.deps("inv-1"), { windowMs: 30_000 });
    bed.clock.advance(300_000);
    const late = await runScaleCycle("demo", bed.deps("inv-2"), { windowMs: 15_000 });
    // Assess: not drained right after its job; drained and terminated once really idle past the time
    expect(early.drained).toEqual([]);
    expect(late.drained).toEqual([id]);
    expect(late.terminated).toEqual([id]);
  });

  it("a rebuild of every failed node does not take a busy node one short report left out for a lost one", async () => {
    // Prepare: a joined node runs a job; the next report comes back without any node or job (a short
    // answer from Slurm), then Slurm answers in full again
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    runJobOn(bed, id, "1");
    await runScaleCycle("demo", bed.deps("inv-join"), ONE_POLL);
    const report = bed.agent.report.bind(bed.agent);
    let short = true;
    bed.agent.report = async () => {
      const r = await report();
      const answer = short ? { ...r, nodes: [], jobs: [] } : r;
      short = false;
      return answer;
    };
    const cluster = await bed.store.getCluster("demo");
    if (cluster === undefined) throw new Error("no cluster");
    // Act: the operator rebuilds every failed node, naming none
    const result = await rebuildNodes({ ...bed.deps("rebuild"), by: "ops" }, cluster, {});
    const running = bed.provider.fakeCloud.get(id)?.state;
    // Slurm really loses the node (its job ended): a reconciler run misses it too, then the rebuild takes it
    bed.agent.jobs = [];
    bed.agent.nodes = [];
    bed.clock.advance(60_000);
    await reconcileCluster("demo", bed.deps("rec-1"));
    const later = await rebuildNodes({ ...bed.deps("rebuild-2"), by: "ops" }, cluster, {});
    // Assess
    expect(result.rebuilt).toEqual([]);
    expect(running).toBe("RUNNING");
    expect(later.rebuilt.map((r) => [r.node, r.reason])).toEqual([[id, "Slurm no longer lists it"]]);
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("TERMINATED");
  });

  it("a reconciler run slowed down by store throttling does not retire on the report it read minutes before", async () => {
    // Prepare: Slurm loses an idle joined node; a first run marks it
    const bed = await controlBed(db);
    const id = await launchOne(bed);
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    bed.agent.jobs = [];
    await runScaleCycle("demo", bed.deps("inv-join"), ONE_POLL);
    const lost = bed.agent.nodes;
    bed.agent.nodes = [];
    await reconcileCluster("demo", bed.deps("rec-1"));
    bed.clock.advance(300_000);
    // The next run reads Slurm (still without the node), then its store reads are throttled for 90 s,
    // during which the node registers again and takes a job.
    let slowed = false;
    const store = new Proxy(bed.store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== "listNodes") return typeof value === "function" ? value.bind(target) : value;
        return async (clusterId: string) => {
          if (!slowed) {
            slowed = true;
            bed.clock.advance(90_000);
            bed.agent.nodes = lost;
            runJobOn(bed, id, "2");
          }
          return target.listNodes(clusterId);
        };
      },
    });
    // Act
    const summary = await reconcileCluster("demo", { ...bed.deps("rec-2"), store });
    // Assess
    expect(summary.retired).toEqual([]);
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("RUNNING");
  });

  it("a boot no job needed, which joins Slurm and takes a job after the poll's report, is not cancelled", async () => {
    // Prepare: cancelUnneededBoots; a node launched for a job that then went away (cancelled)
    const bed = await controlBed(db, "demo", { ...CONFIG, cancelUnneededBoots: true });
    const id = await launchOne(bed);
    bed.agent.jobs = [];
    const memory = new ShrinkMemory();
    await runScaleCycle("demo", { ...bed.deps("inv-1"), shrinkMemory: memory }, ONE_POLL);
    // The next poll's report still shows it booting; it registers right after, and a new job lands on it.
    let reads = 0;
    const store = new Proxy(bed.store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== "listNodes") return typeof value === "function" ? value.bind(target) : value;
        return async (clusterId: string) => {
          if (reads++ === 0) {
            bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
            runJobOn(bed, id, "2");
          }
          return target.listNodes(clusterId);
        };
      },
    });
    // Act: the second report in a row that calls for its cancel
    bed.clock.advance(15_000);
    const cycle = await runScaleCycle(
      "demo",
      { ...bed.deps("inv-2"), shrinkMemory: memory, store },
      ONE_POLL,
    );
    // Assess
    expect(cycle.terminated).toEqual([]);
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("RUNNING");
  });

  it("a detach does not retire, on one report, a TERMINATING node that Slurm lists idle and not drained", async () => {
    // Prepare: an attached cluster's node whose release failed (TERMINATING, instance alive) sits in
    // Slurm IDLE, not drained; then the cluster is detached
    const bed = await controlBed(db, "att");
    const { cluster: attached } = await bed.store.createCluster({
      clusterId: "attached",
      name: "attached",
      placement: { cloud: "fake", region: "local", imageId: "img-compute" },
      autoscaling: CONFIG,
      origin: "attached",
      attachment: {
        channel: "http",
        controllerAddress: "10.0.0.5",
        controllerPort: 6817,
        mungeKeySecret: "nowscale/attached/theirs/munge-key",
        subnetIds: [],
        securityGroupIds: [],
        slurmVersion: "22.05.8",
        attachedAt: bed.clock.now() - 60_000,
      },
      status: "RUNNING",
      now: bed.clock.now(),
    });
    bed.agent.addPending("compute", "1", { nodes: 1, cpus: 4 });
    await runScaleCycle("attached", bed.deps("inv-launch"), ONE_POLL);
    const [instance] = bed.provider.fakeCloud.live();
    if (instance === undefined) throw new Error("nothing launched");
    const id = instance.id;
    bed.agent.join(id, "compute", "c5.xlarge", "zone-a");
    await bed.store.updateNodeStatus("attached", id, "LAUNCHING", "TERMINATING", bed.clock.now());
    await bed.store.updateCluster("attached", attached.version, { status: "DELETING", now: bed.clock.now() });
    // Slurm gives the idle node a pending job right after the step's report.
    let landed = false;
    const store = new Proxy(bed.store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop !== "listNodes") return typeof value === "function" ? value.bind(target) : value;
        return async (clusterId: string) => {
          const reported = bed.agent.calls.some((c) => c.action === "report");
          if (reported && !landed) {
            landed = true;
            runJobOn(bed, id, "1");
          }
          return target.listNodes(clusterId);
        };
      },
    });
    bed.agent.calls.length = 0;
    // Act
    const progress = await detachStep(
      { store, provider: bed.provider, agent: bed.agent, clock: bed.clock },
      "attached",
      { idle: [], absent: [], steps: 0 },
    );
    // Assess: drained, left running its job
    expect(progress.retired).toEqual([]);
    expect(bed.provider.fakeCloud.get(id)?.state).toBe("RUNNING");
    expect(bed.agent.calls).toContainEqual(expect.objectContaining({ action: "drain", node: id }));
  });
});
