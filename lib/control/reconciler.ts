import type { OkReport } from "../../agent/report-schema.js";
import { ownValue } from "../core/own.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { CloudInstance, CloudProvider } from "../ports/cloud-provider.js";
import { ConflictError, type NodeRecord, type StateStore } from "../ports/state-store.js";
import { type ControlLog, silentLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { appendControlEvent as event, ROUND_TAG } from "./scale-cycle.js";

export interface ReconcilerDeps {
  store: StateStore;
  agent: AgentChannel;
  provider: CloudProvider;
  clock: Clock;
  metrics: MetricsSink;
  log?: ControlLog;
  owner: string;
}

export interface ReconcilerOptions {
  /** A tagged instance with no record is terminated once it is this old. @default 300000 */
  orphanGraceMs?: number;
  /** A node that has not joined Slurm this long after launch is terminated. @default 900000 */
  bootTimeoutMs?: number;
  /** Consecutive bootstrap failures that put a queue in protected mode. @default 3 */
  protectAfterFailures?: number;
  /** A record whose instance is not listed is only trusted gone after this age (listing lags). @default 120000 */
  goneGraceMs?: number;
  /** An intent still INTENDED after this long, with no instance of its round, is closed as FAILED. @default 300000 */
  intentStaleMs?: number;
  /** Finished launch intents are kept this long as history. @default 86400000 (a day) */
  intentRetentionMs?: number;
  /** @default 120000 */
  leaseTtlMs?: number;
}

export interface ReconcileSummary {
  clusterId: string;
  skipped?: "lease-held-elsewhere" | "cluster-missing" | "not-active";
  adopted: string[];
  orphansTerminated: string[];
  bootTimeouts: string[];
  gone: string[];
  intentsClosed: string[];
  intentsPruned: number;
  protectedQueues: string[];
  agentReachable: boolean;
}

/**
 * Makes the records and the cloud agree for one cluster:
 * - an untracked tagged instance whose round tag names a launch still INTENDED (a scaler that crashed
 *   between launch and record) is adopted: recorded as its launch's node;
 * - any other untracked tagged instance older than the grace period is an orphan: terminated;
 * - a node that has not joined Slurm within the boot timeout is terminated and counted as a bootstrap
 *   failure of its queue; enough consecutive failures put the queue in protected mode, but never while
 *   jobs run in it;
 * - a record whose instance is gone is removed and Slurm is told (agent deleteNode);
 * - a launch intent left INTENDED with nothing started is closed, so it stops counting as launching.
 * Instances the cluster's workflow created (the master: ids in `resources`) are never touched.
 */
export async function reconcileCluster(
  clusterId: string,
  deps: ReconcilerDeps,
  options: ReconcilerOptions = {},
): Promise<ReconcileSummary> {
  const orphanGraceMs = options.orphanGraceMs ?? 300_000;
  const bootTimeoutMs = options.bootTimeoutMs ?? 900_000;
  const threshold = options.protectAfterFailures ?? 3;
  const goneGraceMs = options.goneGraceMs ?? 120_000;
  const intentStaleMs = options.intentStaleMs ?? 300_000;
  const { store, provider, clock, metrics } = deps;
  const log = deps.log ?? silentLog;
  const summary: ReconcileSummary = {
    clusterId,
    adopted: [],
    orphansTerminated: [],
    bootTimeouts: [],
    gone: [],
    intentsClosed: [],
    intentsPruned: 0,
    protectedQueues: [],
    agentReachable: false,
  };

  const cluster = await store.getCluster(clusterId);
  if (cluster === undefined) return { ...summary, skipped: "cluster-missing" };
  if (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")
    return { ...summary, skipped: "not-active" };
  const lease = await store.acquireLease(
    `reconciler#${clusterId}`,
    deps.owner,
    options.leaseTtlMs ?? 120_000,
    clock.now(),
  );
  if (lease === undefined) return { ...summary, skipped: "lease-held-elsewhere" };

  try {
    const workflowIds = new Set(cluster.resources.map((r) => r.id));
    const instances = (await provider.list(clusterId)).filter((i) => !workflowIds.has(i.id));
    let records = await store.listNodes(clusterId);
    const intents = await store.listLaunchIntents(clusterId, "INTENDED");
    let report: OkReport | undefined;
    try {
      report = await deps.agent.report();
      summary.agentReachable = true;
    } catch (error) {
      log.warn("agent unreachable: boot timeouts wait for the next run", {
        clusterId,
        error: (error as Error).message,
      });
    }

    // 1. Adopt the instances of launches a crashed scaler never recorded.
    const tracked = new Set(records.map((r) => r.instanceId));
    const byRound = new Map(intents.map((i) => [i.round, i]));
    const adoptedByRound = new Map<string, CloudInstance[]>();
    for (const instance of instances) {
      const round = instance.tags[ROUND_TAG];
      const intent = round === undefined ? undefined : byRound.get(round);
      if (tracked.has(instance.id) || intent === undefined) continue;
      const node: NodeRecord = {
        clusterId,
        nodeName: instance.id,
        instanceId: instance.id,
        queue: intent.queue,
        instanceType: instance.instanceType,
        zone: instance.zone,
        chargeType: instance.chargeType,
        status: "LAUNCHING",
        round: intent.round,
        launchedAt: instance.launchedAt ?? intent.intendedAt,
        updatedAt: clock.now(),
      };
      await store.putNode(node);
      tracked.add(instance.id);
      summary.adopted.push(instance.id);
      adoptedByRound.set(intent.round, [...(adoptedByRound.get(intent.round) ?? []), instance]);
    }
    for (const [round, adopted] of adoptedByRound) {
      await store
        .recordLaunchOutcome(clusterId, round, {
          instances: adopted.map((i) => ({
            id: i.id,
            instanceType: i.instanceType,
            zone: i.zone,
            chargeType: i.chargeType,
          })),
          failures: [],
          at: clock.now(),
        })
        .catch(ignoreConflict);
    }

    // 2. Orphans: tagged, untracked, old enough.
    const now = clock.now();
    const orphans = instances.filter(
      (i) => !tracked.has(i.id) && i.launchedAt !== undefined && now - i.launchedAt >= orphanGraceMs,
    );
    if (orphans.length > 0) {
      await provider.terminate(orphans.map((i) => i.id));
      summary.orphansTerminated.push(...orphans.map((i) => i.id));
      metrics.add("OrphansTerminated", "Count", orphans.length);
      await event(
        store,
        clusterId,
        clock,
        "ORPHAN_TERMINATED",
        `${orphans.length} untracked instance(s) terminated`,
        undefined,
        orphans.map((i) => i.id),
        orphans.length,
      );
    }

    // 3. Records whose instance is gone: clean up and tell Slurm.
    records = await store.listNodes(clusterId);
    const live = new Set(instances.map((i) => i.id));
    for (const record of records) {
      if (live.has(record.instanceId) || now - record.launchedAt < goneGraceMs) continue;
      await deps.agent.deleteNode(record.nodeName).catch((error: unknown) => {
        log.warn("could not remove the node from Slurm", {
          clusterId,
          node: record.nodeName,
          error: (error as Error).message,
        });
      });
      await store.deleteNode(clusterId, record.nodeName);
      summary.gone.push(record.nodeName);
      await event(
        store,
        clusterId,
        clock,
        "NODE_GONE",
        "instance no longer exists: record removed",
        record.queue,
        [record.nodeName],
      );
    }

    // 4. Boot timeouts (only with a report: without one nobody knows who joined).
    if (report !== undefined) {
      const inSlurm = new Set(report.nodes.map((n) => n.name));
      const busyQueues = new Set(report.jobs.filter((j) => j.state === "RUNNING").map((j) => j.queue));
      for (const n of report.nodes) {
        if (n.state === "MIXED" || n.state === "ALLOCATED" || n.state === "DRAINING") busyQueues.add(n.queue);
      }
      for (const record of records) {
        if (summary.gone.includes(record.nodeName)) continue;
        if (record.status !== "LAUNCHING") continue;
        if (inSlurm.has(record.nodeName)) {
          await store
            .updateNodeStatus(clusterId, record.nodeName, "LAUNCHING", "JOINED", now)
            .catch(ignoreConflict);
          await store.recordBootstrapSuccess(clusterId, record.queue, now);
          continue;
        }
        if (now - record.launchedAt < bootTimeoutMs) continue;
        await provider.terminate([record.instanceId]);
        await store.deleteNode(clusterId, record.nodeName);
        summary.bootTimeouts.push(record.nodeName);
        metrics.add("BootstrapFailures", "Count", 1, { Queue: record.queue });
        // Never protect a queue whose jobs are running: the failure still counts, the queue keeps launching.
        const limit = busyQueues.has(record.queue) ? Number.POSITIVE_INFINITY : threshold;
        const before =
          ownValue((await store.getCluster(clusterId))?.queueHealth, record.queue)?.protected === true;
        const health = await store.recordBootstrapFailure(clusterId, record.queue, limit, now);
        await event(
          store,
          clusterId,
          clock,
          "BOOTSTRAP_FAILED",
          `did not join Slurm within ${Math.round(bootTimeoutMs / 1000)} s (${health.consecutiveBootstrapFailures} in a row)`,
          record.queue,
          [record.nodeName],
        );
        if (health.protected && !before) {
          summary.protectedQueues.push(record.queue);
          metrics.add("ProtectedQueues", "Count", 1, { Queue: record.queue });
          await event(
            store,
            clusterId,
            clock,
            "PROTECTED_MODE",
            `${health.consecutiveBootstrapFailures} bootstrap failures in a row: no launches until a node joins or an operator resets`,
            record.queue,
          );
        }
      }
    }

    // 5. Intents a crashed scaler left behind with nothing started.
    for (const intent of intents) {
      if (adoptedByRound.has(intent.round) || now - intent.intendedAt < intentStaleMs) continue;
      await store
        .recordLaunchOutcome(clusterId, intent.round, {
          instances: [],
          failures: [
            { index: -1, kind: "Abandoned", message: "no outcome was recorded; closed by the reconciler" },
          ],
          at: now,
        })
        .then(() => summary.intentsClosed.push(intent.round))
        .catch(ignoreConflict);
    }

    // 6. History: finished intents older than the retention.
    summary.intentsPruned = await store.pruneLaunchIntents(
      clusterId,
      now - (options.intentRetentionMs ?? 86_400_000),
    );
  } finally {
    await store.releaseLease(lease).catch(() => undefined);
  }
  return summary;
}

function ignoreConflict(error: unknown): void {
  if (!(error instanceof ConflictError)) throw error;
}
