import { describe, expect, it } from "vitest";
import { RequestIds } from "../../../lib/core/fit.js";
import { type Decision, type InstanceTypeInfo, plan, type ResolvedQueue } from "../../../lib/core/index.js";
import type { SupplyNode } from "../../../lib/core/plan-terms.js";
import { planThpc } from "../../../lib/core/policy-thpc.js";
import { fullView } from "../../../lib/core/views.js";
import { config, iso, type JobIn, job, minutes, node, queue, SHAPES, state, T0 } from "./builders.js";

/**
 * THPC_AS's scale-out rules (docs/plan.md "What the planner does", the THPC operations guide), each
 * expected value worked out by hand from the rule it names. Shapes (builders.ts): c4m8 = 4 vCPU /
 * 8192 MiB, c8m16 = 8 / 16384, c8m8 = 8 / 8192, c4m16 = 4 / 16384, g4m16 = 4 / 16384 / 1 GPU.
 * Defaults: expansionBusyTime 0, bootTimeout 900 s, reservationTimeout 60 s, scaleUpMemRatio 1.
 */

const NOW = T0 + minutes(10);
/** An idle stretch that began 30 s ago: inside the safety net's 60 s, so the node still covers jobs. */
const FRESH_IDLE = iso(NOW - 30_000);

const total = (d: Decision) => d.launches.reduce((n, l) => n + l.count, 0);
const jobSkips = (d: Decision) =>
  d.skipped.flatMap((s) => ("job" in s ? [{ job: s.job, code: s.code, copies: s.copies }] : []));
const nodeSkip = (d: Decision, name: string) => d.skipped.find((s) => "node" in s && s.node === name);

/** A task job (sbatch -n): `tasks` tasks spread over as many nodes as their fit needs. */
function tasks(t: { tasks: number; cpus: number; mem: number; gpus?: number } & Partial<JobIn>): JobIn {
  const { tasks: n, cpus, mem, gpus, ...rest } = t;
  return job({
    nodes: undefined,
    cpusPerNode: undefined,
    memPerNodeMiB: undefined,
    gpusPerNode: undefined,
    tasks: n,
    cpusPerTask: cpus,
    memPerTaskMiB: mem,
    gpusPerTask: gpus ?? 0,
    ...rest,
  });
}

/** A queue whose entries are these types, one per type, all in zone z1. */
const typesQueue = (types: string[], over: Parameters<typeof queue>[0] = {}) =>
  queue({ expansionNodeConfigs: types.map((instanceType) => ({ zone: "z1", instanceType })), ...over });

describe("THPC: oldest job first (FIFO by submit time, then id)", () => {
  it("admits jobs under maxSize in submit order, whatever order the state lists them in", () => {
    // Prepare: room for 2 one-node jobs; listed newest first. Oldest: c (5 min), b (3 min), a (1 min).
    const jobs = [
      job({ id: "a", submittedAt: iso(NOW - minutes(1)) }),
      job({ id: "b", submittedAt: iso(NOW - minutes(3)) }),
      job({ id: "c", submittedAt: iso(NOW - minutes(5)) }),
    ];
    // Act
    const d = plan(config({}, [queue({ maxSize: 2 })]), state(jobs), NOW);
    // Assess: c then b take the two nodes; a, the newest, waits for room.
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["c", "b"], 2]]);
    expect(jobSkips(d)).toEqual([{ job: "a", code: "QUEUE_AT_MAX_SIZE", copies: 1 }]);
  });

  it("breaks a tie on submit time by id, and a later id submitted earlier still goes first", () => {
    // Prepare: y and x at the same instant (x first by id); z one millisecond before both.
    const jobs = [
      job({ id: "y", submittedAt: iso(NOW - 60_000) }),
      job({ id: "x", submittedAt: iso(NOW - 60_000) }),
      job({ id: "z", submittedAt: iso(NOW - 60_001) }),
    ];
    // Act: maxSize 1 admits only the first job in FIFO order; maxSize 2 the first two.
    const one = plan(config({}, [queue({ maxSize: 1 })]), state(jobs), NOW);
    const two = plan(config({}, [queue({ maxSize: 2 })]), state(jobs), NOW);
    // Assess
    expect(one.launches.flatMap((l) => l.jobs)).toEqual(["z"]);
    expect(two.launches.flatMap((l) => l.jobs)).toEqual(["z", "x"]);
    expect(jobSkips(two)).toEqual([{ job: "y", code: "QUEUE_AT_MAX_SIZE", copies: 1 }]);
  });

  it("orders jobs submitted months apart oldest first too", () => {
    // Prepare: three one-node jobs a year apart in all, listed newest first; room for two.
    const jobs = [
      job({ id: "new", submittedAt: "2025-12-31T00:00:00Z" }),
      job({ id: "mid", submittedAt: "2025-06-01T00:00:00Z" }),
      job({ id: "old", submittedAt: "2024-12-31T00:00:00Z" }),
    ];
    // Act
    const d = plan(config({}, [queue({ maxSize: 2 })]), state(jobs), NOW);
    // Assess: old, then mid, launch; new waits for room.
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["old", "mid"], 2]]);
    expect(jobSkips(d)).toEqual([{ job: "new", code: "QUEUE_AT_MAX_SIZE", copies: 1 }]);
  });

  it("a scale-out round takes the oldest demand first", () => {
    // Prepare: 4 one-node jobs, scaleOutRatio 50: the round is ceil(4 × 50 / 100) = 2 nodes.
    const jobs = [
      job({ id: "j1", submittedAt: iso(NOW - minutes(1)) }),
      job({ id: "j2", submittedAt: iso(NOW - minutes(4)) }),
      job({ id: "j3", submittedAt: iso(NOW - minutes(2)) }),
      job({ id: "j4", submittedAt: iso(NOW - minutes(3)) }),
    ];
    // Act
    const d = plan(config({}, [queue({ scaleOutRatio: 50 })]), state(jobs), NOW);
    // Assess: j2 (4 min) and j4 (3 min) launch; j3 and j1 are deferred, oldest first.
    expect(d.launches.map((l) => [l.jobs, l.count, l.copies])).toEqual([[["j2", "j4"], 2, [1, 1]]]);
    expect(jobSkips(d)).toEqual([
      { job: "j3", code: "DEFERRED_BY_SCALE_OUT_RATIO", copies: 1 },
      { job: "j1", code: "DEFERRED_BY_SCALE_OUT_RATIO", copies: 1 },
    ]);
    expect(d.queues[0]).toMatchObject({ pendingJobs: 4, neededNodes: 4, launchedNodes: 2 });
  });

  it("the oldest job gets the idle node; the newer one launches", () => {
    // Prepare: one idle c4m8 (idle 30 s), two one-node jobs; "new" is listed first.
    const d = plan(
      config(),
      state(
        [
          job({ id: "new", submittedAt: iso(NOW - 20_000) }),
          job({ id: "old", submittedAt: iso(NOW - 50_000) }),
        ],
        [node("i1", { idleSince: FRESH_IDLE })],
      ),
      NOW,
    );
    // Assess
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["new"], 1]]);
    expect(nodeSkip(d, "i1")).toMatchObject({
      code: "RESERVED_FOR_PENDING_JOB",
      reason: "pending job old will run here",
    });
    expect(jobSkips(d)).toEqual([{ job: "old", code: "COVERED_BY_EXISTING_NODES", copies: 1 }]);
  });
});

