import { describe, expect, it } from "vitest";
import { ROUND_TAG } from "../../../lib/control/launch.js";
import {
  bootActions,
  goneActions,
  goneSuspects,
  healthActions,
  intentClosures,
  planAdoptions,
  releaseActions,
  type SlurmView,
  slurmView,
} from "../../../lib/control/reconcile-decision.js";
import type { OkReport, ReportNode } from "../../../lib/ports/agent-report.js";
import type { CloudInstance } from "../../../lib/ports/cloud-provider.js";
import type { LaunchIntent, NodeRecord } from "../../../lib/ports/state-store.js";

// The reconciler's pure decisions (lib/control/reconcile-decision.ts). Expected values are worked out
// from the rules in reconciler.ts's contract: one observation only marks, a later one that agrees acts
// on the mark's age, and a node running a job is never destroyed.

const NOW = 10_000_000;
const S = 1000;
const LIMITS = {
  orphanGraceMs: 300 * S,
  bootTimeoutMs: 900 * S,
  goneGraceMs: 120 * S,
  goneConfirmMs: 120 * S,
  downGraceMs: 300 * S,
  releaseRetryMs: 60 * S,
  intentStaleMs: 300 * S,
};

function record(name: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    clusterId: "c1",
    nodeName: name,
    instanceId: name,
    queue: "compute",
    instanceType: "c4m8",
    zone: "z1",
    chargeType: "ON_DEMAND",
    status: "JOINED",
    launchedAt: NOW - 3600 * S,
    updatedAt: NOW - 3600 * S,
    ...overrides,
  };
}

function instance(id: string, overrides: Partial<CloudInstance> = {}): CloudInstance {
  return {
    id,
    instanceType: "c4m8",
    zone: "z1",
    chargeType: "ON_DEMAND",
    state: "RUNNING",
    tags: {},
    ...overrides,
  };
}

function intent(round: string, overrides: Partial<LaunchIntent> = {}): LaunchIntent {
  return {
    clusterId: "c1",
    round,
    queue: "compute",
    count: 1,
    allOrNothing: false,
    candidates: [{ instanceType: "c4m8", zone: "z1", chargeType: "ON_DEMAND" }],
    tokens: ["t"],
    jobs: [],
    intendedAt: NOW - 600 * S,
    status: "INTENDED",
    instanceIds: [],
    failures: [],
    ...overrides,
  };
}

function view(parts: Partial<SlurmView> = {}): SlurmView {
  return {
    listed: new Set(),
    busy: new Set(),
    unhealthy: new Set(),
    drained: new Set(),
    states: new Map(),
    ...parts,
  };
}

const kinds = (actions: readonly { kind: string; record: NodeRecord }[]) =>
  actions.map((a) => `${a.record.nodeName} ${a.kind}`);

describe("reconcile decision: Slurm's view", () => {
  it("lists, busy and unhealthy nodes, and each node's first reported state", () => {
    // Prepare: n2 DOWN and not responding ("*"), n3 MIXED, n4 only named by a running job group.
    const reportNode = (name: string, state: ReportNode["state"], slurmState: string): ReportNode => ({
      name,
      queue: "compute",
      instanceType: "c4m8",
      zone: "z1",
      state,
      cpus: 4,
      cpusAllocated: 0,
      memoryMiB: 8192,
      memoryAllocatedMiB: 0,
      gpus: 0,
      features: [],
      slurmState,
    });
    const report = {
      nodes: [
        reportNode("n1", "IDLE", "IDLE"),
        reportNode("n2", "DOWN", "DOWN*"),
        reportNode("n3", "MIXED", "MIXED"),
        reportNode("n1", "DOWN", "DOWN"),
        { ...reportNode("n5", "DRAINED", "IDLE+DRAIN"), reason: "nowscale: idle" },
        { ...reportNode("n6", "DRAINED", "IDLE+DRAIN"), reason: "maintenance" },
      ],
      jobs: [{ state: "RUNNING", nodeNames: ["n4"] }],
    } as unknown as OkReport;
    // Act
    const v = slurmView(report);
    // Assess: n1's second entry is unhealthy but its state stays the first one reported.
    expect([...v.listed].sort()).toEqual(["n1", "n2", "n3", "n5", "n6"]);
    expect([...v.drained]).toEqual(["n5"]);
    expect([...v.busy].sort()).toEqual(["n3", "n4"]);
    expect([...v.unhealthy].sort()).toEqual(["n1", "n2"]);
    expect(v.states.get("n1")).toBe("IDLE");
    expect(v.states.get("n2")).toBe("DOWN*");
    expect(v.states.has("n4")).toBe(false);
  });
});

