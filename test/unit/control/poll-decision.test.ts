import { describe, expect, it } from "vitest";
import {
  decidePoll,
  idleOnOurClock,
  joinedSinceLastPoll,
  plannerState,
} from "../../../lib/control/poll-decision.js";
import type { LaunchIntent, NodeRecord, QueueHealth } from "../../../lib/ports/state-store.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "../core/builders.js";

// The scale cycle's pure decision for one poll (lib/control/poll-decision.ts): expected values are worked
// out from the rules (a LAUNCHING node covers demand within bootTimeout, 900 s by default; protected mode
// holds back the failed offerings), not read from the output.

const NOW = T0 + minutes(10);

function record(name: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    clusterId: "c1",
    nodeName: name,
    instanceId: name,
    queue: "compute",
    instanceType: "c4m8",
    zone: "z1",
    chargeType: "ON_DEMAND",
    status: "LAUNCHING",
    launchedAt: NOW - minutes(1),
    updatedAt: NOW - minutes(1),
    ...overrides,
  };
}

function intent(round: string, count: number, overrides: Partial<LaunchIntent> = {}): LaunchIntent {
  return {
    clusterId: "c1",
    round,
    queue: "compute",
    count,
    allOrNothing: false,
    candidates: [{ instanceType: "c4m8", zone: "z1", chargeType: "ON_DEMAND" }],
    tokens: ["t"],
    jobs: [],
    intendedAt: NOW - minutes(2),
    status: "INTENDED",
    instanceIds: [],
    failures: [],
    ...overrides,
  };
}

function health(overrides: Partial<QueueHealth>): Record<string, QueueHealth> {
  return {
    compute: {
      queue: "compute",
      consecutiveBootstrapFailures: 3,
      protected: true,
      updatedAt: 0,
      ...overrides,
    },
  };
}

/** One pending 4-vCPU / 4 GiB job: one c4m8 node (4 vCPUs, 8 GiB) fits it whole. */
const oneJob = () => state([job({ id: "1" })]);

function observations(overrides: Partial<Parameters<typeof decidePoll>[0]> = {}) {
  return {
    cluster: { queueHealth: {} },
    config: config(),
    seen: oneJob(),
    records: [],
    intents: [],
    unavailable: [],
    now: NOW,
    round: "r",
    ...overrides,
  };
}

describe("poll decision: the planner's state", () => {
  it("a node Slurm lists takes its launch time from NowScale's record only when the report has none", () => {
    // Prepare: i-1 reported without a launch time, i-5 with one; both recorded.
    const seen = state([], [node("i-1"), node("i-5", { launchedAt: iso(T0) })]);
    const records = [
      record("i-1", { status: "JOINED", launchedAt: T0 + minutes(1) }),
      record("i-5", { status: "JOINED", launchedAt: T0 + minutes(2) }),
    ];
    // Act
    const nodes = plannerState(seen, records, [], []).nodes;
    // Assess
    expect(nodes.map((n) => [n.name, n.launchedAt])).toEqual([
      ["i-1", T0 + minutes(1)],
      ["i-5", T0],
    ]);
  });

  it("adds booting records and the part of each intent no record holds yet, as LAUNCHING", () => {
    // Prepare: round x intends 3 and has recorded 1 (i-4); round z intends 2 and recorded both
    // (i-6 joined Slurm, i-7 still booting); round y has no candidate; i-3 joined and left Slurm.
    const seen = state([], [node("i-6")]);
    const records = [
      record("i-2"),
      record("i-3", { status: "JOINED" }),
      record("i-4", { round: "x" }),
      record("i-6", { round: "z", status: "JOINED" }),
      record("i-7", { round: "z" }),
    ];
    const intents = [intent("x", 3), intent("y", 1, { candidates: [] }), intent("z", 2)];
    // Act
    const nodes = plannerState(seen, records, intents, []).nodes;
    // Assess: i-6 as Slurm reports it; i-2, i-4, i-7 booting; x's two unrecorded instances; nothing of y, z.
    expect(nodes.map((n) => `${n.name} ${n.state}`)).toEqual([
      "i-6 IDLE",
      "i-2 LAUNCHING",
      "i-4 LAUNCHING",
      "i-7 LAUNCHING",
      "intent-x-1 LAUNCHING",
      "intent-x-2 LAUNCHING",
    ]);
    expect(nodes.find((n) => n.name === "intent-x-1")?.launchedAt).toBe(NOW - minutes(2));
  });

  it("the provider's unavailable offerings reach the planner", () => {
    // Prepare
    const unavailable = [{ instanceType: "c4m8", zone: "z1", until: NOW + minutes(5) }];
    // Act
    const s = plannerState(oneJob(), [], [], unavailable);
    // Assess
    expect(s.unavailableOfferings).toEqual(unavailable);
  });
});

