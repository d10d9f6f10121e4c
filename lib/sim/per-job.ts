import type { ResolvedConfig } from "../core/config.js";
import { bestFit, slicesOf } from "../core/fit.js";
import type { Placement, SimCluster, SimNode } from "./cluster.js";
import type { Scaler } from "./scalers.js";
import type { SimJob } from "./workload.js";

/**
 * The per-job baseline, the way ParallelCluster's Slurm power-save works: at the first poll that sees a
 * pending job, launch a node set of its best-fit shape for it alone (all or nothing, no busy-time wait);
 * the job runs there once every node has booted, and the nodes are terminated when it ends. Nodes are
 * never shared or reused. The queue's maxSize still caps the live nodes; a job that does not fit it
 * now is retried at the next poll.
 */
export class PerJobScaler implements Scaler {
  readonly polls = true;
  /** Node sets launched for jobs that have not started yet. */
  private readonly waiting = new Map<number, SimNode[]>();
  /** Node sets of running jobs, terminated when the job ends. */
  private readonly owned = new Map<number, SimNode[]>();
  /** Best-fit node count per job, computed once (null: no shape fits). */
  private readonly fits = new Map<
    number,
    { count: number; entries: ResolvedConfig["queues"][number]["entries"] } | null
  >();

  constructor(private readonly config: ResolvedConfig) {}

  begin(): void {}

  poll(cluster: SimCluster, now: number): void {
    let launchedAny = false;
    for (const q of cluster.queues.values()) {
      const queue = this.config.queueByName.get(q.name);
      if (!queue) continue;
      for (const index of q.pending) {
        if (this.waiting.has(index)) continue;
        const fit = this.fitOf(cluster, index);
        if (!fit || fit.count > queue.maxSize - q.nodes.length) continue;
        const nodes = cluster.launch(q.name, fit.entries, fit.count, true, now, index);
        if (nodes.length > 0) {
          this.waiting.set(index, nodes);
          launchedAny = true;
        }
      }
    }
    if (launchedAny) cluster.counters.scaleOutRounds++;
  }

  quietUntil(cluster: SimCluster): number {
    let pending = 0;
    for (const q of cluster.queues.values()) pending += q.pending.length;
    return pending === this.waiting.size ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  }

  settled(): boolean {
    return true;
  }

  onReady(cluster: SimCluster, node: SimNode, now: number): void {
    const nodes = this.waiting.get(node.boundJob);
    if (!nodes || nodes.some((n) => !n.ready)) return;
    const index = node.boundJob;
    const job = cluster.jobs[index] as SimJob;
    this.waiting.delete(index);
    this.fits.delete(index);
    this.owned.set(index, nodes);
    const q = cluster.queue(job.queue);
    q.pending = q.pending.filter((i) => i !== index);
    cluster.start(index, spread(job, nodes), now);
  }

  onEnd(cluster: SimCluster, job: number, _placements: readonly Placement[], now: number): void {
    for (const node of this.owned.get(job) ?? []) cluster.terminate(node, now);
    this.owned.delete(job);
  }

  private fitOf(cluster: SimCluster, index: number) {
    let fit = this.fits.get(index);
    if (fit === undefined) {
      const job = cluster.jobs[index] as SimJob;
      const queue = this.config.queueByName.get(job.queue);
      const request = {
        kind: "tasks" as const,
        tasks: job.procs,
        cpusPerTask: 1,
        memPerTaskMiB: job.memPerTaskMiB,
        gpusPerTask: 0,
      };
      const best = queue
        ? (() => {
            const { slice, units, distinct } = slicesOf(request, queue.scaleUpMemRatio);
            return bestFit(queue, slice, units, distinct);
          })()
        : null;
      fit = best ? { count: best.layout.nodes, entries: best.group.entries } : null;
      this.fits.set(index, fit);
    }
    return fit;
  }
}

/** Lays a job's tasks over its own nodes, filling each in turn (best fit guarantees they fit). */
function spread(job: SimJob, nodes: readonly SimNode[]): Placement[] {
  const out: Placement[] = [];
  let left = job.procs;
  for (const node of nodes) {
    if (left === 0) break;
    const byMem = job.memPerTaskMiB > 0 ? Math.floor(node.freeMemMiB / job.memPerTaskMiB) : node.freeCpus;
    const tasks = Math.min(left, node.freeCpus, byMem);
    if (tasks > 0) out.push({ node, tasks });
    left -= tasks;
  }
  if (left > 0)
    throw new Error(`job ${job.id}'s own nodes cannot hold it: best fit and usable memory disagree`);
  return out;
}