describe("THPC: which node states are capacity", () => {
  // One one-node job (4 CPU / 4096 MiB) beside one c4m8 node: a node that is capacity covers it (no
  // launch); one that is not leaves the job to launch a node of its own (docs/plan.md, node-state table).
  const cases: [string, Partial<Parameters<typeof node>[1]>, number][] = [
    ["IDLE", { state: "IDLE", idleSince: FRESH_IDLE }, 0],
    ["IDLE, idle since an unknown time", { state: "IDLE", idleSince: undefined }, 0],
    ["LAUNCHING 5 min ago", { state: "LAUNCHING", launchedAt: iso(NOW - minutes(5)) }, 0],
    ["LAUNCHING, launch time unknown", { state: "LAUNCHING", idleSince: undefined }, 0],
    ["NOT_READY 5 min ago", { state: "NOT_READY", launchedAt: iso(NOW - minutes(5)) }, 0],
    [
      "LAUNCHING 899 s ago (within bootTimeout 900 s)",
      { state: "LAUNCHING", launchedAt: iso(NOW - 899_000) },
      0,
    ],
    ["LAUNCHING exactly bootTimeout ago", { state: "LAUNCHING", launchedAt: iso(NOW - 900_000) }, 1],
    ["NOT_READY exactly bootTimeout ago", { state: "NOT_READY", launchedAt: iso(NOW - 900_000) }, 1],
    ["NOT_READY, launch time unknown", { state: "NOT_READY", idleSince: undefined }, 1],
    ["MIXED", { state: "MIXED" }, 1],
    ["ALLOCATED", { state: "ALLOCATED" }, 1],
    ["DRAINING", { state: "DRAINING" }, 1],
    ["DRAINED", { state: "DRAINED", reason: "nowscale: idle" }, 1],
    ["DOWN", { state: "DOWN" }, 1],
    ["MIXED launched 5 min ago", { state: "MIXED", launchedAt: iso(NOW - minutes(5)) }, 1],
    ["DOWN launched 5 min ago", { state: "DOWN", launchedAt: iso(NOW - minutes(5)) }, 1],
    [
      "IDLE of a type the config does not know",
      { state: "IDLE", idleSince: FRESH_IDLE, instanceType: "mystery" },
      1,
    ],
  ];
  it.each(cases)("a %s node → %s new node(s)", (_, over, launched) => {
    // Act
    const d = plan(config(), state([job({ id: "a" })], [node("n1", over)]), NOW);
    // Assess
    expect(total(d)).toBe(launched);
    expect(jobSkips(d)).toEqual(
      launched === 0 ? [{ job: "a", code: "COVERED_BY_EXISTING_NODES", copies: 1 }] : [],
    );
  });

  it("an IDLE node that a running job names is busy, not capacity", () => {
    // Slurm can report a node IDLE for an instant while a job starts on it: the running job wins.
    const d = plan(
      config(),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["n1"] }), job({ id: "a" })],
        [node("n1", { idleSince: FRESH_IDLE })],
      ),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["a"], 1]]);
    expect(d.shrinks).toEqual([]);
  });

  it("only LAUNCHING nodes count against maxNodesPerCycle; every node counts against maxSize", () => {
    // Prepare: maxNodesPerCycle 2, four one-node jobs. Beside them one node of each state that is not
    // capacity (none of them launching) and one NOT_READY node booting (capacity: covers one job).
    const others = [
      node("m", { state: "MIXED" }),
      node("al", { state: "ALLOCATED" }),
      node("dg", { state: "DRAINING" }),
      node("dd", { state: "DRAINED", reason: "nowscale: idle" }),
      node("dn", { state: "DOWN" }),
      node("nr", { state: "NOT_READY", launchedAt: iso(NOW - minutes(5)) }),
    ];
    const jobs = ["a", "b", "c", "d"].map((id, i) => job({ id, submittedAt: iso(NOW - minutes(5 - i)) }));
    const cfg = config({}, [queue({ maxNodesPerCycle: 2 })]);
    // Act
    const without = plan(cfg, state(jobs, others), NOW);
    const withLaunching = plan(
      cfg,
      state(jobs, [...others, node("l", { state: "LAUNCHING", launchedAt: iso(NOW - minutes(1)) })]),
      NOW,
    );
    // Assess: nr covers a; 3 nodes needed, the cap leaves room for 2 (b, c), d waits.
    expect(without.launches.map((l) => [l.jobs, l.count])).toEqual([[["b", "c"], 2]]);
    expect(jobSkips(without)).toEqual([
      { job: "a", code: "COVERED_BY_EXISTING_NODES", copies: 1 },
      { job: "d", code: "CYCLE_CAP_REACHED", copies: 1 },
    ]);
    expect(without.queues[0]).toMatchObject({
      neededNodes: 3,
      launchedNodes: 2,
      existingNodes: 6,
      launchingNodes: 0,
    });
    // With one LAUNCHING node: nr covers a, l covers b; 2 needed, the cap leaves 2 − 1 = 1 (c); d waits.
    expect(withLaunching.launches.map((l) => [l.jobs, l.count])).toEqual([[["c"], 1]]);
    expect(jobSkips(withLaunching)).toEqual([
      { job: "a", code: "COVERED_BY_EXISTING_NODES", copies: 1 },
      { job: "b", code: "COVERED_BY_EXISTING_NODES", copies: 1 },
      { job: "d", code: "CYCLE_CAP_REACHED", copies: 1 },
    ]);
    expect(withLaunching.skipped).toContainEqual(
      expect.objectContaining({
        job: "d",
        reason: "maxNodesPerCycle 2 reached with 1 nodes launching and 1 launched now",
      }),
    );
    expect(withLaunching.queues[0]).toMatchObject({
      neededNodes: 2,
      launchedNodes: 1,
      existingNodes: 7,
      launchingNodes: 1,
    });
    // maxSize 8 with those 6 nodes leaves room for 2 new nodes, whatever their states.
    const capped = plan(config({}, [queue({ maxSize: 8 })]), state(jobs, others), NOW);
    expect(capped.launches.map((l) => [l.jobs, l.count])).toEqual([[["b", "c"], 2]]);
    expect(jobSkips(capped)).toContainEqual({ job: "d", code: "QUEUE_AT_MAX_SIZE", copies: 1 });
  });

  it("a cap already filled by launching nodes launches nothing and tops up nothing", () => {
    // Prepare: maxNodesPerCycle 2 with 2 LAUNCHING nodes; minSize 5; three one-node jobs.
    const d = plan(
      config({}, [queue({ maxNodesPerCycle: 2, minSize: 5 })]),
      state(
        ["a", "b", "c"].map((id) => job({ id })),
        [node("l1", { state: "LAUNCHING" }), node("l2", { state: "LAUNCHING" })],
      ),
      NOW,
    );
    // Assess: l1 and l2 cover a and b; c waits for the cap; minSize's top-up too (2 − 2 = 0 room).
    expect(d.launches).toEqual([]);
    expect(jobSkips(d)).toContainEqual({ job: "c", code: "CYCLE_CAP_REACHED", copies: 1 });
  });
});

