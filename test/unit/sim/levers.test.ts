import { describe, expect, it } from "vitest";
import { place } from "../../../lib/sim/scheduler.js";
import { nodesAt, run, testConfig } from "./helpers.js";

/**
 * The levers only the simulation models (the config's `simulation` section). testConfig: 4-vCPU nodes
 * at 0.40 USD/h, thpc, busy time 120 s, shrinkIdleTime 300 s; polls every 60 s; boot 180 s.
 */
describe("simulation levers", () => {
  it("terminateAtDrain (the default, as deployed): an idle node is drained and terminated in the same poll", () => {
    // Prepare: the one-job case (scenarios.test.ts): drained at 1200; with the lever off the node is
    //   terminated at the next poll (node 120..1260), with it (the default) it is gone at 1200.
    const jobs = [{ id: 1, submit: 0, run: 600, procs: 4 }];

    // Act
    const before = run(jobs, { terminateAtDrain: false });
    const after = run(jobs);

    // Assess: 60 s less of a 4-vCPU node, no drain tail.
    expect(nodesAt(before, 1200)).toBe(1);
    expect(nodesAt(after, 1200)).toBe(0);
    expect(before.metrics.breakdown.drainTail).toBeCloseTo((4 * 60) / 3600, 2);
    expect(after.metrics.breakdown.drainTail).toBe(0);
    expect(after.metrics.vcpuHours).toBeCloseTo(before.metrics.vcpuHours - (4 * 60) / 3600, 2);
  });

  it("wakeSeconds: a job that cannot start wakes the scaler, not waiting for the poll grid", () => {
    // Prepare: busy time 0; a job arriving at 30 s. Polls at 0, 60, ...: launch at 60, ready 240,
    //   wait 210. With a wake 10 s after arrival: launch at 40, ready 220, wait 190.
    const config = testConfig({ cluster: { expansionBusyTime: 0 } });
    const jobs = [{ id: 1, submit: 30, run: 600, procs: 4 }];

    // Act
    const grid = run(jobs, { config });
    const woken = run(jobs, { config, wakeSeconds: 10 });

    // Assess
    expect(grid.metrics.meanWaitS).toBe(210);
    expect(woken.metrics.meanWaitS).toBe(190);
  });

  it("busy-first placement puts a job on a node already running one, not on an idle node", () => {
    // Prepare: slot 0 idle with 4 free CPUs, slot 1 busy with 6 free; a 4-task job.
    const job = { procs: 4, memPerTaskMiB: 0 };

    // Act
    const fewestFree = place(job, [4, 6], [8192, 8192]);
    const busyFirst = place(job, [4, 6], [8192, 8192], undefined, undefined, [false, true]);

    // Assess: fewest free slots picks the idle node; busy-first the busy one.
    expect(fewestFree).toEqual([[0, 4]]);
    expect(busyFirst).toEqual([[1, 4]]);
  });

  it("headroom: the replay reports arrivals, so an idle node stays warm for the next job", () => {
    // Prepare: busy time 0, shrinkIdleTime 60 s. Job 1 (4 CPUs) at 0: launched at poll 0, runs
    //   180..780. Job 2 (4 CPUs) at 2000.
    //   Without headroom: the node drains at 840 and goes at 900; job 2 waits for a launch at poll
    //   2040 and a boot: starts at 2220 (wait 220 s).
    //   headroomSeconds 3600: 4 CPUs arrived in the last 3600 s → 4 vCPUs kept warm: job 2 starts at
    //   once, and the node stays until its arrival leaves the window (3600 s after 2000).
    const jobs = [
      { id: 1, submit: 0, run: 600, procs: 4 },
      { id: 2, submit: 2000, run: 100, procs: 4 },
    ];
    const cluster = { expansionBusyTime: 0, shrinkIdleTime: 60 };

    // Act
    const cold = run(jobs, { config: testConfig({ cluster }) });
    const warm = run(jobs, { config: testConfig({ cluster: { ...cluster, headroomSeconds: 3600 } }) });

    // Assess
    expect(cold.metrics.maxWaitS).toBe(220);
    expect(nodesAt(cold, 1000)).toBe(0);
    expect(warm.metrics.maxWaitS).toBe(180); // job 1's boot; job 2 waits 0
    expect(warm.metrics.launches).toBe(1);
    expect(nodesAt(warm, 5000)).toBe(1);
    expect(nodesAt(warm, 5800)).toBe(0);
  });
});
