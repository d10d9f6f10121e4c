import { describe, expect, it } from "vitest";
import { type Decision, plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

/**
 * THPC_AS's shrink rules (docs/plan.md step 9 and the node-state table), each expected value worked
 * out by hand from the rule: a node idle without a break for shrinkIdleTime (300 s) is drained, longest
 * idle first; a drained node holding no job is terminated; minSize nodes and desiredIdleNodeCapacity
 * idle nodes are kept; bootTimeout 900 s.
 */

const NOW = T0 + minutes(30);
const idleFor = (seconds: number) => iso(NOW - seconds * 1000);
const codeOf = (d: Decision, name: string) => d.skipped.find((s) => "node" in s && s.node === name)?.code;
const shrunk = (d: Decision) => d.shrinks.map((s) => [s.node, s.action]);

describe("shrink: enableAutoShrink off", () => {
  it("drains and terminates nothing, and says so for each node it would have shrunk", () => {
    // Prepare: every kind of node a queue with auto shrink on would drain or terminate, and others.
    const nodes = [
      node("idle-long", { idleSince: idleFor(600) }),
      node("idle-short", { idleSince: idleFor(60) }),
      node("drained", { state: "DRAINED", reason: "nowscale: idle 600 s" }),
      node("stuck", { state: "NOT_READY", launchedAt: idleFor(1200) }),
      node("maint", { state: "DRAINED", reason: "bad DIMM" }),
      node("down", { state: "DOWN" }),
    ];
    // Act
    const d = plan(config({}, [queue({ enableAutoShrink: false })]), state([], nodes), NOW);
    // Assess: the idle clock is still reported for the node that has not reached it.
    expect(d.shrinks).toEqual([]);
    expect(Object.fromEntries(nodes.map((n) => [n.name, codeOf(d, n.name)]))).toEqual({
      "idle-long": "AUTO_SHRINK_DISABLED",
      "idle-short": "IDLE_TIME_NOT_REACHED",
      drained: "AUTO_SHRINK_DISABLED",
      stuck: "AUTO_SHRINK_DISABLED",
      maint: "DRAINED_BY_OTHERS",
      down: "LEFT_TO_RECONCILER",
    });
  });

  it("is per queue: the other queue still shrinks", () => {
    const d = plan(
      config({}, [queue({ queueName: "keep", enableAutoShrink: false }), queue({ queueName: "trim" })]),
      state(
        [],
        [
          node("k1", { queue: "keep", idleSince: idleFor(600) }),
          node("t1", { queue: "trim", idleSince: idleFor(600) }),
        ],
      ),
      NOW,
    );
    expect(d.shrinks).toEqual([{ node: "t1", queue: "trim", action: "drain", reason: expect.any(String) }]);
    expect(codeOf(d, "k1")).toBe("AUTO_SHRINK_DISABLED");
  });
});

describe("shrink: minSize", () => {
  it("at minSize nothing is drained, however long the nodes have been idle", () => {
    const nodes = [node("a", { idleSince: idleFor(3600) }), node("b", { idleSince: idleFor(3600) })];
    const d = plan(config({}, [queue({ minSize: 2 })]), state([], nodes), NOW);
    expect(d.shrinks).toEqual([]);
    expect([codeOf(d, "a"), codeOf(d, "b")]).toEqual(["KEPT_FOR_MIN_SIZE", "KEPT_FOR_MIN_SIZE"]);
    expect(d.skipped).toContainEqual(
      expect.objectContaining({ node: "a", reason: "queue compute keeps minSize 2 nodes" }),
    );
  });

  it("one above minSize: only the longest idle node is drained; busy nodes count towards minSize", () => {
    // Prepare: minSize 3; two ALLOCATED nodes and two idle ones: 4 nodes, one may go.
    const nodes = [
      node("w1", { state: "ALLOCATED" }),
      node("w2", { state: "MIXED" }),
      node("i-old", { idleSince: idleFor(900) }),
      node("i-new", { idleSince: idleFor(400) }),
    ];
    const d = plan(config({}, [queue({ minSize: 3 })]), state([], nodes), NOW);
    expect(shrunk(d)).toEqual([["i-old", "drain"]]);
    expect(codeOf(d, "i-new")).toBe("KEPT_FOR_MIN_SIZE");
  });

  it("a drained node terminated this cycle no longer counts towards minSize", () => {
    // Prepare: minSize 1; a node NowScale drained earlier and an idle one: terminating the drained node
    // leaves 1 node, so the idle one is kept.
    const nodes = [
      node("a-drained", { state: "DRAINED", reason: "nowscale: idle 400 s" }),
      node("b-idle", { idleSince: idleFor(900) }),
    ];
    const d = plan(config({}, [queue({ minSize: 1 })]), state([], nodes), NOW);
    expect(shrunk(d)).toEqual([["a-drained", "terminate"]]);
    expect(codeOf(d, "b-idle")).toBe("KEPT_FOR_MIN_SIZE");
  });

  it("a NOT_READY node past bootTimeout is retired even at minSize; the idle one is then kept", () => {
    // It is not capacity, so minSize cannot be met with it; retiring it leaves 1 node = minSize.
    const nodes = [
      node("a-stuck", { state: "NOT_READY", launchedAt: idleFor(1200) }),
      node("b-idle", { idleSince: idleFor(900) }),
    ];
    const d = plan(config({}, [queue({ minSize: 1 })]), state([], nodes), NOW);
    expect(d.shrinks).toEqual([
      {
        node: "a-stuck",
        queue: "compute",
        action: "terminate",
        reason: "in Slurm but not capacity 1200 s after launch (bootTimeout 900 s): retired",
      },
    ]);
    expect(codeOf(d, "b-idle")).toBe("KEPT_FOR_MIN_SIZE");
  });

  it("nodes idle equally long go in name order", () => {
    const nodes = [node("b", { idleSince: idleFor(600) }), node("a", { idleSince: idleFor(600) })];
    const d = plan(config({}, [queue({ minSize: 1 })]), state([], nodes), NOW);
    expect(shrunk(d)).toEqual([["a", "drain"]]);
    expect(codeOf(d, "b")).toBe("KEPT_FOR_MIN_SIZE");
  });
});

describe("shrink: shrinkIdleTime, desiredIdleNodeCapacity and reservations", () => {
  it("drains at exactly shrinkIdleTime, not a second before", () => {
    const d = plan(
      config(),
      state([], [node("at", { idleSince: idleFor(300) }), node("before", { idleSince: idleFor(299) })]),
      NOW,
    );
    expect(d.shrinks).toEqual([
      {
        node: "at",
        queue: "compute",
        action: "drain",
        reason: "idle 300 s without a break (shrinkIdleTime 300 s)",
      },
    ]);
    expect(d.skipped).toEqual([
      {
        node: "before",
        queue: "compute",
        code: "IDLE_TIME_NOT_REACHED",
        reason: "idle 299 s of shrinkIdleTime 300 s",
      },
    ]);
  });

  it("a node idle since an unknown time is not drained: its idle clock starts now", () => {
    const d = plan(config({ shrinkIdleTime: 0 }), state([], [node("x", { idleSince: undefined })]), NOW);
    expect(d.shrinks).toEqual([]);
    expect(d.skipped).toEqual([
      {
        node: "x",
        queue: "compute",
        code: "IDLE_TIME_NOT_REACHED",
        reason: "idle since an unknown time: the idle clock starts now",
      },
    ]);
  });

  it("desiredIdleNodeCapacity keeps the most recently idle nodes", () => {
    // Prepare: three idle nodes past shrinkIdleTime, desiredIdleNodeCapacity 1: drain the two oldest.
    const nodes = [
      node("n1", { idleSince: idleFor(400) }),
      node("n2", { idleSince: idleFor(1200) }),
      node("n3", { idleSince: idleFor(800) }),
    ];
    const d = plan(config({}, [queue({ desiredIdleNodeCapacity: 1 })]), state([], nodes), NOW);
    expect(shrunk(d)).toEqual([
      ["n2", "drain"],
      ["n3", "drain"],
    ]);
    expect(d.skipped).toEqual([
      {
        node: "n1",
        queue: "compute",
        code: "KEPT_FOR_DESIRED_IDLE",
        reason: "queue compute keeps desiredIdleNodeCapacity 1 idle nodes",
      },
    ]);
  });

  it("an idle node a pending job will use is not idle capacity: desiredIdleNodeCapacity keeps another", () => {
    // Prepare: two long-idle nodes; a job submitted 30 s ago (Slurm has not had its pass) takes the
    // first by name. desiredIdleNodeCapacity 1 must then keep the other.
    const d = plan(
      config({}, [queue({ desiredIdleNodeCapacity: 1 })]),
      state(
        [job({ id: "p", submittedAt: iso(NOW - 30_000) })],
        [node("a", { idleSince: idleFor(1200) }), node("b", { idleSince: idleFor(600) })],
      ),
      NOW,
    );
    expect(d.shrinks).toEqual([]);
    expect([codeOf(d, "a"), codeOf(d, "b")]).toEqual(["RESERVED_FOR_PENDING_JOB", "KEPT_FOR_DESIRED_IDLE"]);
  });

  it("an IDLE node a running job names is neither drained nor reported idle", () => {
    const d = plan(
      config(),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["n1"] })],
        [node("n1", { idleSince: idleFor(900) })],
      ),
      NOW,
    );
    expect(d.shrinks).toEqual([]);
    expect(d.skipped).toEqual([]);
  });

  it("a drained node without a reason is NowScale's to terminate", () => {
    const d = plan(config(), state([], [node("d1", { state: "DRAINED", reason: undefined })]), NOW);
    expect(d.shrinks).toEqual([
      { node: "d1", queue: "compute", action: "terminate", reason: "drained and holds no job" },
    ]);
  });
});

