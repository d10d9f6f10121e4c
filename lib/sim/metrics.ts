import type { ResolvedConfig } from "../core/config.js";
import type { BoundParts } from "./bound.js";
import type { SimCluster } from "./cluster.js";
import type { ReplaySpan } from "./engine.js";
import type { SimJob } from "./workload.js";

/**
 * What one policy's replay achieved; times in seconds, sizes in hours. Waits are over every job: a job
 * that never started counts with the wait it had reached when the replay ended, so the figures are
 * lower bounds whenever `neverStartedJobs` > 0 (and the table prints them as "≥").
 */
export interface PolicyMetrics {
  jobs: number;
  completedJobs: number;
  /** Jobs still pending when the replay ended (nothing could run them). */
  neverStartedJobs: number;
  meanWaitS: number;
  p50WaitS: number;
  p95WaitS: number;
  maxWaitS: number;
  /** Mean of max(1, (wait + run) / max(run, 10 s)). */
  meanBoundedSlowdown: number;
  /** Instance hours from launch (boot included) to termination. */
  nodeHours: number;
  /** USD at the catalog's on-demand prices; null when a launched type has no price. */
  cost: number | null;
  /** CPU-seconds the jobs used ÷ vCPU-seconds of all instances, 0..1. */
  cpuUtilization: number;
  /** Instances launched. */
  launches: number;
  peakNodes: number;
  /** Polls that launched at least one instance. */
  scaleOutRounds: number;
  /** Σ processors × run time ÷ the largest type's vCPUs: no policy can use fewer node-hours. */
  lowerBoundNodeHours: number;
  /** Beyond the list: launches that moved to a later candidate because a (type, zone) was full. */
  fallbacks: number;
  /** Nodes asked for that no candidate had capacity for (retried by later polls). */
  unlaunchedNodes: number;
  /** First arrival to the end of the replay (last job end, or last shrink). */
  simulatedHours: number;
  /** vCPU-hours of all instances, launch to termination (equal to cost when prices are linear in vCPUs). */
  vcpuHours: number;
  /** vCPU-hours ÷ the clairvoyant zero-wait bound's (docs/simulator.md, "The bound"). */
  vcpuHoursToBound: number;
  /** Cost ÷ the bound's cost; null when a type has no price. */
  costToBound: number | null;
  /**
   * Where the vCPU-hours went: the jobs' CPU-hours, then what ran no task (see ClusterCounters).
   * The parts add up to vcpuHours.
   */
  breakdown: {
    work: number;
    fragmentation: number;
    boot: number;
    idleBeforeShrink: number;
    drainTail: number;
    neverUsed: number;
  };
}

/** Bounded slowdown's threshold: jobs shorter than this count as this long. */
export const SLOWDOWN_BOUND_S = 10;

const round = (x: number, digits = 3) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The p-th percentile (nearest rank) of ascending values; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

/**
 * Waits (s) of every job, ascending: start − submit, or for a job that never started, the replay's end
 * − submit (a lower bound, so a job that waits for ever is never left out of the figures).
 */
export function sortedWaits(cluster: SimCluster, endMs: number): Float64Array {
  const waits = new Float64Array(cluster.jobs.length);
  cluster.jobs.forEach((job, i) => {
    const start = cluster.startMs[i] as number;
    waits[i] = Math.max(0, (Number.isNaN(start) ? endMs : start) - job.submitMs) / 1000;
  });
  return waits.sort();
}

/** Σ processors × run time ÷ the largest vCPU count of the job's queue, in hours. */
export function lowerBoundNodeHours(jobs: readonly SimJob[], config: ResolvedConfig): number {
  const largest = new Map(
    config.queues.map((q) => [q.queueName, Math.max(...q.groups.map((g) => g.shape.vcpus))]),
  );
  let hours = 0;
  for (const job of jobs) hours += (job.procs * job.runMs) / 1000 / 3600 / (largest.get(job.queue) ?? 1);
  return hours;
}

export function computeMetrics(
  cluster: SimCluster,
  span: ReplaySpan,
  waits: Float64Array,
  bound: BoundParts,
): PolicyMetrics {
  const c = cluster.counters;
  let slowdown = 0;
  let usedCpuSeconds = 0;
  cluster.jobs.forEach((job, i) => {
    const end = cluster.endMs[i] as number;
    if (Number.isNaN(end)) return;
    const runS = job.runMs / 1000;
    const waitS = ((cluster.startMs[i] as number) - job.submitMs) / 1000;
    slowdown += Math.max(1, (waitS + runS) / Math.max(runS, SLOWDOWN_BOUND_S));
    usedCpuSeconds += job.procs * runS;
  });
  let completed = 0;
  let neverStarted = 0;
  for (let i = 0; i < cluster.jobs.length; i++) {
    if (!Number.isNaN(cluster.endMs[i] as number)) completed++;
    if (Number.isNaN(cluster.startMs[i] as number)) neverStarted++;
  }
  let waitSum = 0;
  for (const w of waits) waitSum += w;
  return {
    jobs: cluster.jobs.length,
    completedJobs: completed,
    neverStartedJobs: neverStarted,
    meanWaitS: round(waits.length ? waitSum / waits.length : 0, 1),
    p50WaitS: round(percentile(waits, 50), 1),
    p95WaitS: round(percentile(waits, 95), 1),
    maxWaitS: round(waits.length ? (waits[waits.length - 1] as number) : 0, 1),
    meanBoundedSlowdown: round(completed ? slowdown / completed : 0),
    nodeHours: round(c.nodeSeconds / 3600, 2),
    cost: c.unpricedNodes > 0 ? null : round(c.costUSD, 2),
    cpuUtilization: round(c.vcpuSeconds > 0 ? usedCpuSeconds / c.vcpuSeconds : 0, 4),
    launches: c.launches,
    peakNodes: c.peakNodes,
    scaleOutRounds: c.scaleOutRounds,
    lowerBoundNodeHours: round(lowerBoundNodeHours(cluster.jobs, cluster.config), 2),
    fallbacks: c.fallbacks,
    unlaunchedNodes: c.unlaunchedNodes,
    simulatedHours: round((span.endMs - span.startMs) / 3600 / 1000, 2),
    vcpuHours: round(c.vcpuSeconds / 3600, 2),
    vcpuHoursToBound: round(bound.vcpuHours > 0 ? c.vcpuSeconds / 3600 / bound.vcpuHours : 0, 4),
    costToBound:
      c.unpricedNodes > 0 || bound.cost === null || bound.cost <= 0 ? null : round(c.costUSD / bound.cost, 4),
    breakdown: {
      work: round(usedCpuSeconds / 3600, 2),
      fragmentation: round(c.fragVcpuSeconds / 3600, 2),
      boot: round(c.bootVcpuSeconds / 3600, 2),
      idleBeforeShrink: round(c.idleVcpuSeconds / 3600, 2),
      drainTail: round(c.drainVcpuSeconds / 3600, 2),
      neverUsed: round(c.neverUsedVcpuSeconds / 3600, 2),
    },
  };
}