describe("reconcile decision: adopt", () => {
  it("records each untracked live instance once: by its intent, else as an orphan", () => {
    // Prepare: a tracked; b shutting down; c of intended round r1 and in Slurm (listed twice); d tagged with a
    // round nobody intended; e with no tag at all.
    const instances = [
      instance("a"),
      instance("b", { state: "TERMINATING" }),
      instance("c", { tags: { [ROUND_TAG]: "r1" } }),
      instance("d", { tags: { [ROUND_TAG]: "r9" }, queue: "gpu", launchedAt: NOW - 50 * S }),
      instance("e"),
      instance("c", { tags: { [ROUND_TAG]: "r1" } }),
    ];
    const intents = [intent("r1", { queue: "big", intendedAt: NOW - 100 * S })];
    // Act
    const plan = planAdoptions(
      "c1",
      instances,
      new Set(["a"]),
      intents,
      view({ listed: new Set(["c"]) }),
      NOW,
    );
    // Assess
    expect(plan.adoptions.map((a) => a.instance.id)).toEqual(["c", "d", "e"]);
    const [c, d, e] = plan.adoptions.map((a) => a.record);
    expect(c).toMatchObject({
      queue: "big",
      status: "JOINED",
      round: "r1",
      launchedAt: NOW - 100 * S,
      origin: "launch",
    });
    expect(plan.adoptions[0]?.intentRound).toBe("r1");
    expect(d).toMatchObject({
      queue: "gpu",
      status: "LAUNCHING",
      round: "r9",
      launchedAt: NOW - 50 * S,
      origin: "adopted",
    });
    expect(plan.adoptions[1]?.intentRound).toBeUndefined();
    expect(e).toMatchObject({ queue: "unknown", status: "LAUNCHING", launchedAt: NOW, origin: "adopted" });
    expect(e !== undefined && "round" in e).toBe(false);
    expect([...plan.byRound.entries()].map(([r, is]) => [r, is.map((i) => i.id)])).toEqual([["r1", ["c"]]]);
    expect(plan.orphans).toEqual(["d", "e"]);
  });

  it("without Slurm's view every adopted instance is LAUNCHING, and a stopping one is left alone", () => {
    // Act
    const plan = planAdoptions(
      "c1",
      [instance("x"), instance("y", { state: "STOPPING" })],
      new Set(),
      [],
      undefined,
      NOW,
    );
    // Assess
    expect(plan.adoptions.map((a) => `${a.record.nodeName} ${a.record.status}`)).toEqual(["x LAUNCHING"]);
  });
});

