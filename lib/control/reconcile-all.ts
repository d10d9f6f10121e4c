import type { Clock } from "../ports/clock.js";
import type { ClusterRecord } from "../ports/state-store.js";
import type { ReconcileSummary } from "./reconciler.js";

export interface ReconcileAllOptions {
  clock: Clock;
  /** Clusters reconciled at once: an unreachable master costs its agent timeout, not everyone's. @default 4 */
  concurrency?: number;
  /** Time one cluster's run may take before it stops between steps. @default 60000 */
  perClusterMs?: number;
  /** Epoch ms by which the whole run must be done (the Lambda's end minus a margin); no cluster starts after it. */
  deadline?: number;
  /**
   * Where in the id order this run starts (e.g. the run's number). Clusters the budget left out this time
   * come first next time, so none starves behind the same slow neighbours. @default 0
   */
  rotation?: number;
}

export interface ReconcileAllResult {
  /** Clusters reconciled (some steps may still have failed: see each summary's errors). */
  done: ReconcileSummary[];
  /** Clusters whose run threw, with the message. */
  failed: { clusterId: string; error: string }[];
  /** Clusters not started because the budget ran out. */
  deferred: string[];
}

/**
 * Reconciles many clusters within one invocation's budget: a few at a time, each with its own deadline,
 * starting at a rotating position, with every cluster's failure isolated from the others.
 */
export async function reconcileAll(
  clusters: readonly ClusterRecord[],
  reconcileOne: (cluster: ClusterRecord, deadline: number) => Promise<ReconcileSummary>,
  options: ReconcileAllOptions,
): Promise<ReconcileAllResult> {
  const { clock } = options;
  const perClusterMs = options.perClusterMs ?? 60_000;
  const n = clusters.length;
  const start = n === 0 ? 0 : (((options.rotation ?? 0) % n) + n) % n;
  const queue = [...clusters.slice(start), ...clusters.slice(0, start)];
  const result: ReconcileAllResult = { done: [], failed: [], deferred: [] };
  const worker = async () => {
    for (let cluster = queue.shift(); cluster !== undefined; cluster = queue.shift()) {
      const now = clock.now();
      if (options.deadline !== undefined && now + perClusterMs > options.deadline) {
        result.deferred.push(cluster.clusterId, ...queue.splice(0).map((c) => c.clusterId));
        return;
      }
      const deadline = Math.min(now + perClusterMs, options.deadline ?? Number.POSITIVE_INFINITY);
      try {
        result.done.push(await reconcileOne(cluster, deadline));
      } catch (error) {
        result.failed.push({ clusterId: cluster.clusterId, error: (error as Error).message.slice(0, 500) });
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency ?? 4, n));
  await Promise.all(Array.from({ length: workers }, worker));
  return result;
}
