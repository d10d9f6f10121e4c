import { describe, expect, it } from "vitest";
import { nodesAt, run, testConfig } from "./helpers.js";

/**
 * Small traces whose answers are worked out by hand. Unless a test says otherwise: one queue of
 * 4-vCPU nodes at 0.40 USD/h, thpc, expansionBusyTime 120 s, shrinkIdleTime 300 s, polls every 60 s
 * (at 0, 60, 120, ... s), boot 180 s. A 4-processor job fills one node.
 */
describe("simulator on hand-made traces", () => {
  it("one job: waits busy time + boot, and its node shrinks after the idle time", () => {
    // Prepare: one 4-processor job at t=0 that runs 600 s.
    //   polls 0 and 60: waited < 120 s, nothing; poll 120: launch 1 node, ready at 300;
    //   job runs 300..900 (wait 300 s); idle from 900; poll 1200 (idle 300 s): drained and, holding no
    //   job, terminated in that poll (terminateAtDrain, as the control plane does).
    //   node lives 120..1200 = 1080 s = 0.3 h → cost 0.4 × 0.3 = 0.12 USD.
    const jobs = [{ id: 1, submit: 0, run: 600, procs: 4 }];

    // Act
    const { metrics } = run(jobs);

    // Assess
    expect(metrics).toMatchObject({
      jobs: 1,
      completedJobs: 1,
      meanWaitS: 300,
      p50WaitS: 300,
      p95WaitS: 300,
      maxWaitS: 300,
      meanBoundedSlowdown: 1.5, // (300 + 600) / 600
      nodeHours: 0.3,
      cost: 0.12,
      cpuUtilization: 0.5556, // 4 × 600 / (4 × 1080)
      launches: 1,
      peakNodes: 1,
      scaleOutRounds: 1,
      lowerBoundNodeHours: 0.17, // 4 × 600 / 4 / 3600
      simulatedHours: 0.33, // 0 .. 1200 s
    });
  });

  it("back-to-back jobs: the second reuses the idle node at once", () => {
    // Prepare: job 1 as above (node up 300, job 300..900); job 2 arrives at 1000 while the node is
    //   idle (idle 100 s < 300 s): it starts at 1000 (wait 0), ends 1300. Idle from 1300; poll 1620
    //   (idle 320 s): drained and terminated. Node lives 120..1620 = 1500 s = 0.4167 h → 0.1667 USD.
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 4 },
      { id: 2, submit: 1000, run: 300, procs: 4 },
    ];

    // Act
    const { metrics } = run(jobs);

    // Assess
    expect(metrics).toMatchObject({
      completedJobs: 2,
      meanWaitS: 150, // (300 + 0) / 2
      p50WaitS: 0, // nearest rank: 1st of [0, 300]
      p95WaitS: 300,
      meanBoundedSlowdown: 1.25, // (1.5 + 1) / 2
      nodeHours: 0.42,
      cost: 0.17,
      cpuUtilization: 0.6, // (2400 + 1200) / (4 × 1500)
      launches: 1,
      scaleOutRounds: 1,
    });
  });

  it("a burst needing several scale-out rounds with scaleOutRatio 50", () => {
    // Prepare: 8 one-node jobs at t=0, 3600 s each. Need 8 nodes; booting nodes count as covering.
    //   poll 120: need 8 → launch ceil(8 × 0.5) = 4 (ready 300)
    //   poll 180: 4 booting cover jobs 1-4, need 4 → launch 2 (ready 360)
    //   poll 240: 6 booting, need 2 → launch 1 (ready 420)
    //   t=300: 4 nodes ready, jobs 1-4 start (wait 300); poll 300: 3 booting cover 5-7, need 1 → launch 1 (ready 480)
    //   t=360: jobs 5, 6 start; t=420: job 7; t=480: job 8.
    //   waits 4×300, 2×360, 420, 480 → mean 2820 / 8 = 352.5; p50 = 4th = 300; p95 = 8th = 480.
    const jobs = Array.from({ length: 8 }, (_, i) => ({ id: i + 1, submit: 0, run: 3600, procs: 4 }));
    const config = testConfig({ queue: { scaleOutRatio: 50 } });

    // Act
    const { metrics } = run(jobs, { config });

    // Assess
    expect(metrics).toMatchObject({
      completedJobs: 8,
      scaleOutRounds: 4,
      launches: 8,
      peakNodes: 8,
      meanWaitS: 352.5,
      p50WaitS: 300,
      p95WaitS: 480,
      maxWaitS: 480,
    });
  });

  it("an idle gap shrinks the cluster to zero, and the next job launches again", () => {
    // Prepare: job 1 at 0 (600 s) as in the one-job case: node 120..1200, then zero nodes.
    //   Job 2 at 3600 (600 s): polls 3600, 3660 wait; 3720 launches (ready 3900); runs 3900..4500;
    //   drained and terminated at 4800. Two lifetimes of 1080 s = 0.6 h → 0.24 USD.
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 4 },
      { id: 2, submit: 3600, run: 600, procs: 4 },
    ];

    // Act
    const result = run(jobs);

    // Assess
    expect(nodesAt(result, 1199)).toBe(1);
    expect(nodesAt(result, 1200)).toBe(0);
    expect(nodesAt(result, 3719)).toBe(0);
    expect(nodesAt(result, 3720)).toBe(1);
    expect(nodesAt(result, 4800)).toBe(0);
    expect(result.metrics).toMatchObject({
      completedJobs: 2,
      meanWaitS: 300,
      nodeHours: 0.6,
      cost: 0.24,
      launches: 2,
      scaleOutRounds: 2,
      peakNodes: 1,
      simulatedHours: 1.33, // 0 .. 4800 s
    });
  });
  it("a job that can never run ends the replay after the stall limit instead of polling for ever", () => {
    // Prepare: maxSize 2; job 1 needs 4 nodes (16 processors): never launched (larger than maxSize).
    //   Job 2 (4 procs, 600 s) runs 300..900 as in the one-job case; its node goes at 1200.
    //   Nothing runs or boots from 900; the stall limit is 300 + 120 s + 10 polls = 1020 s, so the
    //   first poll after 1920 (1980) ends the replay.
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 16 },
      { id: 2, submit: 0, run: 600, procs: 4 },
    ];
    const config = testConfig({ queue: { maxSize: 2 } });

    // Act
    const { metrics } = run(jobs, { config });

    // Assess: job 1's wait is counted up to the replay's end (1980 s), not left out (issue 12, class 9).
    expect(metrics).toMatchObject({
      jobs: 2,
      completedJobs: 1,
      neverStartedJobs: 1,
      meanWaitS: 1140, // (300 + ≥1980) / 2
      maxWaitS: 1980,
      nodeHours: 0.3,
      simulatedHours: 0.55,
    });
  });
});

