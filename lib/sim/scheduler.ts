import type { Placement, QueueState, SimCluster, SimNode } from "./cluster.js";
import type { SimJob } from "./workload.js";

/**
 * A Slurm-like scheduler: per queue (partition), FIFO priority with EASY backfill. Jobs start in
 * submit order while they fit; the first one that does not fit gets a reservation at the earliest
 * time enough CPUs free up (running jobs ending at their estimated walltime, booting nodes becoming
 * ready); later jobs may start now if they end before that time or only use what the reservation
 * leaves spare. Tasks are one CPU each and may span nodes; a node is shared by jobs.
 */

/** Like Slurm's bf_max_job_test: how many pending jobs one pass looks at. */
export const BACKFILL_DEPTH = 500;

/** Runs one scheduling pass over every queue at `now`, starting what can start. */
export function schedule(cluster: SimCluster, now: number): void {
  for (const q of cluster.queues.values()) {
    if (q.pending.length > 0) scheduleQueue(cluster, q, now);
  }
}

/** The head job's reservation: when it can start, and what each node has to spare then. */
interface Reservation {
  timeMs: number;
  /** Per usable node: CPUs and memory a job running past timeMs may still take; undefined = no limit. */
  spareCpus?: number[];
  spareMemMiB?: number[];
}

function scheduleQueue(cluster: SimCluster, q: QueueState, now: number): void {
  const nodes: SimNode[] = [];
  for (const n of q.nodes) {
    if (n.ready && !n.draining && n.boundJob < 0) {
      n.slot = nodes.length;
      nodes.push(n);
    } else n.slot = -1;
  }
  if (nodes.length === 0) return;
  const freeCpus = nodes.map((n) => n.freeCpus);
  const freeMem = nodes.map((n) => n.freeMemMiB);
  // busy-first placement: nodes running a job when the pass began come first.
  const busy = cluster.busyFirst ? nodes.map((n) => n.runningJobs > 0) : undefined;
  let totalFree = 0;
  for (const c of freeCpus) totalFree += c;
  if (totalFree === 0) return;

  const started = new Set<number>();
  let reservation: Reservation | undefined;
  let examined = 0;
  // A job fits iff the free slots add up to its tasks, and slots only shrink during a pass: once P
  // tasks of m MiB did not fit, no later job of at least P tasks of m MiB fits (uncapped; capped
  // also by what the reservation leaves). Skips most of a long backlog's place() calls, exactly.
  const failFree = new Map<number, number>();
  const failCapped = new Map<number, number>();
  const known = (memo: Map<number, number>, job: SimJob) =>
    job.procs >= (memo.get(job.memPerTaskMiB) ?? Number.POSITIVE_INFINITY);
  const fail = (memo: Map<number, number>, job: SimJob) =>
    memo.set(job.memPerTaskMiB, Math.min(job.procs, memo.get(job.memPerTaskMiB) ?? Number.POSITIVE_INFINITY));
  for (const index of q.pending) {
    if (totalFree === 0 || ++examined > BACKFILL_DEPTH) break;
    const job = cluster.jobs[index] as SimJob;
    if (reservation === undefined) {
      const placed =
        job.procs <= totalFree ? place(job, freeCpus, freeMem, undefined, undefined, busy) : undefined;
      if (placed) {
        totalFree -= take(placed, job, freeCpus, freeMem);
        startOn(cluster, index, placed, nodes, now, started);
      } else {
        reservation = reserve(cluster, q, job, nodes, freeCpus, freeMem, now);
      }
      continue;
    }
    if (job.procs > totalFree || known(failFree, job)) continue;
    const { spareCpus, spareMemMiB } = reservation;
    if (now + job.estimateMs <= reservation.timeMs || spareCpus === undefined || spareMemMiB === undefined) {
      const placed = place(job, freeCpus, freeMem, undefined, undefined, busy);
      if (placed) {
        totalFree -= take(placed, job, freeCpus, freeMem);
        startOn(cluster, index, placed, nodes, now, started);
      } else fail(failFree, job);
    } else if (!known(failCapped, job)) {
      // Runs past the reservation: only what the head job leaves spare on each node.
      const placed = place(job, freeCpus, freeMem, spareCpus, spareMemMiB, busy);
      if (placed) {
        take(placed, job, spareCpus, spareMemMiB);
        totalFree -= take(placed, job, freeCpus, freeMem);
        startOn(cluster, index, placed, nodes, now, started);
      } else fail(failCapped, job);
    }
  }
  if (started.size > 0) q.pending = q.pending.filter((i) => !started.has(i));
}

/** [slot, tasks] pairs: where a job's tasks would go. */
type Slots = [number, number][];

/**
 * Where `job`'s tasks fit within per-node CPU and memory limits, or undefined. One node when one can
 * hold the whole job (the one with the fewest free task slots, to keep larger holes for larger jobs);
 * otherwise the nodes with the most free slots first, so the job spans as few nodes as it can.
 */
