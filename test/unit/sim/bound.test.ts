import { describe, expect, it } from "vitest";
import { clairvoyantBound, shortestBootSeconds } from "../../../lib/sim/bound.js";
import type { SimJob } from "../../../lib/sim/workload.js";
import { run, testConfig } from "./helpers.js";

/**
 * The clairvoyant zero-wait bound on traces worked out by hand (docs/simulator.md, "The bound").
 * Boot 180 s. testConfig: one queue of 4-vCPU nodes at 0.40 USD/h, so the unit is 4 vCPUs.
 */
const job = (id: number, submitS: number, runS: number, procs: number): SimJob => ({
  id: String(id),
  queue: "q",
  submitMs: submitS * 1000,
  runMs: runS * 1000,
  estimateMs: runS * 1000,
  procs,
  memPerTaskMiB: 1024,
});

const hours = (vcpuSeconds: number) => vcpuSeconds / 3600;

describe("clairvoyant zero-wait bound", () => {
  it("one job: one boot, then its run time, on whole units", () => {
    // Prepare: 3 processors for 600 s from t=0; one level of 4 vCPUs: boot 180 s + 600 s.
    const jobs = [job(1, 0, 600, 3)];

    // Act
    const bound = clairvoyantBound(jobs, testConfig(), 180);

    // Assess: 4 × 780 = 3120 vCPU-s; work 3 × 600; rounding 1 × 600; boot 4 × 180.
    expect(bound.vcpuHours).toBeCloseTo(hours(3120), 9);
    expect(bound.workHours).toBeCloseTo(hours(1800), 9);
    expect(bound.roundingHours).toBeCloseTo(hours(600), 9);
    expect(bound.bootHours).toBeCloseTo(hours(720), 9);
    expect(bound.idleHours).toBe(0);
    expect(bound.cost).toBeCloseTo(hours(3120) * 0.1, 9); // 0.40 USD/h ÷ 4 vCPUs
  });

  it("a gap shorter than a boot is idled through", () => {
    // Prepare: 4 processors 0..600, then 4 processors 700..1000: gap 100 s < 180 s.
    const jobs = [job(1, 0, 600, 4), job(2, 700, 300, 4)];

    // Act
    const bound = clairvoyantBound(jobs, testConfig(), 180);

    // Assess: 4 × (180 + 600 + 100 + 300) = 4720 vCPU-s, one boot, 100 s idle.
    expect(bound.vcpuHours).toBeCloseTo(hours(4720), 9);
    expect(bound.bootHours).toBeCloseTo(hours(720), 9);
    expect(bound.idleHours).toBeCloseTo(hours(400), 9);
  });

  it("a gap longer than a boot is released and booted again", () => {
    // Prepare: 4 processors 0..600, then 4 processors 1000..1300: gap 400 s > 180 s.
    const jobs = [job(1, 0, 600, 4), job(2, 1000, 300, 4)];

    // Act
    const bound = clairvoyantBound(jobs, testConfig(), 180);

    // Assess: 4 × (180 + 600 + 180 + 300) = 5040 vCPU-s: two boots, no idle.
    expect(bound.vcpuHours).toBeCloseTo(hours(5040), 9);
    expect(bound.bootHours).toBeCloseTo(hours(1440), 9);
    expect(bound.idleHours).toBe(0);
  });

  it("a job starting as another ends leaves no gap", () => {
    // Prepare: 4 processors 0..600 and 600..900.
    const jobs = [job(1, 0, 600, 4), job(2, 600, 300, 4)];

    // Act
    const bound = clairvoyantBound(jobs, testConfig(), 180);

    // Assess: one stretch 0..900 and one boot: 4 × 1080.
    expect(bound.vcpuHours).toBeCloseTo(hours(4320), 9);
  });

  it("two sizes: units are the gcd of the vCPU counts, priced at the cheapest vCPU", () => {
    // Prepare: 2-vCPU nodes at 0.20 USD/h (0.10 per vCPU) and 8-vCPU ones at 0.72 (0.09): unit 2.
    //   6 processors 0..1000 and 1 processor 500..800: demand 6, 7, 6 → levels 3, 4, 3.
    //   Levels 1-3: 1000 s each, level 4: 300 s; four boots.
    const config = testConfig({
      cluster: {
        instanceTypes: {
          n2: { vcpus: 2, memoryMiB: 4096, pricePerHour: 0.2 },
          n8: { vcpus: 8, memoryMiB: 16384, pricePerHour: 0.72 },
        },
      },
      queue: {
        expansionNodeConfigs: [
          { zone: "z1", instanceType: "n2" },
          { zone: "z1", instanceType: "n8" },
        ],
      },
    });
    const jobs = [job(1, 0, 1000, 6), job(2, 500, 300, 1)];

    // Act
    const bound = clairvoyantBound(jobs, config, 180);

    // Assess: 2 × 3300 = 6600 vCPU-s of levels + 2 × 4 × 180 = 1440 of boots = 8040.
    expect(bound.workHours).toBeCloseTo(hours(6300), 9);
    expect(bound.roundingHours).toBeCloseTo(hours(300), 9);
    expect(bound.bootHours).toBeCloseTo(hours(1440), 9);
    expect(bound.vcpuHours).toBeCloseTo(hours(8040), 9);
    expect(bound.cost).toBeCloseTo(hours(8040) * 0.09, 9);
  });

  it("takes the shortest boot a spec can draw", () => {
    expect(shortestBootSeconds({ kind: "fixed", seconds: 180 })).toBe(180);
    expect(shortestBootSeconds({ kind: "uniform", minSeconds: 120, maxSeconds: 300 })).toBe(120);
    expect(shortestBootSeconds({ kind: "normal", meanSeconds: 180, sdSeconds: 30 })).toBe(0);
  });
});

describe("policies against the bound", () => {
  it("the one-job replay: ratio, and a breakdown that adds up to the vCPU-hours", () => {
    // Prepare: 4 processors for 600 s at t=0. Bound: 4 × (180 + 600) = 3120 vCPU-s.
    //   thpc (scenarios.test.ts): node 120..1200 = 4 × 1080 vCPU-s: boot 120..300, job 300..900,
    //   idle 900..1200, then drained and terminated in the same poll: no drain tail.
    const jobs = [{ id: 1, submit: 0, run: 600, procs: 4 }];

    // Act
    const { metrics } = run(jobs);

    // Assess
    expect(metrics.vcpuHoursToBound).toBeCloseTo(4320 / 3120, 3);
    expect(metrics.costToBound).toBeCloseTo(4320 / 3120, 3);
    expect(metrics.breakdown).toEqual({
      work: 0.67, // 2400 s
      fragmentation: 0,
      boot: 0.2, // 720
      idleBeforeShrink: 0.33, // 1200
      drainTail: 0,
      neverUsed: 0,
    });
  });

  it("a node no job ever ran on counts whole as never used", () => {
    // Prepare: static:2 from t=0 and one 4-processor job for 600 s: the job takes one node; the
    //   other stands for the same 600 s with nothing to run.
    const jobs = [{ id: 1, submit: 0, run: 600, procs: 4 }];

    // Act
    const { metrics } = run(jobs, { policy: { kind: "static", nodes: 2 } });

    // Assess: 4 × 600 vCPU-s of work and 4 × 600 never used; nothing booted, idled or drained.
    expect(metrics.breakdown).toEqual({
      work: 0.67,
      fragmentation: 0,
      boot: 0,
      idleBeforeShrink: 0,
      drainTail: 0,
      neverUsed: 0.67,
    });
  });
});