describe("poll decision: launches", () => {
  it("a record still booting covers the pending job: nothing is launched", () => {
    // Act
    const d = decidePoll(observations({ records: [record("i-2")] }));
    // Assess
    expect(d.launches).toEqual([]);
    expect(d.decision.skipped).toContainEqual(
      expect.objectContaining({
        job: "1",
        code: "COVERED_BY_EXISTING_NODES",
        reason: "existing nodes will run it: i-2",
      }),
    );
  });

  it("a joined record that left Slurm covers nothing: one node is launched, in round <poll>-l0-0", () => {
    // Act
    const d = decidePoll(observations({ records: [record("i-3", { status: "JOINED" })] }));
    // Assess
    expect(d.launches).toHaveLength(1);
    expect(d.launches[0]).toMatchObject({
      kind: "launch",
      round: "r-l0-0",
      launch: { queue: "compute", instanceType: "c4m8", zone: "z1", count: 1, jobs: ["1"] },
    });
    expect(d.notServed.size).toBe(0);
  });

  it("each planner launch gets its own round, numbered in the planner's order", () => {
    // Prepare: two queues, one job each.
    const cfg = config({}, [queue({ queueName: "a" }), queue({ queueName: "b" })]);
    const seen = state([job({ id: "1", queue: "a" }), job({ id: "2", queue: "b" })]);
    // Act
    const d = decidePoll(observations({ config: cfg, seen, round: "p7" }));
    // Assess
    expect(d.launches.map((l) => (l.kind === "launch" ? `${l.round} ${l.launch.queue}` : l.kind))).toEqual([
      "p7-l0-0 a",
      "p7-l1-0 b",
    ]);
  });

  it("a protected queue whose only offering failed launches nothing and tells the job why", () => {
    // Act
    const d = decidePoll(
      observations({ cluster: { queueHealth: health({ failedOfferings: ["c4m8@z1"] }) } }),
    );
    // Assess
    expect(d.launches).toEqual([{ kind: "protected", queue: "compute" }]);
    expect(d.notServed.get("1")).toBe(
      "queue compute is in protected mode (its nodes failed to boot): nothing is launched for it until a node joins or an operator clears it",
    );
  });

  it("protected mode recorded before offerings were (no failed offering listed) holds the whole queue", () => {
    // Act
    const d = decidePoll(observations({ cluster: { queueHealth: health({}) } }));
    // Assess
    expect(d.launches).toEqual([{ kind: "protected", queue: "compute" }]);
  });

  it("a protected queue still launches when another of its offerings did not fail, and an unprotected one always", () => {
    // Prepare: the failed offering is in zone z2, the queue launches in z1; a streak below the threshold.
    const other = health({ failedOfferings: ["c4m8@z2"] });
    const streak = health({ protected: false, failedOfferings: ["c4m8@z1"] });
    // Act
    const kinds = [other, streak].map((queueHealth) =>
      decidePoll(observations({ cluster: { queueHealth } })).launches.map((l) => l.kind),
    );
    // Assess
    expect(kinds).toEqual([["launch"], ["launch"]]);
  });

  it("counts as known supply every recorded instance and every intended round", () => {
    // Act
    const d = decidePoll(
      observations({
        records: [record("i-2"), record("i-3", { status: "JOINED" })],
        intents: [intent("x", 1)],
      }),
    );
    // Assess
    expect([...d.known.instances]).toEqual(["i-2", "i-3"]);
    expect([...d.known.rounds]).toEqual(["x"]);
  });
});

describe("poll decision: joins", () => {
  it("only LAUNCHING records that Slurm now lists have joined", () => {
    // Prepare
    const seen = state([], [node("i-1"), node("i-2")]);
    const records = [record("i-1"), record("i-2", { status: "JOINED" }), record("i-3")];
    // Act
    const joined = joinedSinceLastPoll(records, seen);
    // Assess
    expect(joined.map((r) => r.nodeName)).toEqual(["i-1"]);
  });
});

describe("poll decision: idle times on the control plane's clock", () => {
  it("a report generated behind its receipt moves every idleSince forward by as much; one ahead is left", () => {
    // Prepare: i-1 idle since T0 (the master's clock), i-2 busy (no idleSince)
    const seen = state([], [node("i-1"), node("i-2", { state: "ALLOCATED", idleSince: undefined })]);
    // Act: generated at T0 + 1 min on the master's clock, received at T0 + 61 min on ours
    const behind = idleOnOurClock(seen, T0 + minutes(1), T0 + minutes(61));
    const ahead = idleOnOurClock(seen, T0 + minutes(61), T0 + minutes(1));
    // Assess: idle one minute by the master's clock, so since T0 + 60 min on ours
    expect(behind.nodes.map((n) => n.idleSince)).toEqual([T0 + minutes(60), undefined]);
    expect(ahead).toBe(seen);
  });
});
