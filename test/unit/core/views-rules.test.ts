import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, parseStateWith, queue, state, T0 } from "./builders.js";

/**
 * What a pending job may use (docs/plan.md steps 3 and 10): the safety net's limits counted to the
 * second, constraints on existing nodes and on node-count parts, offerings held until a time.
 * reservationTimeout is 60 s unless a test sets it. Expected values by hand.
 */

const NOW = T0 + minutes(30);
const ago = (seconds: number) => iso(NOW - seconds * 1000);
const codeOf = (d: ReturnType<typeof plan>, name: string) =>
  d.skipped.find((s) => "node" in s && s.node === name)?.code;

/** c4m8 in zones z1 and z2, c8m16 in z1; the queue's own feature `ib`. */
const cfg = (over = {}) =>
  config(over, [
    queue({
      features: ["ib"],
      expansionNodeConfigs: [
        { zone: "z1", instanceType: "c4m8" },
        { zone: "z2", instanceType: "c4m8" },
        { zone: "z1", instanceType: "c8m16" },
      ],
    }),
  ]);

describe("the safety net, to the second", () => {
  it("a node idle exactly reservationTimeout still covers the job", () => {
    const d = plan(
      cfg(),
      state([job({ id: "a", submittedAt: ago(600) })], [node("n1", { idleSince: ago(60) })]),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(d.launches).toEqual([]);
    expect(codeOf(d, "n1")).toBe("RESERVED_FOR_PENDING_JOB");
  });

  it("a job pending exactly reservationTimeout is still covered", () => {
    const d = plan(
      cfg(),
      state([job({ id: "a", submittedAt: ago(60) })], [node("n1", { idleSince: ago(600) })]),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(codeOf(d, "n1")).toBe("RESERVED_FOR_PENDING_JOB");
  });

  it("one second past both, the node stops covering the job: counted from the later of the two", () => {
    // Node idle 10 min, job 61 s: side by side 61 s. Node idle 70 s, job 5 min: 70 s.
    const a = plan(
      cfg(),
      state([job({ id: "a", submittedAt: ago(61) })], [node("n1", { idleSince: ago(600) })]),
      NOW,
    );
    const b = plan(
      cfg(),
      state([job({ id: "b", submittedAt: ago(300) })], [node("n1", { idleSince: ago(70) })]),
      NOW,
    );
    expect(a.mismatches).toStrictEqual([
      {
        node: "n1",
        job: "a",
        queue: "compute",
        waitedS: 61,
        reason:
          "idle 61 s beside pending job a, which NowScale read as fitting it, and Slurm has not started it there: the node no longer covers the job",
      },
    ]);
    expect(b.mismatches.map((m) => m.waitedS)).toEqual([70]);
    // c4m8 is refused for the job: it launches the other shape that fits, c8m16.
    expect(a.launches.map((l) => [l.instanceType, l.jobs])).toEqual([["c8m16", ["a"]]]);
    // Free of the job, n1 (idle 600 s) shrinks.
    expect(a.shrinks).toEqual([expect.objectContaining({ node: "n1", action: "drain" })]);
  });

  it("follows the configured reservationTimeout", () => {
    const d = plan(
      cfg({ reservationTimeout: 300 }),
      state([job({ id: "a", submittedAt: ago(200) })], [node("n1", { idleSince: ago(200) })]),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(codeOf(d, "n1")).toBe("RESERVED_FOR_PENDING_JOB");
  });

  it("an idle node the job does not fit, or whose features its constraint refuses, is no evidence", () => {
    // An 8-CPU job beside a long-idle c4m8; a zone_z2 job beside a long-idle c4m8 in z1.
    const d = plan(
      cfg(),
      state(
        [
          job({ id: "big", cpusPerNode: 8, submittedAt: ago(300) }),
          job({ id: "z2", constraint: "zone_z2", submittedAt: ago(300) }),
        ],
        [node("n1", { idleSince: ago(600) })],
      ),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(d.launches.map((l) => [l.jobs, `${l.instanceType}@${l.zone}`])).toEqual([
      [["big"], "c8m16@z1"],
      [["z2"], "c4m8@z2"],
    ]);
  });

  it("when the type Slurm passed over is the only one that fits, every copy of the job is held", () => {
    // A queue of c4m8 alone: refusing c4m8 leaves the job no shape to launch.
    const only = config({}, [queue()]);
    const d = plan(
      only,
      state([job({ id: "a", submittedAt: ago(61), count: 2 })], [node("n1", { idleSince: ago(61) })]),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(d.skipped).toContainEqual({
      job: "a",
      queue: "compute",
      code: "NOT_STARTED_BY_SLURM",
      reason:
        "Slurm has not started it on idle c4m8 node n1 for 61 s: NowScale's reading of the job differs from Slurm's, so it launches no more of that type for it (2 identical jobs)",
      copies: 2,
    });
  });

  it("another idle node of the refused type, not yet passed over by Slurm, still covers the job", () => {
    // n1 idle 10 min (Slurm had its chance), n2 idle 30 s (it has not): the job may still take n2.
    const d = plan(
      config({}, [queue()]),
      state(
        [job({ id: "a", submittedAt: ago(300) })],
        [node("n1", { idleSince: ago(600) }), node("n2", { idleSince: ago(30) })],
      ),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(d.mismatches.map((m) => m.node)).toEqual(["n1"]);
    expect(codeOf(d, "n2")).toBe("RESERVED_FOR_PENDING_JOB");
    expect(d.shrinks).toEqual([expect.objectContaining({ node: "n1", action: "drain" })]);
  });

  it("a multi-node job whose other node still boots keeps its idle nodes: Slurm could not start it there (issue 15)", () => {
    // Job a: 3 nodes of 4 CPU, pending 10 min. n1 and n2 (c4m8) idle 5 min, n3 launching for it.
    //   Slurm starts a job on all its nodes at once: two idle nodes cannot hold three, so their idling
    //   beside it says nothing about how Slurm reads it. n1 + n2 + n3 cover the job: nothing launched,
    //   n1 and n2 stay reserved (not drained, although idle past shrinkIdleTime 60 s).
    //   Before this rule the net refused c4m8, launched 3 × c8m16 and drained n1, n2: the 214-processor
    //   Lublin job's 70-minute wait, round after round.
    const d = plan(
      cfg({ shrinkIdleTime: 60 }),
      state(
        [job({ id: "a", nodes: 3, submittedAt: ago(600) })],
        [
          node("n1", { idleSince: ago(300) }),
          node("n2", { idleSince: ago(300) }),
          node("n3", { state: "LAUNCHING", launchedAt: ago(60) }),
        ],
      ),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(d.launches).toEqual([]);
    expect(d.shrinks).toEqual([]);
    expect(codeOf(d, "n1")).toBe("RESERVED_FOR_PENDING_JOB");
    expect(codeOf(d, "n2")).toBe("RESERVED_FOR_PENDING_JOB");
    expect(d.skipped).toContainEqual({
      job: "a",
      queue: "compute",
      code: "COVERED_BY_EXISTING_NODES",
      reason: "existing nodes will run it: n1, n2, n3",
      copies: 1,
    });
  });

  it("once its idle nodes could hold the whole job and Slurm still has not started it, the net applies", () => {
    // The same job beside three c4m8 idle 5 min: Slurm had its chance on all three. c4m8 is refused:
    //   3 × c8m16 launched, the three idle nodes mismatched and drained (idle 300 s ≥ 60 s).
    const d = plan(
      cfg({ shrinkIdleTime: 60 }),
      state(
        [job({ id: "a", nodes: 3, submittedAt: ago(600) })],
        [
          node("n1", { idleSince: ago(300) }),
          node("n2", { idleSince: ago(300) }),
          node("n3", { idleSince: ago(300) }),
        ],
      ),
      NOW,
    );
    expect(d.mismatches.map((m) => m.node)).toEqual(["n1", "n2", "n3"]);
    expect(d.launches.map((l) => [l.instanceType, l.count, l.jobs])).toEqual([["c8m16", 3, ["a"]]]);
    expect(d.shrinks.map((s) => [s.node, s.action])).toEqual([
      ["n1", "drain"],
      ["n2", "drain"],
      ["n3", "drain"],
    ]);
  });

  it("counts the idle nodes' room in tasks: 8 tasks beside one idle 4-CPU node are no evidence", () => {
    // Job t: 8 tasks of 1 CPU / 1024 MiB, pending 10 min; n1 (c4m8) idle 5 min holds 4 of them: no
    //   mismatch. THPC's own rule then applies: n1 would not save a new node (c8m16 holds all 8 with no
    //   spare CPU), so t gets its best fit, one c8m16, and n1, free of it, drains after shrinkIdleTime.
    const d = plan(
      cfg({ shrinkIdleTime: 60 }),
      state(
        [
          job({
            id: "t",
            nodes: undefined,
            cpusPerNode: undefined,
            memPerNodeMiB: undefined,
            gpusPerNode: undefined,
            tasks: 8,
            cpusPerTask: 1,
            memPerTaskMiB: 1024,
            submittedAt: ago(600),
          }),
        ],
        [node("n1", { idleSince: ago(300) })],
      ),
      NOW,
    );
    expect(d.mismatches).toEqual([]);
    expect(d.launches.map((l) => [l.instanceType, l.count, l.jobs])).toEqual([["c8m16", 1, ["t"]]]);
    expect(d.shrinks.map((s) => [s.node, s.action])).toEqual([["n1", "drain"]]);
  });

  it("lists at most 200 mismatches per queue; the rule applies to every job", () => {
    const jobs = Array.from({ length: 201 }, (_, i) => job({ id: `j${i}`, submittedAt: ago(300) }));
    const d = plan(config({}, [queue()]), state(jobs, [node("n1", { idleSince: ago(600) })]), NOW);
    expect(d.mismatches).toHaveLength(200);
    expect(d.skipped.filter((s) => s.code === "NOT_STARTED_BY_SLURM")).toHaveLength(201);
  });
});

describe("constraints on existing nodes and node-count parts", () => {
  it("an idle node whose features satisfy the constraint covers the job", () => {
    const d = plan(
      cfg(),
      state(
        [job({ id: "a", constraint: "zone_z2&ib", submittedAt: ago(30) })],
        [node("n1", { zone: "z2", idleSince: ago(30) })],
      ),
      NOW,
    );
    expect(d.launches).toEqual([]);
    expect(codeOf(d, "n1")).toBe("RESERVED_FOR_PENDING_JOB");
  });

  it("nodes beyond the counted ones are a part of their own, on the job's best fit", () => {
    // 5 nodes, "type_c8m16*1": one c8m16, and the other 4 nodes on the best fit for 4 CPU, c4m8.
    const d = plan(cfg(), state([job({ id: "m", nodes: 5, constraint: "type_c8m16*1" })]), NOW);
    expect(d.launches.map((l) => [l.instanceType, l.count, l.allOrNothing, l.jobs])).toEqual([
      ["c8m16", 1, false, ["m"]],
      ["c4m8", 4, true, ["m"]],
    ]);
  });

  it("a part no type satisfies skips the whole job, naming that part and the queue's features", () => {
    const d = plan(cfg(), state([job({ id: "m", nodes: 2, constraint: "[type_c4m8*1&type_nope*1]" })]), NOW);
    expect(d.launches).toEqual([]);
    expect(d.skipped).toEqual([
      {
        job: "m",
        queue: "compute",
        code: "CONSTRAINT_UNSATISFIABLE",
        reason:
          'no instance type of queue compute has features satisfying "type_nope" (features: q_compute, type_<type>, zone_<zone>, ib)',
        copies: 1,
      },
    ]);
  });
});

describe("offerings held unavailable", () => {
  it("a hold ends at its until time exactly", () => {
    const held = (until: number) =>
      plan(
        cfg(),
        parseStateWith({
          jobs: [job({ id: "a" })],
          unavailableOfferings: [
            { instanceType: "c4m8", zone: "z1", until: iso(until) },
            { instanceType: "c4m8", zone: "z2", until: iso(until) },
          ],
        }),
        NOW,
      );
    expect(held(NOW).launches.map((l) => `${l.instanceType}@${l.zone}`)).toEqual(["c4m8@z1"]);
    expect(held(NOW + 1000).launches.map((l) => `${l.instanceType}@${l.zone}`)).toEqual(["c8m16@z1"]);
  });

  it("a hold of one zone leaves the other zone's offering as the launch's only candidate of that shape", () => {
    const d = plan(
      cfg(),
      parseStateWith({
        jobs: [job({ id: "a" })],
        unavailableOfferings: [{ instanceType: "c4m8", zone: "z1" }],
      }),
      NOW,
    );
    expect(d.launches.map((l) => l.candidates.map((c) => `${c.instanceType}@${c.zone}`))).toEqual([
      ["c4m8@z2"],
    ]);
  });
});

describe("views: reasons in full", () => {
  it("a mismatch quotes Slurm's pending reason", () => {
    const d = plan(
      cfg(),
      state(
        [job({ id: "a", submittedAt: ago(61), reason: "Resources" })],
        [node("n1", { idleSince: ago(600) })],
      ),
      NOW,
    );
    expect(d.mismatches).toStrictEqual([
      {
        node: "n1",
        job: "a",
        queue: "compute",
        waitedS: 61,
        slurmReason: "Resources",
        reason:
          "idle 61 s beside pending job a, which NowScale read as fitting it, and Slurm has not started it there (Slurm: Resources): the node no longer covers the job",
      },
    ]);
  });

  it("a constraint it cannot read is quoted (at most 100 characters) with the problem", () => {
    const long = `${"x".repeat(150)}!`;
    const d = plan(
      cfg(),
      state([job({ id: "a", constraint: "a&&b" }), job({ id: "b", constraint: long })]),
      NOW,
    );
    expect(d.skipped.map((s) => s.reason)).toEqual([
      'constraint "a&&b" not understood (expected a feature name at position 3 of "a&&b"): NowScale launches nothing for it',
      `constraint "${"x".repeat(100)}" not understood (unexpected '!' at position 151 of "${"x".repeat(80)}"): NowScale launches nothing for it`,
    ]);
  });

  it("a queue without features of its own lists only NowScale's", () => {
    const d = plan(config(), state([job({ id: "a", constraint: "gpu" })]), NOW);
    expect(d.skipped.map((s) => s.reason)).toEqual([
      'no instance type of queue compute has features satisfying "gpu" (features: q_compute, type_<type>, zone_<zone>)',
    ]);
  });

  it("held offerings: strict waits for the best fit; with nothing left, no capacity; both say which", () => {
    const held = (types: [string, string][]) => types.map(([instanceType, zone]) => ({ instanceType, zone }));
    const strict = plan(
      cfg({ capacityFallback: "strict" }),
      parseStateWith({
        jobs: [job({ id: "a" })],
        unavailableOfferings: held([
          ["c4m8", "z1"],
          ["c4m8", "z2"],
        ]),
      }),
      NOW,
    );
    const none = plan(
      cfg(),
      parseStateWith({
        jobs: [job({ id: "a" })],
        unavailableOfferings: held([
          ["c4m8", "z1"],
          ["c4m8", "z2"],
          ["c8m16", "z1"],
        ]),
      }),
      NOW,
    );
    expect(strict.launches).toEqual([]);
    expect(strict.skipped.map((s) => [s.code, s.reason])).toEqual([
      [
        "BEST_FIT_UNAVAILABLE",
        'every offering of the best-fit shape (c4m8@z1, c4m8@z2) is held unavailable after capacity errors; capacityFallback "strict" waits for it',
      ],
    ]);
    expect(none.launches).toEqual([]);
    expect(none.skipped.map((s) => [s.code, s.reason])).toEqual([
      [
        "NO_CAPACITY",
        "every offering that fits (c4m8@z1, c4m8@z2 first) is held unavailable after capacity errors",
      ],
    ]);
  });
});