describe("shrink: nodes that never became capacity", () => {
  it("a LAUNCHING node is flagged at exactly bootTimeout, not before, and never shrunk", () => {
    const d = plan(
      config(),
      state(
        [],
        [
          node("at", { state: "LAUNCHING", launchedAt: idleFor(900) }),
          node("before", { state: "LAUNCHING", launchedAt: idleFor(899) }),
          node("unknown", { state: "LAUNCHING", idleSince: undefined }),
        ],
      ),
      NOW,
    );
    expect(d.shrinks).toEqual([]);
    expect(d.skipped).toEqual([
      {
        node: "at",
        queue: "compute",
        code: "BOOT_TIMEOUT_PASSED",
        reason:
          "not in Slurm 900 s after launch (bootTimeout 900 s): no longer counted as capacity; the reconciler retires it",
      },
    ]);
  });

  it("a NOT_READY node is retired at exactly bootTimeout, not before", () => {
    const d = plan(
      config(),
      state(
        [],
        [
          node("at", { state: "NOT_READY", launchedAt: idleFor(900) }),
          node("before", { state: "NOT_READY", launchedAt: idleFor(899) }),
        ],
      ),
      NOW,
    );
    expect(shrunk(d)).toEqual([["at", "terminate"]]);
    expect(d.skipped).toEqual([]);
  });

  it("follows the configured bootTimeout", () => {
    const d = plan(
      config({ bootTimeout: 120 }),
      state([], [node("nr", { state: "NOT_READY", launchedAt: idleFor(150) })]),
      NOW,
    );
    expect(d.shrinks).toEqual([
      expect.objectContaining({
        node: "nr",
        action: "terminate",
        reason: "in Slurm but not capacity 150 s after launch (bootTimeout 120 s): retired",
      }),
    ]);
  });
});

