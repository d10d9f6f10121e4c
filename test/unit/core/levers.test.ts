import { describe, expect, it } from "vitest";
import { parseState, plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

/**
 * The cost levers beyond THPC's rules (docs/plan.md, "Shrink"): the warm headroom sized from recent
 * arrivals, and cancelling booting nodes no pending job needs. Both are off by default. The builders'
 * queue has 4-vCPU nodes (c4m8).
 */
const NOW = T0 + minutes(30);
const idleFor = (m: number) => iso(NOW - minutes(m));
const threeIdle = () => [
  node("a", { idleSince: idleFor(20) }),
  node("b", { idleSince: idleFor(15) }),
  node("c", { idleSince: idleFor(10) }),
];

describe("warm headroom", () => {
  it("keeps the newest idle vCPUs up to the headroom from the reported arrivals", () => {
    // Prepare: 48 CPUs of single-node jobs in the last hour; headroomSeconds 600 →
    //   48 / 3600 × 600 = 8 vCPUs: two of three idle 4-vCPU nodes (all past shrinkIdleTime) stay.
    const input = parseState({
      jobs: [],
      nodes: threeIdle(),
      arrivals: [{ queue: "compute", windowS: 3600, cpus: 48 }],
    });

    // Act
    const decision = plan(config({ headroomSeconds: 600 }), input, NOW);

    // Assess: the longest idle goes; the other two are kept warm.
    expect(decision.shrinks).toEqual([expect.objectContaining({ node: "a", action: "drain" })]);
    expect(
      decision.skipped.filter((s) => s.code === "KEPT_FOR_HEADROOM").map((s) => "node" in s && s.node),
    ).toEqual(["b", "c"]);
  });

  it("with several windows reported (the agent's), uses the one nearest headroomWindow", () => {
    // Prepare: the agent reports 300 s: 4 CPUs, 1800 s: 48, 7200 s: 96. headroomSeconds 600.
    //   headroomWindow 1800: that window, 48 / 1800 × 600 = 16 vCPUs: all three nodes stay.
    //   headroomWindow 3600: the longest shorter one, 1800 s: the same 16 vCPUs.
    //   headroomWindow 60: none shorter, so the shortest, 300 s: 4 / 300 × 600 = 8: two stay.
    const input = parseState({
      nodes: threeIdle(),
      arrivals: [
        { queue: "compute", windowS: 7200, cpus: 96 },
        { queue: "compute", windowS: 300, cpus: 4 },
        { queue: "compute", windowS: 1800, cpus: 48 },
        { queue: "other", windowS: 3600, cpus: 1 },
      ],
    });

    // Act
    const exact = plan(config({ headroomSeconds: 600, headroomWindow: 1800 }), input, NOW);
    const shorter = plan(config({ headroomSeconds: 600, headroomWindow: 3600 }), input, NOW);
    const shortest = plan(config({ headroomSeconds: 600, headroomWindow: 60 }), input, NOW);

    // Assess
    expect(exact.shrinks).toEqual([]);
    expect(shorter.shrinks).toEqual([]);
    expect(shortest.shrinks.map((s) => s.node)).toEqual(["a"]);
  });

  it("without reported arrivals, sizes it from the jobs in the state submitted within the window", () => {
    // Prepare: a running 4-CPU job submitted 10 min ago (in the 3600 s window) and one submitted
    //   2 h ago (outside): 4 CPUs / 3600 s × 3600 s = 4 vCPUs, one idle node kept.
    const jobs = [
      job({ id: "recent", state: "RUNNING", submittedAt: iso(NOW - minutes(10)), nodeNames: ["busy"] }),
      job({ id: "old", state: "RUNNING", submittedAt: iso(NOW - minutes(120)), nodeNames: ["busy"] }),
    ];
    const nodes = [...threeIdle(), node("busy", { state: "ALLOCATED" })];

    // Act
    const decision = plan(config({ headroomSeconds: 3600 }), state(jobs, nodes), NOW);

    // Assess
    expect(decision.shrinks.map((s) => s.node)).toEqual(["a", "b"]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "c", code: "KEPT_FOR_HEADROOM" }),
    );
  });

  it("from the jobs: single-node work of the queue, running or pending, submitted within the window", () => {
    // Prepare: headroomSeconds = headroomWindow = 3600, so the headroom is the CPUs counted. The queue's
    //   largest shape has 4 vCPUs (c4m8). Counted: r1 (2 CPUs, submitted exactly at the window's start),
    //   r2 (one 3-CPU task), r4 (2 copies of 1 CPU) = 7. Not counted: r3 (2 nodes × 4 CPUs = 8 > 4), r5
    //   (another queue), b1 (BLOCKED), old (before the window). Six idle 2-vCPU nodes (c2m4), all past
    //   shrinkIdleTime: 12 idle vCPUs; draining oldest first while 12 − 2k ≥ 7 drains k = 2 of them.
    const since = NOW - 3_600_000;
    const running = { state: "RUNNING" as const, nodeNames: ["busy"] };
    const jobs = [
      job({ id: "r1", ...running, cpusPerNode: 2, submittedAt: iso(since) }),
      job({
        id: "r2",
        ...running,
        nodes: undefined,
        cpusPerNode: undefined,
        memPerNodeMiB: undefined,
        gpusPerNode: undefined,
        tasks: 1,
        cpusPerTask: 3,
        memPerTaskMiB: 1024,
        submittedAt: iso(NOW - minutes(5)),
      }),
      job({ id: "r3", ...running, nodes: 2, cpusPerNode: 4, submittedAt: iso(NOW - minutes(5)) }),
      job({ id: "r4", ...running, cpusPerNode: 1, count: 2, submittedAt: iso(NOW - minutes(5)) }),
      job({ id: "r5", ...running, queue: "other", submittedAt: iso(NOW - minutes(5)) }),
      job({ id: "b1", state: "BLOCKED", reason: "held", submittedAt: iso(NOW - minutes(5)) }),
      job({ id: "old", ...running, submittedAt: iso(since - 1000) }),
    ];
    const idle = ["a", "b", "c", "d", "e", "f"].map((name, i) =>
      node(name, { instanceType: "c2m4", idleSince: idleFor(20 - i) }),
    );
    const nodes = [...idle, node("busy", { state: "ALLOCATED", instanceType: "c16m32" })];

    // Act
    const decision = plan(config({ headroomSeconds: 3600 }), state(jobs, nodes), NOW);

    // Assess: a and b (idle longest) drained; c keeps 8 idle vCPUs ≥ 7, d would leave 6 < 7.
    expect(decision.shrinks.map((s) => s.node)).toEqual(["a", "b"]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({
        node: "c",
        code: "KEPT_FOR_HEADROOM",
        reason: "kept warm: 8 idle vCPUs, headroom 7 vCPUs from recent arrivals",
      }),
    );
  });

  it("from reported arrivals, only the queue's own entry counts", () => {
    // Prepare: another queue's entry comes first (600 CPUs); compute's is 24 CPUs / 3600 s × 600 s = 4 vCPUs.
    const input = parseState({
      nodes: threeIdle(),
      arrivals: [
        { queue: "other", windowS: 3600, cpus: 600 },
        { queue: "compute", windowS: 3600, cpus: 24 },
      ],
    });
    // Act
    const decision = plan(config({ headroomSeconds: 600 }), input, NOW);
    // Assess: three 4-vCPU nodes, 12 idle vCPUs: a and b go (8, then 4 ≥ 4 left), c stays.
    expect(decision.shrinks.map((s) => s.node)).toEqual(["a", "b"]);
  });

  it("is off by default: THPC's rule drains every node past shrinkIdleTime", () => {
    // Act
    const input = parseState({
      nodes: threeIdle(),
      arrivals: [{ queue: "compute", windowS: 3600, cpus: 48 }],
    });
    const decision = plan(config(), input, NOW);

    // Assess
    expect(decision.shrinks.map((s) => s.node)).toEqual(["a", "b", "c"]);
  });

  it("rejects a bad arrivals entry, naming the field", () => {
    expect(() => parseState({ arrivals: [{ queue: "compute", windowS: 0, cpus: 4 }] })).toThrow(/arrivals/);
  });
});