export function place(
  job: Pick<SimJob, "procs" | "memPerTaskMiB">,
  cpus: readonly number[],
  mem: readonly number[],
  capCpus?: readonly number[],
  capMem?: readonly number[],
  busy?: readonly boolean[],
): Slots | undefined {
  const n = cpus.length;
  const slots = new Array<number>(n);
  let total = 0;
  let single = -1;
  for (let i = 0; i < n; i++) {
    // Within the caps when given (what a reservation leaves spare), without copying them.
    const c = capCpus ? Math.min(cpus[i] as number, capCpus[i] as number) : (cpus[i] as number);
    const m = capMem ? Math.min(mem[i] as number, capMem[i] as number) : (mem[i] as number);
    const s = job.memPerTaskMiB > 0 ? Math.min(c, Math.floor(m / job.memPerTaskMiB)) : c;
    slots[i] = s;
    total += s;
    if (s >= job.procs && (single < 0 || better(i, single, s, slots[single] as number, busy))) single = i;
  }
  if (total < job.procs) return undefined;
  if (single >= 0) return [[single, job.procs]];
  const order: number[] = [];
  for (let i = 0; i < n; i++) if ((slots[i] as number) > 0) order.push(i);
  order.sort(
    (a, b) =>
      (busy ? Number(busy[b]) - Number(busy[a]) : 0) || (slots[b] as number) - (slots[a] as number) || a - b,
  );
  const out: Slots = [];
  let left = job.procs;
  for (const i of order) {
    const t = Math.min(left, slots[i] as number);
    out.push([i, t]);
    left -= t;
    if (left === 0) break;
  }
  return out;
}

/** Single-node pick: a busy node before an idle one (busy-first), then the fewest free slots. */
function better(i: number, j: number, slotsI: number, slotsJ: number, busy?: readonly boolean[]): boolean {
  if (busy && busy[i] !== busy[j]) return busy[i] === true;
  return slotsI < slotsJ;
}

/** Subtracts a placement from per-node arrays; returns the CPUs taken. */
function take(placed: Slots, job: SimJob, cpus: number[], mem: number[]): number {
  let used = 0;
  for (const [i, t] of placed) {
    cpus[i] = (cpus[i] as number) - t;
    mem[i] = (mem[i] as number) - t * job.memPerTaskMiB;
    used += t;
  }
  return used;
}

function startOn(
  cluster: SimCluster,
  index: number,
  placed: Slots,
  nodes: readonly SimNode[],
  now: number,
  started: Set<number>,
): void {
  const placements: Placement[] = placed.map(([i, tasks]) => ({ node: nodes[i] as SimNode, tasks }));
  cluster.start(index, placements, now);
  started.add(index);
}

/**
 * EASY's reservation for the blocked head job: replay the queue's future releases (running jobs at
 * start + estimate, never before now; booting nodes at their ready time) until the head fits. When it
 * never fits on the current and booting nodes, there is nothing to protect: no limit.
 */
function reserve(
  cluster: SimCluster,
  q: QueueState,
  head: SimJob,
  nodes: readonly SimNode[],
  freeCpus: readonly number[],
  freeMem: readonly number[],
  now: number,
): Reservation {
  const releases: { timeMs: number; slot: number; cpus: number; memMiB: number }[] = [];
  const cpus = freeCpus.slice();
  const mem = freeMem.slice();
  for (const index of q.running) {
    const job = cluster.jobs[index] as SimJob;
    const endMs = Math.max(now, (cluster.startMs[index] as number) + job.estimateMs);
    for (const p of cluster.placements.get(index) ?? []) {
      if (p.node.slot >= 0) {
        releases.push({
          timeMs: endMs,
          slot: p.node.slot,
          cpus: p.tasks,
          memMiB: p.tasks * job.memPerTaskMiB,
        });
      }
    }
  }
  for (const n of q.nodes) {
    if (!n.ready && !n.draining && n.boundJob < 0) {
      releases.push({ timeMs: n.readyAt, slot: cpus.length, cpus: n.vcpus, memMiB: n.memMiB });
      cpus.push(0);
      mem.push(0);
    }
  }
  releases.sort((a, b) => a.timeMs - b.timeMs || a.slot - b.slot);
  let total = 0;
  for (const c of cpus) total += c;
  let i = 0;
  while (i < releases.length) {
    const t = (releases[i] as (typeof releases)[number]).timeMs;
    for (; i < releases.length && (releases[i] as (typeof releases)[number]).timeMs === t; i++) {
      const r = releases[i] as (typeof releases)[number];
      cpus[r.slot] = (cpus[r.slot] as number) + r.cpus;
      mem[r.slot] = (mem[r.slot] as number) + r.memMiB;
      total += r.cpus;
    }
    if (total < head.procs) continue;
    const placed = place(head, cpus, mem);
    if (placed) {
      take(placed, head, cpus, mem);
      return { timeMs: t, spareCpus: cpus.slice(0, nodes.length), spareMemMiB: mem.slice(0, nodes.length) };
    }
  }
  return { timeMs: Number.POSITIVE_INFINITY };
}