describe("reconcile decision: gone", () => {
  it("suspects only records the listing misses past the grace; clears the mark of those listed again", () => {
    // Prepare
    const records = [
      record("a", { missingSince: NOW - 10 * S }),
      record("b"),
      record("c", { launchedAt: NOW - 119 * S }),
      record("d", { launchedAt: NOW - 120 * S }),
    ];
    // Act
    const { relisted, unlisted } = goneSuspects(records, [instance("a"), instance("b")], NOW, LIMITS);
    // Assess
    expect(relisted.map((r) => r.nodeName)).toEqual(["a"]);
    expect(unlisted.map((r) => r.nodeName)).toEqual(["d"]);
  });

  it("forgets on a TERMINATED describe at once, on two misses goneConfirmMs apart, never under a job", () => {
    // Prepare
    const unlisted = [
      record("r1", { missingSince: NOW - 10 * S }), // described RUNNING: the listing was short
      record("r2"), // described RUNNING, no mark: nothing
      record("r3"), // missed by both, first time: mark
      record("r4", { missingSince: NOW - 119 * S }), // second miss too soon: wait
      record("r5", { missingSince: NOW - 120 * S }), // second miss at the limit: forget
      record("r6"), // described TERMINATED, not in Slurm
      record("r7"), // described TERMINATED, Slurm runs a job there
    ];
    const described = new Map([
      ["r1", instance("r1")],
      ["r2", instance("r2")],
      ["r6", instance("r6", { state: "TERMINATED" })],
      ["r7", instance("r7", { state: "TERMINATED" })],
    ]);
    const slurm = view({ listed: new Set(["r5", "r7"]), busy: new Set(["r7"]) });
    // Act
    const actions = goneActions(unlisted, described, slurm, NOW, LIMITS);
    // Assess
    expect(kinds(actions)).toEqual(["r1 clear-mark", "r3 mark", "r5 forget", "r6 forget", "r7 busy"]);
    expect(actions[2]).toMatchObject({
      deleteFromSlurm: true,
      reason: "instance not found by two listings and describes: record removed",
    });
    expect(actions[3]).toMatchObject({
      deleteFromSlurm: false,
      reason: "the cloud reports the instance terminated: record removed",
    });
  });

  it("without Slurm's view a gone node is deleted from Slurm too (nobody can say it is not there)", () => {
    // Act
    const actions = goneActions(
      [record("r6")],
      new Map([["r6", instance("r6", { state: "TERMINATED" })]]),
      undefined,
      NOW,
      LIMITS,
    );
    // Assess
    expect(actions).toMatchObject([{ kind: "forget", deleteFromSlurm: true }]);
  });
});

describe("reconcile decision: releases", () => {
  it("terminates again a live TERMINATING instance past releaseRetryMs; drains it first when it runs a job", () => {
    // Prepare
    const records = [
      record("t1", { status: "TERMINATING", updatedAt: NOW - 60 * S }),
      record("t2", { status: "TERMINATING", updatedAt: NOW - 59 * S }),
      record("t3", { status: "TERMINATING", updatedAt: NOW - 600 * S }),
      record("t4", { status: "TERMINATING", updatedAt: NOW - 600 * S }),
      record("t5", { status: "TERMINATING", updatedAt: NOW - 600 * S }),
      record("j1", { updatedAt: NOW - 600 * S }),
    ];
    const instances = [
      instance("t1"),
      instance("t2"),
      instance("t3", { state: "TERMINATING" }),
      instance("t5"),
      instance("j1"),
    ];
    // Act
    const actions = releaseActions(records, instances, view({ busy: new Set(["t5"]) }), NOW, LIMITS);
    // Assess: t2 too recent, t3 on its way out, t4 not listed, j1 not being released.
    expect(kinds(actions)).toEqual(["t1 terminate", "t5 drain"]);
  });

  it("a released node Slurm lists healthy and not drained by NowScale is drained, not terminated, on one report", () => {
    // Prepare: three nodes whose retirement was decided before they joined Slurm
    const old = { status: "TERMINATING" as const, updatedAt: NOW - 600 * S };
    const records = [record("idle", old), record("drained", old), record("down", old)];
    const instances = [instance("idle"), instance("drained"), instance("down")];
    const slurm = view({
      listed: new Set(["idle", "drained", "down"]),
      drained: new Set(["drained"]),
      unhealthy: new Set(["down"]),
    });
    // Act
    const actions = releaseActions(records, instances, slurm, NOW, LIMITS);
    // Assess: idle may take a job any moment; drained and DOWN take none
    expect(kinds(actions)).toEqual(["idle drain", "drained terminate", "down terminate"]);
  });

  it("without Slurm's view nothing is released again (the node may have taken a job)", () => {
    // Act
    const actions = releaseActions(
      [record("t1", { status: "TERMINATING", updatedAt: NOW - 600 * S })],
      [instance("t1")],
      undefined,
      NOW,
      LIMITS,
    );
    // Assess
    expect(actions).toEqual([]);
  });
});