describe("EASY backfill on a static cluster", () => {
  it("backfills short jobs into the head job's shadow but never delays it", () => {
    // Prepare: static:2 → 8 CPUs up from t=0. Estimates = run times (field 9 unknown).
    //   J1 (4 CPUs, 1000 s) starts at 0 on node 1.
    //   J2 (8 CPUs) at 10 cannot fit: reservation at 1000, when J1 ends; nothing spare then.
    //   J3 (2 CPUs, 500 s) at 20 ends at 520 ≤ 1000: backfilled at once.
    //   J4 (2 CPUs, 2000 s) at 30 would still run at 1000: it waits (it would delay J2).
    //   J5 (2 CPUs, 400 s) at 40 ends at 440 ≤ 1000: backfilled at once.
    //   At 1000 J2 starts (wait 990), ends 1100; J4 starts 1100 (wait 1070).
    const jobs = [
      { id: 1, submit: 0, run: 1000, procs: 4 },
      { id: 2, submit: 10, run: 100, procs: 8 },
      { id: 3, submit: 20, run: 500, procs: 2 },
      { id: 4, submit: 30, run: 2000, procs: 2 },
      { id: 5, submit: 40, run: 400, procs: 2 },
    ];

    // Act
    const result = run(jobs, { policy: { kind: "static", nodes: 2 } });

    // Assess: waits ascending are J1, J3, J5 (0), J2 (990), J4 (1070).
    expect([...result.waits]).toEqual([0, 0, 0, 990, 1070]);
    expect(result.metrics).toMatchObject({
      completedJobs: 5,
      meanWaitS: 412, // 2060 / 5
      launches: 2,
      peakNodes: 2,
      scaleOutRounds: 0,
      nodeHours: 1.72, // 2 nodes × 0..3100 s
      simulatedHours: 0.86,
    });
  });

  it("uses the requested time (field 9) as the walltime estimate", () => {
    // Prepare: as above, but J4 asks for 900 s (runs 2000 s): 30 + 900 = 930 ≤ 1000, so EASY
    //   backfills it at 30 on node 2 (with J3). J2 then cannot start at 1000 (J4 still runs) and
    //   waits for J4's end at 2030 (wait 2020): a wrong estimate delays the head job, as in Slurm.
    const jobs = [
      { id: 1, submit: 0, run: 1000, procs: 4 },
      { id: 2, submit: 10, run: 100, procs: 8 },
      { id: 3, submit: 20, run: 500, procs: 2 },
      { id: 4, submit: 30, run: 2000, procs: 2, requested: 900 },
    ];

    // Act
    const result = run(jobs, { policy: { kind: "static", nodes: 2 } });

    // Assess
    expect([...result.waits]).toEqual([0, 0, 0, 2020]);
  });

  it("a job larger than the static cluster never runs and is not counted as completed", () => {
    // Prepare: static:1 has 4 CPUs; a 16-processor job can never start; a 4-processor one can.
    const jobs = [
      { id: 1, submit: 0, run: 100, procs: 16 },
      { id: 2, submit: 5, run: 100, procs: 4 },
    ];

    // Act
    const { metrics } = run(jobs, { policy: { kind: "static", nodes: 1 } });

    // Assess: job 2 is backfilled (the head can never fit, so there is no reservation to protect); job 1
    //   waits until the replay ends at 105 s (job 2's end), and that wait is in the figures.
    expect(metrics).toMatchObject({
      jobs: 2,
      completedJobs: 1,
      neverStartedJobs: 1,
      meanWaitS: 52.5,
      maxWaitS: 105,
    });
  });
});