describe("shrink: every node left alone says why", () => {
  it("gives each reason in full", () => {
    const d = plan(
      config({}, [queue({ enableAutoShrink: false })]),
      state(
        [job({ id: "r", state: "RUNNING", nodeNames: ["nr-busy"] })],
        [
          node("down", { state: "DOWN" }),
          node("draining", { state: "DRAINING" }),
          node("maint", { state: "DRAINED", reason: "bad DIMM" }),
          node("nr-busy", { state: "NOT_READY", launchedAt: idleFor(1200) }),
          node("nr-unknown", { state: "NOT_READY", idleSince: undefined }),
          node("nr-old", { state: "NOT_READY", launchedAt: idleFor(1200) }),
          node("ours", { state: "DRAINED", reason: "nowscale: idle" }),
          node("idle", { idleSince: idleFor(600) }),
        ],
      ),
      NOW,
    );
    expect(d.shrinks).toEqual([]);
    expect(Object.fromEntries(d.skipped.map((s) => ["node" in s ? s.node : s.job, s.reason]))).toEqual({
      down: "node is DOWN: the reconciler replaces or removes it",
      draining: "draining: terminated once its jobs have ended",
      maint: 'drained by someone else ("bad DIMM"): left alone',
      "nr-busy": "not responding but holds a running job: left alone",
      "nr-unknown":
        "in Slurm but not capacity (not responding, powered down or unknown), since an unknown time: not counted as capacity",
      "nr-old": "auto shrink is disabled for queue compute",
      ours: "auto shrink is disabled for queue compute",
      idle: "auto shrink is disabled for queue compute",
    });
  });
});