describe("reconcile decision: boot timeouts", () => {
  it("joins what Slurm lists; marks, then terminates, what stays absent past its limit", () => {
    // Prepare: launched nodes wait bootTimeout (900 s), adopted ones the orphan grace (300 s).
    const records = [
      record("l0", { status: "LAUNCHING", launchedAt: NOW - 10 * S }),
      record("l1", { status: "LAUNCHING", launchedAt: NOW - 899 * S, absentSince: NOW - 60 * S }),
      record("l2", { status: "LAUNCHING", launchedAt: NOW - 900 * S }),
      record("l3", { status: "LAUNCHING", launchedAt: NOW - 900 * S, absentSince: NOW - 60 * S }),
      record("o1", { status: "LAUNCHING", origin: "adopted", launchedAt: NOW - 299 * S, absentSince: NOW }),
      record("o2", { status: "LAUNCHING", origin: "adopted", launchedAt: NOW - 300 * S, absentSince: NOW }),
      record("j1"),
    ];
    // Act
    const actions = bootActions(records, view({ listed: new Set(["l0"]) }), NOW, LIMITS);
    // Assess: j1 is joined already, and absent from Slurm: not this step's business.
    expect(kinds(actions)).toEqual(["l0 joined", "l2 mark", "l3 boot-timeout", "o2 orphan"]);
    expect(actions[2]).toMatchObject({ reason: "did not join Slurm within 900 s" });
    expect(actions[3]).toMatchObject({
      reason: "untracked instance never joined Slurm within 300 s: terminated",
    });
  });
});

describe("reconcile decision: unhealthy nodes", () => {
  it("marks a node DOWN or lost, retires it past downGraceMs, and never one that runs a job", () => {
    // Prepare
    const records = [
      record("h1"), // healthy, no mark: nothing
      record("h2", { downSince: NOW - 10 * S }), // healthy again: clear
      record("b1", { downSince: NOW - 900 * S }), // DOWN but busy: clear
      record("d1"), // DOWN, first report: mark
      record("d2", { downSince: NOW - 299 * S }), // DOWN, inside the grace
      record("d3", { downSince: NOW - 400 * S }), // DOWN past the grace: retire
      record("g1", { status: "DRAINING", downSince: NOW - 300 * S }), // lost by Slurm at the limit: retire
      record("x1", { status: "LAUNCHING" }), // not joined: the boot step's
    ];
    const slurm = view({
      listed: new Set(["h1", "h2", "b1", "d1", "d2", "d3"]),
      unhealthy: new Set(["b1", "d1", "d2", "d3"]),
      busy: new Set(["b1"]),
      states: new Map([["d3", "DOWN*"]]),
    });
    // Act
    const actions = healthActions(records, slurm, NOW, LIMITS);
    // Assess
    expect(kinds(actions)).toEqual(["h2 clear-mark", "b1 clear-mark", "d1 mark", "d3 retire", "g1 retire"]);
    expect(actions[3]).toMatchObject({
      inSlurm: true,
      reason: "DOWN* for 400 s and running no job: terminated, its demand goes elsewhere",
    });
    expect(actions[4]).toMatchObject({
      inSlurm: false,
      reason: "not in Slurm for 300 s and running no job: terminated, its demand goes elsewhere",
    });
  });
});

describe("reconcile decision: stale intents", () => {
  it("closes intents older than intentStaleMs: LAUNCHED with their recorded instances, else FAILED", () => {
    // Prepare
    const intents = [
      intent("a", { intendedAt: NOW - 300 * S }),
      intent("b", { intendedAt: NOW - 299 * S }),
      intent("c", { intendedAt: NOW - 900 * S }),
      intent("d", { intendedAt: NOW - 900 * S }),
    ];
    const records = [record("i-1", { round: "a", zone: "z2" }), record("i-2", { round: "other" })];
    // Act
    const closures = intentClosures(intents, records, new Set(["c"]), NOW, LIMITS);
    // Assess: b is too recent, c had instances adopted this run.
    expect(closures).toEqual([
      {
        round: "a",
        outcome: {
          instances: [{ id: "i-1", instanceType: "c4m8", zone: "z2", chargeType: "ON_DEMAND" }],
          failures: [],
          at: NOW,
        },
      },
      {
        round: "d",
        outcome: {
          instances: [],
          failures: [
            { index: -1, kind: "Abandoned", message: "no outcome was recorded; closed by the reconciler" },
          ],
          at: NOW,
        },
      },
    ]);
  });
});