describe("baselines and provider", () => {
  it("per-job launches a node set per job at its first poll and terminates it when the job ends", () => {
    // Prepare: a 6-processor job at 0 needs 2 four-vCPU nodes; per-job ignores expansionBusyTime.
    //   poll 0: launch 2 (ready 180); job runs 180..780; both nodes terminated at 780.
    //   A second job at 1000 (4 procs, 100 s) gets its own node: poll 1020, ready 1200, ends 1300.
    //   node-seconds: 2 × 780 + 280 = 1840 → 0.51 h.
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 6 },
      { id: 2, submit: 1000, run: 100, procs: 4 },
    ];

    // Act
    const result = run(jobs, { policy: { kind: "per-job" } });

    // Assess
    expect([...result.waits]).toEqual([180, 200]);
    expect(nodesAt(result, 779)).toBe(2);
    expect(nodesAt(result, 780)).toBe(0);
    expect(result.metrics).toMatchObject({ launches: 3, scaleOutRounds: 2, peakNodes: 2, nodeHours: 0.51 });
  });

  it("falls back to the next candidate when a (type, zone) is at its capacity limit", () => {
    // Prepare: n4 in z1 (at most 1 instance) and in z2; two one-node jobs at 0, busy time 0.
    //   poll 0: thpc launches 2 × n4 [z1, z2]: 1 in z1, then the rest moves on to z2 (1 fallback).
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 4 },
      { id: 2, submit: 0, run: 600, procs: 4 },
    ];
    const config = testConfig({ zones: 2, cluster: { expansionBusyTime: 0 } });

    // Act
    const { metrics } = run(jobs, { config, capacity: new Map([["n4@z1", 1]]) });

    // Assess
    expect(metrics).toMatchObject({
      launches: 2,
      fallbacks: 1,
      unlaunchedNodes: 0,
      meanWaitS: 180,
      scaleOutRounds: 1,
    });
  });

  it("packed shares a node between small jobs where thpc gives each its own", () => {
    // Prepare: four 1-processor jobs at 0 (run 600 s). thpc: best fit per job → 4 nodes;
    //   packed: all four tasks on one 4-vCPU node.
    const jobs = Array.from({ length: 4 }, (_, i) => ({ id: i + 1, submit: 0, run: 600, procs: 1 }));

    // Act
    const thpc = run(jobs, { policy: { kind: "thpc" } });
    const packed = run(jobs, { policy: { kind: "packed" } });

    // Assess
    expect(thpc.metrics.launches).toBe(4);
    expect(packed.metrics.launches).toBe(1);
    expect(packed.metrics.meanWaitS).toBe(300);
  });
});

describe("capacity errors on the best-fit shape (issue 12, class 7)", () => {
  /** Queue q lists n4 (best fit for 4 processors) before n8, both in zone z1. */
  const twoShapes = (capacityFallback: "next-shape" | "strict") =>
    testConfig({
      cluster: {
        capacityFallback,
        instanceTypes: {
          n4: { vcpus: 4, memoryMiB: 8192, pricePerHour: 0.4 },
          n8: { vcpus: 8, memoryMiB: 16384, pricePerHour: 0.8 },
        },
      },
      queue: {
        expansionNodeConfigs: [
          { zone: "z1", instanceType: "n4" },
          { zone: "z1", instanceType: "n8" },
        ],
      },
    });
  const jobs = Array.from({ length: 4 }, (_, i) => ({ id: i + 1, submit: 0, run: 600, procs: 4 }));

  it("completes all 4 jobs on the next-best shape once the best one is held unavailable", () => {
    // Prepare: no n4 capacity at all. Poll 120: the launch finds n4 full (held 600 s) and nothing
    //   starts; poll 180: the planner falls back to n8, 4 nodes ready at 360; jobs wait 360 s.
    // Act
    const { metrics } = run(jobs, { config: twoShapes("next-shape"), capacity: new Map([["n4@z1", 0]]) });
    // Assess
    expect(metrics).toMatchObject({ completedJobs: 4, neverStartedJobs: 0, launches: 4, meanWaitS: 360 });
  });

  it('under capacityFallback "strict" (THPC) completes none, and says so instead of a 0 wait', () => {
    // Act
    const { metrics } = run(jobs, { config: twoShapes("strict"), capacity: new Map([["n4@z1", 0]]) });
    // Assess
    expect(metrics.completedJobs).toBe(0);
    expect(metrics.neverStartedJobs).toBe(4);
    expect(metrics.launches).toBe(0);
    expect(metrics.meanWaitS).toBeGreaterThan(1000);
  });
});
