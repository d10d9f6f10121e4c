import { describe, expect, it } from "vitest";
import { type Decision, parseState, plan } from "../../../lib/core/index.js";
import { arrivalsFor } from "../../../lib/core/plan.js";
import { config, iso, job, minutes, node, queue, state, T0 } from "./builders.js";

/**
 * Which pending job comes first (THPC_AS serves the queue oldest first: docs/plan.md step 2), and the
 * caps on the launched warm headroom, each expected value worked out by hand. The builders' queue has
 * 4-vCPU nodes (c4m8) and each builder job asks for one node of 4 CPUs, so one job is one new node;
 * with `maxNodesPerCycle` N, exactly the first N jobs in FIFO order launch.
 */
const NOW = T0 + minutes(30);
const at = (s: number) => iso(T0 + s * 1000);
const launchedJobs = (d: Decision) => d.launches.flatMap((l) => l.jobs);

describe("oldest first: submit time, then job id", () => {
  it("serves the oldest job first whatever the state's order, and equal times by id", () => {
    // Prepare: d is oldest (50 s); a and b share 100 s, a first by id; c is newest. Two per cycle.
    const input = state([
      job({ id: "c", submittedAt: at(200) }),
      job({ id: "b", submittedAt: at(100) }),
      job({ id: "a", submittedAt: at(100) }),
      job({ id: "d", submittedAt: at(50) }),
    ]);

    // Act
    const decision = plan(config({}, [queue({ maxNodesPerCycle: 2 })]), input, NOW);

    // Assess: d then a launch; b and c wait for the next cycle.
    expect(launchedJobs(decision)).toEqual(["d", "a"]);
  });

  it("orders a run of three equal submit times by id", () => {
    // Prepare: three jobs at the same instant, given in reverse id order; one node per cycle.
    const input = state([
      job({ id: "j3", submittedAt: at(100) }),
      job({ id: "j2", submittedAt: at(100) }),
      job({ id: "j1", submittedAt: at(100) }),
    ]);

    // Act
    const one = plan(config({}, [queue({ maxNodesPerCycle: 1 })]), input, NOW);
    const two = plan(config({}, [queue({ maxNodesPerCycle: 2 })]), input, NOW);

    // Assess
    expect(launchedJobs(one)).toEqual(["j1"]);
    expect(launchedJobs(two)).toEqual(["j1", "j2"]);
  });

  it("orders jobs submitted months apart exactly (beyond the fast path's exact keys)", () => {
    // Prepare: a job 200 days older than the others, listed last: the oldest still comes first, and no
    //   job is lost or doubled (a key past 2^53 would round to another job's index).
    const old = T0 - 200 * 24 * 3_600_000;
    const input = state([
      job({ id: "x", submittedAt: at(100) }),
      job({ id: "w", submittedAt: at(100) }),
      job({ id: "old", submittedAt: iso(old) }),
    ]);

    // Act
    const decision = plan(config({}, [queue({ maxNodesPerCycle: 2 })]), input, NOW);

    // Assess
    expect(launchedJobs(decision)).toEqual(["old", "w"]);
  });
});

describe("launched headroom: what this cycle already launched counts against the caps", () => {
  // 60 CPUs of single-node jobs in the last hour, headroomSeconds 600: 60 / 3600 × 600 = 10 vCPUs,
  // three 4-vCPU nodes when nothing is spare.
  const arrivals = [{ queue: "compute", windowS: 3600, cpus: 60 }];
  const levers = { headroomSeconds: 600, headroomLaunch: true };
  const headroom = (d: Decision) =>
    d.launches.filter((l) => l.jobs.length === 0).reduce((n, l) => n + l.count, 0);

  it("under maxSize: the nodes there and the one launched for a job leave room for two", () => {
    // Prepare: one busy node and a pending job that launches one node: 4 − 1 − 1 = 2 for the headroom.
    const input = parseState({
      jobs: [
        job({ id: "r", state: "RUNNING", nodeNames: ["busy"] }),
        job({ id: "p", submittedAt: iso(NOW - minutes(1)) }),
      ],
      nodes: [node("busy", { state: "ALLOCATED" })],
      arrivals,
    });

    // Act
    const decision = plan(config(levers, [queue({ maxSize: 4 })]), input, NOW);

    // Assess: p's node, then two of the three headroom nodes wanted.
    expect(launchedJobs(decision)).toEqual(["p"]);
    expect(headroom(decision)).toBe(2);
  });

  it("under maxNodesPerCycle: the nodes still booting and the one launched for a job count", () => {
    // Prepare: a booting node a pending job (p1) will use, and p2 that launches one: 3 − 1 − 1 = 1.
    const input = parseState({
      jobs: [
        job({ id: "r", state: "RUNNING", nodeNames: ["busy"] }),
        job({ id: "p1", submittedAt: iso(NOW - minutes(2)) }),
        job({ id: "p2", submittedAt: iso(NOW - minutes(1)) }),
      ],
      nodes: [
        node("busy", { state: "ALLOCATED" }),
        node("boot", { state: "LAUNCHING", idleSince: undefined, launchedAt: iso(NOW - minutes(1)) }),
      ],
      arrivals,
    });

    // Act
    const decision = plan(config(levers, [queue({ maxNodesPerCycle: 3 })]), input, NOW);

    // Assess
    expect(launchedJobs(decision)).toEqual(["p2"]);
    expect(headroom(decision)).toBe(1);
  });
});

describe("arrivalsFor: the reported window nearest headroomWindow", () => {
  const a = (windowS: number, cpus: number) => ({ queue: "compute", windowS, cpus });

  it("takes the shortest of the longer windows when none is shorter", () => {
    expect(arrivalsFor([a(14_400, 1), a(7_200, 2)], "compute", 3_600)).toEqual(a(7_200, 2));
    expect(arrivalsFor([a(7_200, 2), a(14_400, 1)], "compute", 3_600)).toEqual(a(7_200, 2));
  });

  it("takes the first listed of two equal windows, and nothing for another queue", () => {
    expect(arrivalsFor([a(3_600, 1), a(3_600, 2)], "compute", 3_600)).toEqual(a(3_600, 1));
    expect(arrivalsFor([a(3_600, 1)], "gpu", 3_600)).toBeUndefined();
  });
});
