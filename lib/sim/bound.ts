import type { ResolvedConfig } from "../core/config.js";
import type { BootTimeSpec } from "./boot-time.js";
import type { SimJob } from "./workload.js";

/**
 * The clairvoyant zero-wait bound: the fewest vCPU-hours (and the least cost) any schedule that starts
 * every job at its submit time can pay, when an instance is billed from launch and usable only a boot
 * time later. Why it is a lower bound, with a worked example: docs/simulator.md, "The bound".
 *
 * Per queue, capacity comes in units of u vCPUs (the gcd of the queue's vCPU counts: every instance
 * is a whole number of units). Demand D(t) is the CPUs of the jobs running at t when each starts at its
 * submit time; level k (k = 1, 2, ...) is needed while ceil(D(t) / u) >= k. Each level pays one boot
 * when first needed, then its needed time, and across each gap between needed stretches the cheaper
 * of idling through the gap or releasing and booting again: min(gap, boot) (offline ski rental).
 */
export interface BoundParts {
  /** vCPU-hours in all: work + rounding + boot + idle. */
  vcpuHours: number;
  /** CPU-hours the jobs run (Σ processors × run time). */
  workHours: number;
  /** Capacity rounding up to whole units while a level is needed: u·ceil(D/u) − D. */
  roundingHours: number;
  /** Boots: one per level when first needed, and one per gap longer than a boot. */
  bootHours: number;
  /** Gaps shorter than a boot, kept idle. */
  idleHours: number;
  /** vCPU-hours × the cheapest price per vCPU-hour of each queue; null when a type has no price. */
  cost: number | null;
  /** Boot time the bound assumed (the shortest the boot-time spec can draw), seconds. */
  bootSeconds: number;
}

/** The shortest boot a spec can draw: a bound must hold for every draw. */
export function shortestBootSeconds(spec: BootTimeSpec): number {
  if (spec.kind === "fixed") return spec.seconds;
  if (spec.kind === "uniform") return spec.minSeconds;
  // A normal draw is cut at 0: nothing shorter than 0 is certain.
  return 0;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The bound for `jobs` (any order) under `config`'s queues, with boot time `bootSeconds`. */
export function clairvoyantBound(
  jobs: readonly SimJob[],
  config: ResolvedConfig,
  bootSeconds: number,
): BoundParts {
  const parts: BoundParts = {
    vcpuHours: 0,
    workHours: 0,
    roundingHours: 0,
    bootHours: 0,
    idleHours: 0,
    cost: 0,
    bootSeconds,
  };
  const byQueue = new Map<string, SimJob[]>();
  for (const job of jobs) {
    const list = byQueue.get(job.queue);
    if (list) list.push(job);
    else byQueue.set(job.queue, [job]);
  }
  for (const [name, list] of byQueue) {
    const queue = config.queueByName.get(name);
    if (!queue || queue.groups.length === 0) continue;
    let unit = 0;
    let perVcpuHour: number | undefined = Number.POSITIVE_INFINITY;
    for (const g of queue.groups) {
      unit = gcd(unit, g.shape.vcpus);
      const price = g.shape.pricePerHour;
      perVcpuHour =
        price === undefined || perVcpuHour === undefined
          ? undefined
          : Math.min(perVcpuHour, price / g.shape.vcpus);
    }
    if (unit <= 0) continue;
    const q = queueBound(list, unit, bootSeconds * 1000);
    parts.workHours += q.work / 3.6e6;
    parts.roundingHours += q.rounding / 3.6e6;
    parts.bootHours += q.boot / 3.6e6;
    parts.idleHours += q.idle / 3.6e6;
    const total = (q.work + q.rounding + q.boot + q.idle) / 3.6e6;
    parts.vcpuHours += total;
    parts.cost = parts.cost === null || perVcpuHour === undefined ? null : parts.cost + total * perVcpuHour;
  }
  return parts;
}

/** vCPU-ms of one queue's bound, by part. Levels are units of `unit` vCPUs. */
function queueBound(
  jobs: readonly SimJob[],
  unit: number,
  bootMs: number,
): { work: number; rounding: number; boot: number; idle: number } {
  // Demand changes: +procs at submit, −procs at submit + run; a zero-length job changes nothing.
  const n = jobs.length;
  const times = new Float64Array(2 * n);
  const deltas = new Float64Array(2 * n);
  let m = 0;
  let work = 0;
  for (const job of jobs) {
    if (job.runMs <= 0) continue;
    times[m] = job.submitMs;
    deltas[m++] = job.procs;
    times[m] = job.submitMs + job.runMs;
    deltas[m++] = -job.procs;
    work += job.procs * job.runMs;
  }
  const order = new Uint32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  order.sort((a, b) => (times[a] as number) - (times[b] as number));

  // Per level (1-based): when its last needed stretch ended; a level not listed yet was never needed.
  const lastEnd: number[] = [0];
  let level = 0;
  let demand = 0;
  let unitsTime = 0;
  let boot = 0;
  let idle = 0;
  let i = 0;
  let prevT = 0;
  while (i < m) {
    const t = times[order[i] as number] as number;
    unitsTime += level * (t - prevT);
    prevT = t;
    // Every change at one instant first, so a job ending as another starts leaves no gap.
    for (; i < m && times[order[i] as number] === t; i++) demand += deltas[order[i] as number] as number;
    const next = Math.ceil(demand / unit - 1e-9);
    for (let k = level + 1; k <= next; k++) {
      if (k >= lastEnd.length) {
        // Level k's first stretch: one boot.
        lastEnd.push(Number.NaN);
        boot += bootMs;
      } else {
        const gap = t - (lastEnd[k] as number);
        if (gap > bootMs) boot += bootMs;
        else idle += gap;
      }
    }
    for (let k = next + 1; k <= level; k++) lastEnd[k] = t;
    level = next;
  }
  const units = unit * unitsTime;
  return { work, rounding: units - work, boot: boot * unit, idle: idle * unit };
}
