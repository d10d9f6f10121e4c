import { describe, expect, it } from "vitest";
import { countedParts, formatConstraint, parseConstraint, satisfies } from "../../../lib/core/constraint.js";
import { type Decision, plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

const NOW = T0 + minutes(10);

function parsed(text: string) {
  const result = parseConstraint(text);
  if ("error" in result) throw new Error(result.error);
  return result.constraint;
}

describe("Slurm constraint expressions (sbatch -C)", () => {
  it.each([
    ["a", ["a"], true],
    ["a", ["b"], false],
    ["a&b", ["a", "b"], true],
    ["a&b", ["a"], false],
    ["a|b", ["b"], true],
    ["[a|b]", ["a"], true],
    ["a|b&c", ["b"], false],
    ["a|b&c", ["a"], true],
    ["(a|b)&c", ["b", "c"], true],
    ["(a|b)&c", ["b"], false],
    ["[a*3&b*1]", ["b"], true],
    ["[a*3&b*1]", ["c"], false],
    ["[(a&b)*2&c*1]", ["a"], false],
    ["[(a&b)*2&c*1]", ["a", "b"], true],
    ["type_c5.xlarge", ["type_c5.xlarge"], true],
  ] as const)("%s on a node with %j → %s", (text, features, expected) => {
    expect(satisfies(parsed(text), new Set(features))).toBe(expected);
  });

  it("splits node counts into parts, and keeps plain terms on every part", () => {
    expect(
      countedParts(parsed("[a*3&b*1]"))?.parts.map((p) => [formatConstraint(p.constraint), p.nodes]),
    ).toEqual([
      ["a", 3],
      ["b", 1],
    ]);
    expect(
      countedParts(parsed("a*2&ib"))?.parts.map((p) => [formatConstraint(p.constraint), p.nodes]),
    ).toEqual([["a&ib", 2]]);
    expect(countedParts(parsed("a&b"))).toBeUndefined();
  });

  it.each([
    ["a&", "expected a feature name at position 3"],
    ["(a|b", "expected ')'"],
    ["a*", "expected a node count"],
    ["a*0", "at least 1"],
    ["a!b", "unexpected '!'"],
    ["", "empty expression"],
  ])("names the problem in %j", (text, message) => {
    const result = parseConstraint(text);
    expect("error" in result && result.error).toContain(message);
  });
});

/** Queue compute: c4m8 in z1 and z2, c8m16 in z1; every node also has the queue's feature "ib". */
const cfg = (policy: "thpc" | "packed" = "thpc") =>
  config({ policy }, [
    queue({
      features: ["ib"],
      expansionNodeConfigs: [
        { zone: "z1", instanceType: "c4m8" },
        { zone: "z2", instanceType: "c4m8" },
        { zone: "z1", instanceType: "c8m16" },
      ],
    }),
  ]);
const launched = (d: Decision) =>
  d.launches.map((l) => [l.candidates.map((c) => `${c.instanceType}@${c.zone}`).join(","), l.count]);

describe("plan with constraints (issue 12, class 3)", () => {
  it.each(["thpc", "packed"] as const)(
    "%s: launches only types whose features satisfy the expression",
    (policy) => {
      // Prepare: a small job the whole queue fits; its constraint names the larger type.
      const jobs = [job({ id: "big", cpusPerNode: 1, memPerNodeMiB: 1000, constraint: "type_c8m16&ib" })];
      // Act
      const decision = plan(cfg(policy), state(jobs), NOW);
      // Assess
      expect(launched(decision)).toEqual([["c8m16@z1", 1]]);
    },
  );

  it("a zone constraint keeps the candidates of that zone", () => {
    const decision = plan(cfg(), state([job({ id: "a", constraint: "zone_z2" })]), NOW);
    expect(launched(decision)).toEqual([["c4m8@z2", 1]]);
  });

  it("OR, matching OR and the queue's own feature", () => {
    const decision = plan(
      cfg(),
      state([
        job({ id: "or", constraint: "type_c8m16|type_nope" }),
        job({ id: "match", constraint: "[zone_z2|zone_z9]" }),
        job({ id: "queue", constraint: "ib" }),
      ]),
      NOW,
    );
    expect(
      decision.launches.map((l) => [l.jobs, l.candidates.map((c) => `${c.instanceType}@${c.zone}`)]),
    ).toEqual([
      // FIFO with equal submit times: by id.
      [["match"], ["c4m8@z2"]],
      [["or"], ["c8m16@z1"]],
      [["queue"], ["c4m8@z1", "c4m8@z2"]],
    ]);
  });

  it("node counts [a*3&b*1]: 3 nodes of one type and 1 of the other, each set all-or-nothing", () => {
    const decision = plan(
      cfg(),
      state([job({ id: "mix", nodes: 4, constraint: "[type_c4m8*3&type_c8m16*1]" })]),
      NOW,
    );
    expect(decision.launches.map((l) => [l.instanceType, l.count, l.allOrNothing, l.jobs])).toEqual([
      ["c4m8", 3, true, ["mix"]],
      ["c8m16", 1, false, ["mix"]],
    ]);
  });

  it("skips an expression no type satisfies, with a reason, and launches nothing", () => {
    const decision = plan(cfg(), state([job({ id: "x", constraint: "bigmem", count: 3 })]), NOW);
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toEqual([
      expect.objectContaining({ job: "x", code: "CONSTRAINT_UNSATISFIABLE", copies: 3 }),
    ]);
    expect(decision.skipped[0]?.reason).toMatch(
      /no instance type of queue compute has features satisfying "bigmem"/,
    );
  });

  it("skips an expression it cannot read, naming the problem", () => {
    const decision = plan(cfg(), state([job({ id: "x", constraint: "a&&b" })]), NOW);
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toEqual([
      expect.objectContaining({ job: "x", code: "CONSTRAINT_NOT_UNDERSTOOD" }),
    ]);
  });

  it.each(["thpc", "packed"] as const)(
    "%s: an idle node whose type does not satisfy the constraint is neither used nor reserved",
    (policy) => {
      // Prepare: an idle c4m8 node, just idle; the job asks for c8m16.
      const decision = plan(
        cfg(policy),
        state(
          [job({ id: "a", submittedAt: iso(NOW - 30_000), constraint: "type_c8m16" })],
          [node("small", { idleSince: iso(NOW - 20_000) })],
        ),
        NOW,
      );
      expect(launched(decision)).toEqual([["c8m16@z1", 1]]);
      expect(decision.skipped).not.toContainEqual(
        expect.objectContaining({ node: "small", code: "RESERVED_FOR_PENDING_JOB" }),
      );
    },
  );
});