describe("cancelUnneededBoots", () => {
  const launching = (name: string, agoMin: number) =>
    node(name, { state: "LAUNCHING", idleSince: undefined, launchedAt: iso(NOW - minutes(agoMin)) });

  it("terminates booting nodes no pending job will use, and keeps the one a pending job needs", () => {
    // Prepare: one pending 4-CPU job and three booting 4-vCPU nodes: the job claims one.
    const jobs = [job({ id: "p", submittedAt: iso(NOW - minutes(1)) })];
    const nodes = [launching("l1", 3), launching("l2", 2), launching("l3", 1)];

    // Act
    const decision = plan(config({ cancelUnneededBoots: true }), state(jobs, nodes), NOW);

    // Assess: the two unclaimed are cancelled, nothing launched.
    const claimed = ["l1", "l2", "l3"].filter((n) => !decision.shrinks.some((s) => s.node === n));
    expect(claimed).toHaveLength(1);
    expect(decision.shrinks).toHaveLength(2);
    expect(decision.shrinks.every((s) => s.action === "terminate")).toBe(true);
    expect(decision.launches).toEqual([]);
  });

  it("leaves booting nodes alone when off (THPC), and keeps what the headroom wants", () => {
    const nodes = [launching("l1", 3), launching("l2", 2)];

    // Act
    const off = plan(config(), state([], nodes), NOW);
    const withHeadroom = parseState({ nodes, arrivals: [{ queue: "compute", windowS: 3600, cpus: 24 }] });
    const kept = plan(config({ cancelUnneededBoots: true, headroomSeconds: 600 }), withHeadroom, NOW);

    // Assess: off: nothing; headroom 24 / 3600 × 600 = 4 vCPUs: the older boot stays, the newer goes.
    expect(off.shrinks).toEqual([]);
    expect(kept.shrinks).toEqual([expect.objectContaining({ node: "l2", action: "terminate" })]);
  });
});