describe("THPC: existing idle and launching nodes are used first", () => {
  it("takes an idle node before a launching one of the same shape (docs/plan.md step 2)", () => {
    // Prepare: one pending one-node job; an idle node and a launching node of the same type.
    const d = plan(
      config(),
      state(
        [job({ id: "a", submittedAt: iso(NOW - 30_000) })],
        [node("i", { idleSince: iso(NOW - 30_000) }), node("l", { state: "LAUNCHING" })],
      ),
      NOW,
    );
    // Assess: the idle node runs it soonest, so it is the one reserved; the launching one stays free.
    expect(d.launches).toEqual([]);
    expect(nodeSkip(d, "i")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
    expect(nodeSkip(d, "l")?.code).not.toBe("RESERVED_FOR_PENDING_JOB");
  });

  it("takes the best-fitting existing node: fewest spare vCPUs, then least spare memory", () => {
    // Prepare: idle c8m16, c4m16 and c4m8 nodes; a 4 CPU / 4096 MiB job. Spare: c8m16 4 vCPU,
    // c4m16 0 vCPU / 12288 MiB, c4m8 0 vCPU / 4096 MiB → c4m8.
    const nodes = [
      node("big", { instanceType: "c8m16", idleSince: FRESH_IDLE }),
      node("fat", { instanceType: "c4m16", idleSince: FRESH_IDLE }),
      node("small", { instanceType: "c4m8", idleSince: FRESH_IDLE }),
    ];
    const cfg = config({}, [typesQueue(["c8m16", "c4m16", "c4m8"])]);
    // Act
    const one = plan(cfg, state([job({ id: "a" })], nodes), NOW);
    const two = plan(
      cfg,
      state(
        [job({ id: "a", submittedAt: iso(NOW - 2000) }), job({ id: "b", submittedAt: iso(NOW - 1000) })],
        nodes,
      ),
      NOW,
    );
    // Assess: a takes small; with two jobs b takes the next best, fat (0 spare vCPUs) over big.
    expect(one.launches).toEqual([]);
    expect(nodeSkip(one, "small")).toMatchObject({
      code: "RESERVED_FOR_PENDING_JOB",
      reason: "pending job a will run here",
    });
    expect(nodeSkip(one, "big")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
    expect(nodeSkip(one, "fat")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
    expect(nodeSkip(two, "fat")).toMatchObject({
      code: "RESERVED_FOR_PENDING_JOB",
      reason: "pending job b will run here",
    });
    expect(nodeSkip(two, "big")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("a node too small for the job is not used", () => {
    // Prepare: an idle c4m8; the job needs 8 CPU per node: only a new c8m16 fits it.
    const d = plan(
      config({}, [typesQueue(["c4m8", "c8m16"])]),
      state([job({ id: "a", cpusPerNode: 8 })], [node("small", { idleSince: FRESH_IDLE })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.instanceType, l.count])).toEqual([["c8m16", 1]]);
    expect(nodeSkip(d, "small")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("partial help for a multi-node job: its idle node plus new nodes for the rest", () => {
    // Prepare: a 3-node job of c4m8 nodes and one idle c4m8. Fresh it needs 3 nodes; with the idle
    // node, 2 more: the idle node saves one, so it is taken and 2 nodes launch, all-or-nothing.
    const d = plan(
      config(),
      state([job({ id: "mpi", nodes: 3 })], [node("i1", { idleSince: FRESH_IDLE })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([[["mpi"], 2, true]]);
    expect(nodeSkip(d, "i1")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
    expect(d.queues[0]).toMatchObject({ neededNodes: 2, launchedNodes: 2 });
  });

  it("partial help that would take a multi-node job past maxSize is refused, and the node left free", () => {
    // Prepare: maxSize 3, one idle node, a 4-node job: 1 idle + 3 new = 4 > 3; fresh, 4 > 3 too.
    const d = plan(
      config({}, [queue({ maxSize: 3 })]),
      state([job({ id: "big", nodes: 4 })], [node("i1", { idleSince: FRESH_IDLE })]),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(jobSkips(d)).toEqual([{ job: "big", code: "JOB_LARGER_THAN_MAX_SIZE", copies: 1 }]);
    expect(nodeSkip(d, "i1")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("partial help for a task job when it saves a node", () => {
    // Prepare: 12 one-CPU tasks of 1024 MiB on c4m8 (4 per node): 3 nodes fresh; the idle c4m8 takes 4,
    // the other 8 need 2 nodes < 3: taken.
    const d = plan(
      config(),
      state([tasks({ id: "t", tasks: 12, cpus: 1, mem: 1024 })], [node("i1", { idleSince: FRESH_IDLE })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["t"], 2]]);
    expect(nodeSkip(d, "i1")).toMatchObject({
      code: "RESERVED_FOR_PENDING_JOB",
      reason: "pending job t will run here",
    });
  });

  it("no partial help for a task job when it saves no node: the idle node stays free", () => {
    // Prepare: 8 one-CPU tasks of 1024 MiB; types c4m8 and c8m16. Fresh: c4m8 → 2 nodes, 0 spare vCPU,
    // 8192 spare MiB; c8m16 → 1 node, 0 spare vCPU, 8192 spare MiB; tie → fewer nodes: 1 c8m16.
    // With the idle c4m8 taking 4 tasks the other 4 still need 1 node: no node saved.
    const d = plan(
      config({}, [typesQueue(["c4m8", "c8m16"])]),
      state([tasks({ id: "t", tasks: 8, cpus: 1, mem: 1024 })], [node("i1", { idleSince: FRESH_IDLE })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.instanceType, l.count])).toEqual([[["t"], "c8m16", 1]]);
    expect(nodeSkip(d, "i1")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("a task job wholly covered by existing nodes launches nothing and reserves each of them", () => {
    // Prepare: 8 one-CPU tasks, two idle c4m8 (4 tasks each).
    const d = plan(
      config(),
      state(
        [tasks({ id: "t", tasks: 8, cpus: 1, mem: 1024 })],
        [node("i1", { idleSince: FRESH_IDLE }), node("i2", { idleSince: FRESH_IDLE })],
      ),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(d.skipped).toContainEqual(
      expect.objectContaining({
        job: "t",
        code: "COVERED_BY_EXISTING_NODES",
        reason: "existing nodes will run it: i1, i2",
      }),
    );
    expect(nodeSkip(d, "i1")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
    expect(nodeSkip(d, "i2")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
  });

  it("copies of an aggregated job use existing nodes one by one, the rest launch", () => {
    // Prepare: 3 identical one-node jobs, one LAUNCHING node: one copy covered, two launch.
    const d = plan(
      config(),
      state([job({ id: "agg", count: 3 })], [node("l1", { state: "LAUNCHING" })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.copies])).toEqual([[["agg"], 2, [2]]]);
    expect(jobSkips(d)).toEqual([{ job: "agg", code: "COVERED_BY_EXISTING_NODES", copies: 1 }]);
  });

  it("a job held by expansionBusyTime may still use an idle node, and launches nothing", () => {
    // Prepare: expansionBusyTime 120 s, two jobs 30 s old, one idle node.
    const d = plan(
      config({ expansionBusyTime: 120 }),
      state(
        [job({ id: "a", submittedAt: iso(NOW - 31_000) }), job({ id: "b", submittedAt: iso(NOW - 30_000) })],
        [node("i1", { idleSince: FRESH_IDLE })],
      ),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(jobSkips(d)).toEqual([
      { job: "a", code: "COVERED_BY_EXISTING_NODES", copies: 1 },
      { job: "b", code: "BUSY_TIME_NOT_REACHED", copies: 1 },
    ]);
  });
});

describe("THPC: maxSize and multi-node jobs", () => {
  it("a job needing exactly maxSize nodes launches; one more node is too large for the queue", () => {
    const cfg = config({}, [queue({ maxSize: 4 })]);
    const fits = plan(cfg, state([job({ id: "four", nodes: 4 })]), NOW);
    const over = plan(cfg, state([job({ id: "five", nodes: 5 })]), NOW);
    expect(fits.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([[["four"], 4, true]]);
    expect(over.launches).toEqual([]);
    expect(over.skipped).toEqual([
      expect.objectContaining({
        job: "five",
        code: "JOB_LARGER_THAN_MAX_SIZE",
        reason: "needs 5 new nodes but queue compute has maxSize 4",
        copies: 1,
      }),
    ]);
  });

  it("room counts existing nodes: exactly the room is admitted, one more waits", () => {
    // Prepare: maxSize 4 with one ALLOCATED node: room 3.
    const cfg = config({}, [queue({ maxSize: 4 })]);
    const busy = node("w", { state: "ALLOCATED" });
    const three = plan(cfg, state([job({ id: "three", nodes: 3 })], [busy]), NOW);
    const four = plan(cfg, state([job({ id: "four", nodes: 4 })], [busy]), NOW);
    expect(three.launches.map((l) => [l.jobs, l.count])).toEqual([[["three"], 3]]);
    expect(four.launches).toEqual([]);
    expect(four.skipped).toContainEqual(
      expect.objectContaining({
        job: "four",
        code: "QUEUE_AT_MAX_SIZE",
        reason: "queue compute would exceed maxSize 4",
      }),
    );
  });

  it("a queue already over maxSize launches nothing", () => {
    // maxSize 1 with 2 nodes (the operator lowered it): room is 0, not negative.
    const d = plan(
      config({}, [queue({ maxSize: 1 })]),
      state([job({ id: "a" })], [node("w1", { state: "ALLOCATED" }), node("w2", { state: "ALLOCATED" })]),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(jobSkips(d)).toEqual([{ job: "a", code: "QUEUE_AT_MAX_SIZE", copies: 1 }]);
  });

  it("two multi-node jobs of one shape are kept apart, each all-or-nothing", () => {
    const d = plan(config(), state([job({ id: "m2", nodes: 2 }), job({ id: "m3", nodes: 3 })]), NOW);
    expect(d.launches.map((l) => [l.jobs, l.instanceType, l.count, l.allOrNothing])).toEqual([
      [["m2"], "c4m8", 2, true],
      [["m3"], "c4m8", 3, true],
    ]);
  });

  it("each copy of an aggregated multi-node job is its own all-or-nothing launch", () => {
    const d = plan(config(), state([job({ id: "agg", nodes: 2, count: 2 })]), NOW);
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing, l.copies])).toEqual([
      [["agg"], 2, true, [1]],
      [["agg"], 2, true, [1]],
    ]);
  });

  it("a round that cuts a multi-node job launches its first nodes without all-or-nothing", () => {
    // Prepare: 2-node and 3-node jobs, scaleOutRatio 50: 5 needed, round ceil(2.5) = 3. m2 gets its 2,
    // m3 its first node (its copy starts in this round, so it is not deferred).
    const d = plan(
      config({}, [queue({ scaleOutRatio: 50 })]),
      state([
        job({ id: "m2", nodes: 2, submittedAt: iso(NOW - 2000) }),
        job({ id: "m3", nodes: 3, submittedAt: iso(NOW - 1000) }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing, l.copies])).toEqual([
      [["m2"], 2, true, [1]],
      [["m3"], 1, false, [1]],
    ]);
    expect(jobSkips(d)).toEqual([]);
    expect(d.queues[0]).toMatchObject({ neededNodes: 5, launchedNodes: 3 });
  });

  it("a job larger than maxSize does not use up room the next job can use", () => {
    const d = plan(
      config({}, [queue({ maxSize: 2 })]),
      state([
        job({ id: "huge", nodes: 3, submittedAt: iso(NOW - 2000) }),
        job({ id: "pair", nodes: 2, submittedAt: iso(NOW - 1000) }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["pair"], 2]]);
    expect(jobSkips(d)).toEqual([{ job: "huge", code: "JOB_LARGER_THAN_MAX_SIZE", copies: 1 }]);
  });
});

describe("THPC: task jobs limited by memory or GPUs", () => {
  it("memory limits the tasks per node: 8 one-CPU 4096 MiB tasks need 2 c8m16 nodes, not 1", () => {
    // 16384 / 4096 = 4 tasks per node by memory (8 by CPU): 2 nodes.
    const d = plan(
      config({}, [typesQueue(["c8m16"])]),
      state([tasks({ id: "t", tasks: 8, cpus: 1, mem: 4096 })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.instanceType, l.count])).toEqual([["c8m16", 2]]);
  });

  it("best fit counts spare vCPUs over all the nodes memory forces: 4 × (1 CPU, 4096 MiB) → one c4m16", () => {
    // c8m8: 2 tasks per node by memory → 2 nodes, 16 − 4 = 12 spare vCPUs; c4m16: 4 per node → 1 node, 0.
    const d = plan(
      config({}, [typesQueue(["c8m8", "c4m16"])]),
      state([tasks({ id: "t", tasks: 4, cpus: 1, mem: 4096 })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.instanceType, l.count])).toEqual([["c4m16", 1]]);
  });

  it("GPUs limit the tasks per node: 4 one-GPU tasks need 4 one-GPU nodes", () => {
    const d = plan(
      config({}, [typesQueue(["g4m16"])]),
      state([tasks({ id: "t", tasks: 4, cpus: 1, mem: 1024, gpus: 1 })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.instanceType, l.count])).toEqual([["g4m16", 4]]);
  });

  it("a task job without memory is limited by CPUs alone", () => {
    // 8 one-CPU tasks, no memory, on c4m8: 2 nodes.
    const d = plan(config(), state([tasks({ id: "t", tasks: 8, cpus: 1, mem: 0 })]), NOW);
    expect(d.launches.map((l) => [l.instanceType, l.count])).toEqual([["c4m8", 2]]);
  });

  it("a task job whose task no type fits is skipped with its per-task request", () => {
    const d = plan(config(), state([tasks({ id: "t", tasks: 2, cpus: 1, mem: 9000 })]), NOW);
    expect(d.launches).toEqual([]);
    expect(d.skipped).toEqual([
      expect.objectContaining({
        job: "t",
        code: "NO_FITTING_SHAPE",
        reason: "no instance type of queue compute fits 1 CPU, 9000 MiB per task",
      }),
    ]);
  });
});

describe("THPC: launch candidates", () => {
  it("a queue entry's subnetId and imageId reach its launch candidates; entries without them carry none", () => {
    // Prepare: two c4m8 entries (one with subnet and image, one without) and a c8m16 entry with a subnet.
    const cfg = config({}, [
      queue({
        minSize: 1,
        expansionNodeConfigs: [
          { zone: "z1", instanceType: "c4m8", subnetId: "subnet-a", imageId: "img-1" },
          { zone: "z2", instanceType: "c4m8", chargeType: "SPOT" },
          { zone: "z3", instanceType: "c8m16", subnetId: "subnet-c" },
        ],
      }),
    ]);
    // Act: one job of 4 CPU (best fit c4m8), one of 8 CPU (c8m16); minSize 1 tops up with c4m8 too.
    const d = plan(
      cfg,
      state([
        job({ id: "a", submittedAt: iso(NOW - 2000) }),
        job({ id: "b", cpusPerNode: 8, submittedAt: iso(NOW - 1000) }),
      ]),
      NOW,
    );
    // Assess: minSize 1 is met by the 2 nodes launched, so no top-up.
    expect(d.launches.map((l) => l.candidates)).toStrictEqual([
      [
        { instanceType: "c4m8", zone: "z1", chargeType: "ON_DEMAND", subnetId: "subnet-a", imageId: "img-1" },
        { instanceType: "c4m8", zone: "z2", chargeType: "SPOT" },
      ],
      [{ instanceType: "c8m16", zone: "z3", chargeType: "ON_DEMAND", subnetId: "subnet-c" }],
    ]);
    const topUp = plan(cfg, state(), NOW);
    expect(topUp.launches).toStrictEqual([
      {
        queue: "compute",
        instanceType: "c4m8",
        zone: "z1",
        count: 1,
        candidates: [
          {
            instanceType: "c4m8",
            zone: "z1",
            chargeType: "ON_DEMAND",
            subnetId: "subnet-a",
            imageId: "img-1",
          },
          { instanceType: "c4m8", zone: "z2", chargeType: "SPOT" },
        ],
        allOrNothing: false,
        jobs: [],
        reason: "queue compute is below minSize 1",
      },
    ]);
  });

  it("a launch's reason names its shape, its jobs and the round", () => {
    const d = plan(
      config({}, [typesQueue(["g4m16"])]),
      state([job({ id: "g", gpusPerNode: 1, count: 3 })]),
      NOW,
    );
    expect(d.launches.map((l) => l.reason)).toEqual([
      "best fit 4 vCPU / 16384 MiB / 1 GPU for 1 job(s); round of 3 of 3 needed nodes",
    ]);
  });
});

describe("THPC: minSize top-up", () => {
  it("tops up by what the round leaves below minSize, counting the nodes the queue has", () => {
    // Prepare: minSize 4, one ALLOCATED node, one pending one-node job: the round launches 1, the
    // top-up 4 − 1 − 1 = 2.
    const d = plan(
      config({}, [queue({ minSize: 4 })]),
      state([job({ id: "a" })], [node("w", { state: "ALLOCATED" })]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([
      [["a"], 1],
      [[], 2],
    ]);
    expect(d.queues[0]).toMatchObject({ launchedNodes: 3, neededNodes: 1, existingNodes: 1 });
  });

  it("the top-up stays within maxNodesPerCycle, counting the round", () => {
    const d = plan(config({}, [queue({ minSize: 5, maxNodesPerCycle: 3 })]), state(), NOW);
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[[], 3]]);
    // With one job: the round takes 1 of the 3, the top-up the other 2 (not 5 − 1 = 4).
    const withJob = plan(
      config({}, [queue({ minSize: 5, maxNodesPerCycle: 3 })]),
      state([job({ id: "a" })]),
      NOW,
    );
    expect(withJob.launches.map((l) => [l.jobs, l.count])).toEqual([
      [["a"], 1],
      [[], 2],
    ]);
  });

  it("a launch's reason names a shape without GPUs without a GPU count", () => {
    const d = plan(config(), state([job({ id: "a" })]), NOW);
    expect(d.launches.map((l) => l.reason)).toEqual([
      "best fit 4 vCPU / 8192 MiB for 1 job(s); round of 1 of 1 needed nodes",
    ]);
  });

  it("no top-up when auto expansion is disabled", () => {
    const d = plan(config({}, [queue({ minSize: 2, enableAutoExpansion: false })]), state(), NOW);
    expect(d.launches).toEqual([]);
  });

  it("at minSize exactly, nothing is topped up", () => {
    const d = plan(config({}, [queue({ minSize: 1 })]), state([], [node("w", { state: "ALLOCATED" })]), NOW);
    expect(d.launches).toEqual([]);
  });
});

describe("THPC: demand, reasons and the queue summary", () => {
  it("RUNNING jobs are not demand, BLOCKED ones and unknown queues are skipped with reasons", () => {
    const d = plan(
      config(),
      state([
        job({ id: "run", state: "RUNNING", queue: "elsewhere", nodeNames: ["x1"] }),
        job({ id: "lost", state: "BLOCKED", queue: "elsewhere" }),
        job({ id: "held", state: "BLOCKED" }),
        job({ id: "dep", state: "BLOCKED", reason: "Dependency" }),
      ]),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(d.skipped).toEqual([
      {
        job: "lost",
        queue: "elsewhere",
        code: "QUEUE_NOT_CONFIGURED",
        reason: "queue elsewhere is not in queueConfigs",
        copies: 1,
      },
      { job: "held", queue: "compute", code: "BLOCKED", reason: "blocked: scale-out cannot help", copies: 1 },
      { job: "dep", queue: "compute", code: "BLOCKED", reason: "Dependency", copies: 1 },
    ]);
    expect(d.queues[0]).toMatchObject({ pendingJobs: 0, neededNodes: 0 });
  });

  it("a node of an unknown queue is left alone, and says so", () => {
    const d = plan(config(), state([], [node("stray", { queue: "other", idleSince: iso(T0) })]), NOW);
    expect(d.skipped).toEqual([
      {
        node: "stray",
        queue: "other",
        code: "QUEUE_NOT_CONFIGURED",
        reason: "queue other is not in queueConfigs: node left alone",
      },
    ]);
    expect(d.queues[0]).toMatchObject({ existingNodes: 0 });
  });

  it("expansionBusyTime: a job that waited exactly that long is demand; a second less, or from the future, is not", () => {
    const d = plan(
      config({ expansionBusyTime: 120 }),
      state([
        job({ id: "at", submittedAt: iso(NOW - 120_000) }),
        job({ id: "short", submittedAt: iso(NOW - 119_999) }),
        job({ id: "future", submittedAt: iso(NOW + 5000) }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => l.jobs)).toEqual([["at"]]);
    expect(d.skipped).toEqual([
      expect.objectContaining({
        job: "short",
        code: "BUSY_TIME_NOT_REACHED",
        reason: "waited 119 s of expansionBusyTime 120 s",
      }),
      expect.objectContaining({
        job: "future",
        code: "BUSY_TIME_NOT_REACHED",
        reason: "waited 0 s of expansionBusyTime 120 s",
      }),
    ]);
  });

  it("a queue with expansion disabled says so for each of its jobs, copies included", () => {
    const d = plan(
      config({}, [queue({ queueName: "off", enableAutoExpansion: false })]),
      state([job({ id: "a", queue: "off", count: 2 })]),
      NOW,
    );
    expect(d.skipped).toEqual([
      {
        job: "a",
        queue: "off",
        code: "AUTO_EXPANSION_DISABLED",
        reason: "auto expansion is disabled for queue off (2 identical jobs)",
        copies: 2,
      },
    ]);
  });

  it("a round exactly at maxNodesPerCycle is the ratio's doing, and its reason says so", () => {
    // 4 needed, ratio 50 → 2; maxNodesPerCycle 2 leaves room for 2: the ratio, not the cap, defers.
    const d = plan(
      config({}, [queue({ scaleOutRatio: 50, maxNodesPerCycle: 2 })]),
      state(["a", "b", "c", "d"].map((id) => job({ id }))),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["a", "b"], 2]]);
    expect(d.skipped).toContainEqual({
      job: "c",
      queue: "compute",
      code: "DEFERRED_BY_SCALE_OUT_RATIO",
      reason: "this round launches 2 of 4 needed nodes (scaleOutRatio 50%, threshold 0)",
      copies: 1,
    });
  });

  it("counts an aggregated job's copies as pending jobs, and defers the copies beyond the round", () => {
    // 5 copies of agg and one more job, scaleOutNodeThreshold 2, ratio 40.
    const d = plan(
      config({}, [queue({ scaleOutRatio: 40, scaleOutNodeThreshold: 2 })]),
      state([job({ id: "agg", count: 5 }), job({ id: "one", submittedAt: iso(NOW) })]),
      NOW,
    );
    // 6 needed > 2: ceil(6 × 40 / 100) = 3 → agg's first 3 copies; 2 copies and "one" wait.
    expect(d.launches.map((l) => [l.jobs, l.count, l.copies])).toEqual([[["agg"], 3, [3]]]);
    expect(jobSkips(d)).toEqual([
      { job: "agg", code: "DEFERRED_BY_SCALE_OUT_RATIO", copies: 2 },
      { job: "one", code: "DEFERRED_BY_SCALE_OUT_RATIO", copies: 1 },
    ]);
    expect(d.queues[0]).toMatchObject({ pendingJobs: 6, neededNodes: 6, launchedNodes: 3 });
  });

  it("reports node skips in node-name order, whatever the state's order", () => {
    const d = plan(
      config(),
      state([], [node("c", { state: "DOWN" }), node("a", { state: "DOWN" }), node("b", { state: "DOWN" })]),
      NOW,
    );
    expect(d.skipped.map((s) => ("node" in s ? s.node : ""))).toEqual(["a", "b", "c"]);
  });

  it("plans each queue with its own settings", () => {
    const d = plan(
      config({}, [queue({ queueName: "small", maxSize: 1 }), queue({ queueName: "big" })]),
      state([
        job({ id: "s1", queue: "small" }),
        job({ id: "s2", queue: "small" }),
        job({ id: "b1", queue: "big" }),
        job({ id: "b2", queue: "big" }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => [l.queue, l.jobs, l.count])).toEqual([
      ["small", ["s1"], 1],
      ["big", ["b1", "b2"], 2],
    ]);
    expect(d.queues.map((q) => [q.queue, q.pendingJobs, q.launchedNodes])).toEqual([
      ["small", 2, 1],
      ["big", 2, 2],
    ]);
  });
});

describe("THPC: the pool of existing nodes, in detail", () => {
  const idleNode = (name: string, instanceType = "c4m8") =>
    node(name, { instanceType, idleSince: FRESH_IDLE });
  const at = (s: number) => iso(NOW - s * 1000);

  it("a node job no type fits is skipped naming its per-node request", () => {
    const d = plan(config(), state([job({ id: "huge", cpusPerNode: 64 })]), NOW);
    expect(d.skipped).toEqual([
      expect.objectContaining({
        job: "huge",
        code: "NO_FITTING_SHAPE",
        reason: "no instance type of queue compute fits 64 CPU, 4096 MiB per node",
      }),
    ]);
  });

  it("a node job and a task job of the same numbers are fitted apart", () => {
    // 2 nodes of 1 CPU / 1024 MiB need 2 c4m8; 2 tasks of the same share one.
    const d = plan(
      config(),
      state([
        job({ id: "n", nodes: 2, cpusPerNode: 1, memPerNodeMiB: 1024 }),
        tasks({ id: "t", tasks: 2, cpus: 1, mem: 1024 }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([
      [["n"], 2, true],
      [["t"], 1, false],
    ]);
  });

  it("partial help that brings a multi-node job to exactly maxSize is taken", () => {
    // maxSize 3, one idle node, a 3-node job: the idle node and 2 new ones make 3.
    const d = plan(
      config({}, [queue({ maxSize: 3 })]),
      state([job({ id: "m", nodes: 3 })], [idleNode("i1")]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([[["m"], 2, true]]);
    expect(nodeSkip(d, "i1")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
  });

  it("multi-node jobs use up the room node by node", () => {
    // maxSize 4: A (2 nodes) and B (2 nodes) fill it; C (1 node) waits.
    const d = plan(
      config({}, [queue({ maxSize: 4 })]),
      state([
        job({ id: "A", nodes: 2, submittedAt: at(3) }),
        job({ id: "B", nodes: 2, submittedAt: at(2) }),
        job({ id: "C", submittedAt: at(1) }),
      ]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([
      [["A"], 2],
      [["B"], 2],
    ]);
    expect(jobSkips(d)).toEqual([{ job: "C", code: "QUEUE_AT_MAX_SIZE", copies: 1 }]);
  });

  it("a copy takes every existing node it can use before the next copy is looked at", () => {
    // 2 copies of 8 one-CPU tasks (4 per c4m8), two idle c4m8: the first copy takes both idle nodes
    // and is covered; the second needs 2 new nodes, all-or-nothing.
    const d = plan(
      config(),
      state([tasks({ id: "t", tasks: 8, cpus: 1, mem: 1024, count: 2 })], [idleNode("i1"), idleNode("i2")]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing, l.copies])).toEqual([
      [["t"], 2, true, [1]],
    ]);
    expect([nodeSkip(d, "i1")?.code, nodeSkip(d, "i2")?.code]).toEqual([
      "RESERVED_FOR_PENDING_JOB",
      "RESERVED_FOR_PENDING_JOB",
    ]);
    expect(jobSkips(d)).toEqual([{ job: "t", code: "COVERED_BY_EXISTING_NODES", copies: 1 }]);
  });

  it("among identical nodes the first by name is taken, whatever the state's order", () => {
    const d = plan(
      config(),
      state([job({ id: "a", submittedAt: at(30) })], [idleNode("n3"), idleNode("n1"), idleNode("n2")]),
      NOW,
    );
    expect(["n1", "n2", "n3"].map((n) => nodeSkip(d, n)?.code)).toEqual([
      "RESERVED_FOR_PENDING_JOB",
      "IDLE_TIME_NOT_REACHED",
      "IDLE_TIME_NOT_REACHED",
    ]);
  });

  it("a node too small for a multi-node job's slice is not taken with the ones that fit", () => {
    // A 2-node job of 4 CPU: the idle c4m8 fits, the idle c2m4 does not: 1 new node.
    const d = plan(
      config(),
      state([job({ id: "m", nodes: 2 })], [idleNode("fit"), idleNode("tiny", "c2m4")]),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.count])).toEqual([[["m"], 1]]);
    expect(nodeSkip(d, "fit")?.code).toBe("RESERVED_FOR_PENDING_JOB");
    expect(nodeSkip(d, "tiny")?.code).toBe("IDLE_TIME_NOT_REACHED");
  });

  it("a task job spreads over idle nodes of two shapes, best fitting first", () => {
    // 12 one-CPU tasks: the idle c4m8 takes 4, the idle c8m16 the other 8: nothing to launch.
    const d = plan(
      config({}, [typesQueue(["c4m8", "c8m16"])]),
      state(
        [tasks({ id: "t", tasks: 12, cpus: 1, mem: 1024 })],
        [idleNode("b", "c8m16"), idleNode("a", "c4m8")],
      ),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(d.skipped).toContainEqual(
      expect.objectContaining({
        job: "t",
        code: "COVERED_BY_EXISTING_NODES",
        reason: "existing nodes will run it: a, b",
      }),
    );
  });

  it("nodes a job tried and left go back to the pool as they were, with their own shape", () => {
    // Prepare: idle a-big (c8m16), i1 and i2 (c4m8). Jobs, oldest first: b (8 CPU) takes a-big. t (16
    // one-CPU tasks): fresh, one c16m32; i1 + i2 hold 8 tasks and the other 8 still need one node, so
    // t leaves them and launches its c16m32. c (4 CPU) then takes i1, the first by name; d (8 CPU) has
    // no c8m16 left (i2 is a c4m8) and launches one.
    const d = plan(
      config({}, [typesQueue(["c4m8", "c8m16", "c16m32"])]),
      state(
        [
          job({ id: "b", cpusPerNode: 8, submittedAt: at(40) }),
          tasks({ id: "t", tasks: 16, cpus: 1, mem: 1024, submittedAt: at(30) }),
          job({ id: "c", submittedAt: at(20) }),
          job({ id: "d", cpusPerNode: 8, submittedAt: at(10) }),
        ],
        [idleNode("a-big", "c8m16"), idleNode("i1"), idleNode("i2")],
      ),
      NOW,
    );
    expect(d.launches.map((l) => [l.jobs, l.instanceType, l.count])).toEqual([
      [["t"], "c16m32", 1],
      [["d"], "c8m16", 1],
    ]);
    expect(
      ["a-big", "i1", "i2"].map((n) => d.skipped.find((s) => "node" in s && s.node === n)?.reason),
    ).toEqual([
      "pending job b will run here",
      "pending job c will run here",
      "idle 30 s of shrinkIdleTime 300 s",
    ]);
  });

  it("an existing node is chosen by spare vCPUs before spare memory", () => {
    // 4 CPU / 4096 MiB: idle c8m8 spares 4 vCPU and 4096 MiB, idle c4m16 0 vCPU and 12288 MiB: c4m16.
    const d = plan(
      config(),
      state([job({ id: "a" })], [idleNode("a8", "c8m8"), idleNode("b4", "c4m16")]),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(nodeSkip(d, "b4")?.code).toBe("RESERVED_FOR_PENDING_JOB");
    expect(nodeSkip(d, "a8")?.code).toBe("IDLE_TIME_NOT_REACHED");
  });
});

describe("THPC: which existing node a job takes", () => {
  const idle = (name: string, instanceType: string) => node(name, { instanceType, idleSince: FRESH_IDLE });
  const covered = (d: Decision, id: string) =>
    d.skipped.find((s) => "job" in s && s.job === id && s.code === "COVERED_BY_EXISTING_NODES")?.reason;

  it("an idle node before a launching one even when the launching one comes first by name", () => {
    // Prepare: a-boot (LAUNCHING, launched a minute ago, inside bootTimeout) and z-idle (IDLE), both c4m8;
    // one 4 CPU job. The idle node runs it soonest (docs/plan.md step 2): the name order must not decide.
    const d = plan(
      config(),
      state(
        [job({ id: "a" })],
        [node("a-boot", { state: "LAUNCHING", launchedAt: iso(NOW - 60_000) }), idle("z-idle", "c4m8")],
      ),
      NOW,
    );
    // Assess
    expect(d.launches).toEqual([]);
    expect(covered(d, "a")).toBe("existing nodes will run it: z-idle");
    expect(nodeSkip(d, "z-idle")).toMatchObject({ code: "RESERVED_FOR_PENDING_JOB" });
  });

  it("a task job takes the node its tasks leave the fewest vCPUs of, counting every task it holds", () => {
    // Prepare: 2 tasks of 4 CPU / 1024 MiB. Idle x (c8m16) holds 2 tasks: 8 - 2 × 4 = 0 spare vCPUs;
    // idle y (c5m8, 5 vCPUs) holds 1: 5 - 4 = 1 spare. Best fit: x, which takes both tasks; y stays free.
    const cfg = config({ instanceTypes: { ...SHAPES, c5m8: { vcpus: 5, memoryMiB: 8192, gpus: 0 } } }, [
      typesQueue(["c8m16", "c5m8"]),
    ]);
    // Act
    const d = plan(
      cfg,
      state([tasks({ id: "t", tasks: 2, cpus: 4, mem: 1024 })], [idle("x", "c8m16"), idle("y", "c5m8")]),
      NOW,
    );
    // Assess
    expect(d.launches).toEqual([]);
    expect(covered(d, "t")).toBe("existing nodes will run it: x");
    expect(nodeSkip(d, "y")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("on equal spare vCPUs, the node its tasks leave the least memory of, counting every task it holds", () => {
    // Prepare: 4 tasks of 2 CPU / 2048 MiB. Idle x (c8m8) holds 4: 0 spare vCPUs, 8192 - 4 × 2048 = 0 MiB;
    // idle y (c2m3: 2 vCPUs, 3072 MiB) holds 1: 0 spare vCPUs, 1024 MiB. Best fit: x, for all 4 tasks.
    const cfg = config({ instanceTypes: { ...SHAPES, c2m3: { vcpus: 2, memoryMiB: 3072, gpus: 0 } } }, [
      typesQueue(["c8m8", "c2m3"]),
    ]);
    // Act
    const d = plan(
      cfg,
      state([tasks({ id: "t", tasks: 4, cpus: 2, mem: 2048 })], [idle("x", "c8m8"), idle("y", "c2m3")]),
      NOW,
    );
    // Assess
    expect(d.launches).toEqual([]);
    expect(covered(d, "t")).toBe("existing nodes will run it: x");
    expect(nodeSkip(d, "y")).toMatchObject({ code: "IDLE_TIME_NOT_REACHED" });
  });

  it("the policy itself takes the first by name of identical idle nodes, in whatever order it is given them", () => {
    // Prepare: planThpc called directly (plan sorts the nodes by name before; the policy must not need it).
    const cfg = config();
    const queueOf = cfg.queues[0] as ResolvedQueue;
    const shape = cfg.catalog.c4m8 as InstanceTypeInfo;
    const s = state([job({ id: "a" })], [idle("n1", "c4m8"), idle("n2", "c4m8")]);
    const [n1, n2] = s.nodes.map((n) => ({ node: n, shape }));
    const requests = new RequestIds();
    const input = (supply: SupplyNode[]) => ({
      queue: queueOf,
      jobs: s.jobs,
      holds: s.jobs.map(() => undefined),
      supply,
      room: 10,
      weighPrice: false,
      views: s.jobs.map(() => fullView(queueOf)),
      requests: s.jobs.map((j) => requests.of(j.request, queueOf.scaleUpMemRatio)),
    });
    // Act
    const given = [planThpc(input([n1, n2] as SupplyNode[])), planThpc(input([n2, n1] as SupplyNode[]))];
    // Assess
    expect(given.map((r) => [...r.reserved.entries()])).toEqual([[["n1", "a"]], [["n1", "a"]]]);
  });
});
