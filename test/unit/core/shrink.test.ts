import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

const NOW = T0 + minutes(30);
const idleFor = (m: number) => iso(NOW - minutes(m));

describe("plan: shrink", () => {
  it("drains a node idle without a break for shrinkIdleTime, not one idle for less", () => {
    const decision = plan(
      config(),
      state([], [node("old", { idleSince: idleFor(6) }), node("new", { idleSince: idleFor(4) })]),
      NOW,
    );
    expect(decision.shrinks).toEqual([expect.objectContaining({ node: "old", action: "drain" })]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({
        node: "new",
        code: "IDLE_TIME_NOT_REACHED",
        reason: "idle 240 s of shrinkIdleTime 300 s",
      }),
    );
  });

  it("terminates a drained node that holds no job, never one that runs a job", () => {
    const decision = plan(
      config(),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["drained-busy"] })],
        [
          node("drained-empty", { state: "DRAINED", reason: "nowscale: idle" }),
          node("drained-busy", { state: "DRAINED", reason: "nowscale: idle" }),
          node("draining", { state: "DRAINING" }),
          node("alloc", { state: "ALLOCATED" }),
        ],
      ),
      NOW,
    );
    expect(decision.shrinks).toEqual([
      expect.objectContaining({ node: "drained-empty", action: "terminate" }),
    ]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "drained-busy", code: "RUNS_A_JOB" }),
    );
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "draining", code: "RUNS_A_JOB" }),
    );
  });

  it("does not terminate a node someone else drained", () => {
    const decision = plan(
      config(),
      state([], [node("maint", { state: "DRAINED", reason: "bad DIMM" })]),
      NOW,
    );
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped).toEqual([expect.objectContaining({ node: "maint", code: "DRAINED_BY_OTHERS" })]);
  });

  it("keeps minSize nodes, longest idle shrunk first", () => {
    const nodes = [
      node("a", { idleSince: idleFor(10) }),
      node("b", { idleSince: idleFor(20) }),
      node("c", { idleSince: idleFor(15) }),
    ];
    const decision = plan(config({}, [queue({ minSize: 1 })]), state([], nodes), NOW);
    expect(decision.shrinks.map((s) => s.node)).toEqual(["b", "c"]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "a", code: "KEPT_FOR_MIN_SIZE" }),
    );
  });

  it("keeps desiredIdleNodeCapacity idle nodes", () => {
    const nodes = [
      node("a", { idleSince: idleFor(10) }),
      node("b", { idleSince: idleFor(20) }),
      node("w", { state: "ALLOCATED" }),
    ];
    const decision = plan(config({}, [queue({ desiredIdleNodeCapacity: 1 })]), state([], nodes), NOW);
    expect(decision.shrinks.map((s) => s.node)).toEqual(["b"]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ node: "a", code: "KEPT_FOR_DESIRED_IDLE" }),
    );
  });

  it("shrinks nothing when auto shrink is disabled, and says so", () => {
    const decision = plan(
      config({}, [queue({ enableAutoShrink: false })]),
      state([], [node("a", { idleSince: idleFor(60) })]),
      NOW,
    );
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped).toEqual([expect.objectContaining({ node: "a", code: "AUTO_SHRINK_DISABLED" })]);
  });

  it("leaves DOWN nodes to the reconciler and never touches nodes of unknown queues", () => {
    const decision = plan(
      config(),
      state([], [node("down", { state: "DOWN" }), node("stray", { queue: "other", idleSince: idleFor(60) })]),
      NOW,
    );
    expect(decision.shrinks).toEqual([]);
    expect(decision.skipped.map((s) => s.code).sort()).toEqual([
      "LEFT_TO_RECONCILER",
      "QUEUE_NOT_CONFIGURED",
    ]);
  });

  it("notes each node of a type the config does not name, and never terminates one that runs a job", () => {
    // Prepare: nodes of a type since removed from the config, in each state that matters.
    const gone = { instanceType: "c5.removed" };
    const decision = plan(
      config(),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["busy"] })],
        [
          node("busy", { ...gone, state: "IDLE" }),
          node("drained", { ...gone, state: "DRAINED", reason: "nowscale: idle" }),
          node("fresh", { ...gone, idleSince: idleFor(1) }),
          node("old", { ...gone, idleSince: idleFor(10) }),
        ],
      ),
      NOW,
    );
    // Act
    const notes = decision.skipped.filter((s) => s.code === "TYPE_NOT_CONFIGURED");
    // Assess
    expect(decision.shrinks).toEqual([
      expect.objectContaining({ node: "drained", action: "terminate" }),
      expect.objectContaining({ node: "old", action: "drain" }),
    ]);
    expect(
      notes.map((s) => ("node" in s ? [s.node, s.reason.split(": it covers no pending job; ")[1]] : [])),
    ).toEqual([
      ["busy", "it runs a job, so it is left alone"],
      ["drained", "planned to terminate by the usual shrink rules (see shrinks)"],
      ["fresh", "not shrunk this cycle (the usual shrink rules apply)"],
      ["old", "planned to drain by the usual shrink rules (see shrinks)"],
    ]);
    expect(notes[0]?.reason).toMatch(
      /^instance type c5\.removed is not in the config's catalog \(a typo, or a type removed/,
    );
  });
});