describe("headroomLaunch: launching the warm headroom", () => {
  // 60 CPUs of single-node jobs in the last hour, headroomSeconds 600: 60 / 3600 × 600 = 10 vCPUs.
  const arrivals = [{ queue: "compute", windowS: 3600, cpus: 60 }];
  const launched = (d: ReturnType<typeof plan>) =>
    d.launches.map((l) => ({ type: l.instanceType, count: l.count, jobs: l.jobs, all: l.allOrNothing }));

  it("launches nodes of the first shape up to the headroom when too few vCPUs are idle", () => {
    // Prepare: one idle 4-vCPU node (idle 1 min, under shrinkIdleTime) and one running a job: 4 spare
    //   vCPUs, 6 missing: two 4-vCPU nodes (6 / 4 rounded up).
    const input = parseState({
      jobs: [job({ id: "r", state: "RUNNING", nodeNames: ["busy"] })],
      nodes: [node("idle", { idleSince: idleFor(1) }), node("busy", { state: "ALLOCATED" })],
      arrivals,
    });

    // Act
    const on = plan(config({ headroomSeconds: 600, headroomLaunch: true }), input, NOW);
    const off = plan(config({ headroomSeconds: 600 }), input, NOW);

    // Assess: a top-up for no job; off (the default), the headroom only keeps idle nodes.
    expect(launched(on)).toEqual([{ type: "c4m8", count: 2, jobs: [], all: false }]);
    expect(on.launches[0]?.reason).toBe(
      "warm headroom: 10 vCPUs from recent arrivals, too few idle or booting",
    );
    expect(on.queues[0]?.launchedNodes).toBe(2);
    expect(launched(off)).toEqual([]);
  });

  it("counts booting nodes as spare, and not the nodes pending jobs will use", () => {
    // Prepare: a booting node (4 spare) and an idle node a pending 4-CPU job will take (not spare):
    //   10 − 4 = 6 missing: two nodes, besides nothing for the job (it is covered).
    const input = parseState({
      jobs: [job({ id: "p", submittedAt: iso(NOW - minutes(1)) })],
      nodes: [
        node("boot", { state: "LAUNCHING", idleSince: undefined, launchedAt: iso(NOW - minutes(1)) }),
        node("idle", { idleSince: idleFor(1) }),
      ],
      arrivals,
    });

    // Act
    const decision = plan(config({ headroomSeconds: 600, headroomLaunch: true }), input, NOW);

    // Assess
    expect(launched(decision)).toEqual([{ type: "c4m8", count: 2, jobs: [], all: false }]);
  });

  it("launches nothing when the idle vCPUs cover the headroom, and shrinks what is beyond it", () => {
    // Prepare: three idle 4-vCPU nodes past shrinkIdleTime: 12 idle vCPUs ≥ 10.
    const input = parseState({ nodes: threeIdle(), arrivals });

    // Act
    const decision = plan(config({ headroomSeconds: 600, headroomLaunch: true }), input, NOW);

    // Assess: none launched; none drained either (12 − 4 = 8 < 10).
    expect(decision.launches).toEqual([]);
    expect(decision.shrinks).toEqual([]);
  });

  it("stays under maxSize and maxNodesPerCycle", () => {
    // Prepare: nothing idle: 10 vCPUs missing, three nodes wanted.
    const input = parseState({
      jobs: [job({ id: "r", state: "RUNNING", nodeNames: ["busy"] })],
      nodes: [node("busy", { state: "ALLOCATED" })],
      arrivals,
    });
    const levers = { headroomSeconds: 600, headroomLaunch: true };

    // Act
    const bySize = plan(config(levers, [queue({ maxSize: 3 })]), input, NOW);
    const byCycle = plan(config(levers, [queue({ maxNodesPerCycle: 1 })]), input, NOW);
    const free = plan(config(levers), input, NOW);

    // Assess: maxSize 3 with one node: two; one per cycle: one; otherwise three.
    expect(launched(bySize)).toEqual([{ type: "c4m8", count: 2, jobs: [], all: false }]);
    expect(launched(byCycle)).toEqual([{ type: "c4m8", count: 1, jobs: [], all: false }]);
    expect(launched(free)).toEqual([{ type: "c4m8", count: 3, jobs: [], all: false }]);
  });
});
