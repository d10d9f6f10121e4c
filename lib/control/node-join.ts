import type { Clock } from "../ports/clock.js";
import type { ClusterRecord, NodeRecord, StateStore } from "../ports/state-store.js";
import { appendControlEvent as event } from "./events.js";
import { queueHealthOf } from "./launch.js";
import type { MetricsSink } from "./metrics.js";
import { ignoreConflict } from "./store-retry.js";

export interface JoinDeps {
  store: StateStore;
  clock: Clock;
  metrics: MetricsSink;
}

/**
 * A LAUNCHING node that Slurm now lists has joined: written once for the scale cycle (which sees it
 * first, every poll) and the reconciler (which sees it when no scaler ran). The record goes LAUNCHING →
 * JOINED (a lost condition means the other caller recorded it first), an absence mark is cleared, the
 * join latency is measured, and for a node NowScale launched (an adopted one proves nothing about the
 * boot script) the queue's bootstrap-failure streak ends; when that lifts protected mode, a
 * PROTECTED_MODE_CLEARED event says so. `cluster` is the record read this run (its queue health saves a
 * write when the streak is already 0). Mutates `record.status` to JOINED for the caller's later steps.
 */
export async function recordJoin(
  deps: JoinDeps,
  cluster: ClusterRecord,
  record: NodeRecord,
  now: number,
): Promise<void> {
  const { store, clock, metrics } = deps;
  const clusterId = cluster.clusterId;
  await store.updateNodeStatus(clusterId, record.nodeName, "LAUNCHING", "JOINED", now).catch(ignoreConflict);
  record.status = "JOINED";
  if (record.absentSince !== undefined)
    await store.markNode(clusterId, record.nodeName, { absentSince: null });
  if (record.origin === "adopted") return;
  metrics.add("NodeJoinLatency", "Milliseconds", now - record.launchedAt, { Queue: record.queue });
  const health = queueHealthOf(cluster, record.queue);
  if (health === undefined || (health.consecutiveBootstrapFailures === 0 && !health.protected)) return;
  await store.recordBootstrapSuccess(clusterId, record.queue, now);
  if (health.protected)
    await event(store, clusterId, clock, "PROTECTED_MODE_CLEARED", "a node joined", record.queue);
}
