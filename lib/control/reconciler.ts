import type { AgentChannel } from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudInstance, CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterRecord, NodeRecord, StateStore } from "../ports/state-store.js";
import { appendControlEvent as event } from "./events.js";
import { ABANDONED_INTENT_MS, offeringKey, queueHealthOf, ROUND_TAG } from "./launch.js";
import { type ControlLog, silentLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { recordJoin } from "./node-join.js";
import { retireNode } from "./node-retirement.js";
import { isUnhealthy, nodesRunningJobs } from "./slurm-evidence.js";
import { ignoreConflict, retryTransient } from "./store-retry.js";

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
  /**
   * A tagged instance nobody recorded is adopted at once (recorded, so it is tracked); if it has not joined
   * Slurm this long after launch, and two runs in a row saw it absent from Slurm, it is terminated.
   * @default 300000
   */
  orphanGraceMs?: number;
  /**
   * A node that has not joined Slurm this long after launch, and that two runs in a row saw absent from
   * Slurm, is terminated and counted as a bootstrap failure of its queue. @default 900000
   */
  bootTimeoutMs?: number;
  /** Consecutive bootstrap failures that put a queue in protected mode. @default 3 */
  protectAfterFailures?: number;
  /** A record whose instance is not listed is only looked into after this age (listings lag). @default 120000 */
  goneGraceMs?: number;
  /**
   * An instance that neither the listing nor a describe by id finds is declared gone only when a run at
   * least this much later still finds nothing (a describe answering TERMINATED is enough at once).
   * @default 120000
   */
  goneConfirmMs?: number;
  /**
   * A joined node that Slurm shows DOWN or not responding (or no longer lists) this long, in runs that
   * agree, and that runs no job, is retired: terminated and deleted from Slurm, so its demand is
   * launched elsewhere and it stops holding a maxSize slot. @default 300000
   */
  downGraceMs?: number;
  /** A TERMINATING record whose instance still runs after this long gets its terminate again. @default 60000 */
  releaseRetryMs?: number;
  /** An intent still INTENDED after this long, with no instance of its round, is closed as FAILED. @default 300000 */
  intentStaleMs?: number;
  /** Finished launch intents are kept this long as history. @default 86400000 (a day) */
  intentRetentionMs?: number;
  /** @default 120000 */
  leaseTtlMs?: number;
  /** Epoch ms after which the run stops between steps (the caller's time budget for this cluster). */
  deadline?: number;
}

export interface ReconcileSummary {
  clusterId: string;
  skipped?: "lease-held-elsewhere" | "cluster-missing" | "not-active";
  adopted: string[];
  orphansTerminated: string[];
  bootTimeouts: string[];
  gone: string[];
  /** Nodes DOWN, not responding or lost by Slurm past the grace: terminated and deleted from Slurm. */
  retired: string[];
  /** TERMINATING records whose terminate was sent again. */
  releasesRetried: string[];
  intentsClosed: string[];
  intentsPruned: number;
  protectedQueues: string[];
  agentReachable: boolean;
  /** Steps that failed (each is isolated: the others still ran). */
  errors: string[];
  /** True when the deadline stopped the run before its last step. */
  truncated: boolean;
}

const DEFAULTS = {
  orphanGraceMs: 300_000,
  bootTimeoutMs: 900_000,
  protectAfterFailures: 3,
  goneGraceMs: 120_000,
  goneConfirmMs: 120_000,
  downGraceMs: 300_000,
  releaseRetryMs: 60_000,
  intentStaleMs: ABANDONED_INTENT_MS,
  intentRetentionMs: 86_400_000,
  leaseTtlMs: 120_000,
};

/**
 * Makes the records, the cloud and Slurm agree for one cluster. Creating may act on one observation;
 * destroying (terminate, delete from Slurm, forget a record) needs observations that agree over time,
 * and never touches a node Slurm reports running a job:
 * - adopt: every tagged instance with no record is recorded at once (a crashed launch's round, an orphan);
 * - gone: a record whose instance the listing misses is forgotten only when a describe by id answers
 *   TERMINATED, or when listing and describe both miss it in two runs `goneConfirmMs` apart;
 * - releases: a TERMINATING record whose instance still runs gets its terminate again;
 * - boot timeouts: a launched node absent from Slurm past the boot timeout, in two runs, is terminated and
 *   counted as a bootstrap failure of its offering (protected mode at the threshold, whatever else runs);
 *   an adopted orphan absent past the orphan grace, in two runs, is terminated;
 * - retire: a joined node DOWN, not responding or lost by Slurm past the grace, in two runs, running no job;
 * - intents left INTENDED with nothing started are closed; old finished ones are pruned.
 * Each step's failure is caught and reported in `errors`; the others still run. Instances the cluster's
 * workflow created (the master: ids in `resources`) are never touched.
 */
export async function reconcileCluster(
  clusterId: string,
  deps: ReconcilerDeps,
  options: ReconcilerOptions = {},
): Promise<ReconcileSummary> {
  const o = { ...DEFAULTS, ...definedOnly(options) };
  const { store, provider, clock } = deps;
  const log = deps.log ?? silentLog;
  const summary: ReconcileSummary = {
    clusterId,
    adopted: [],
    orphansTerminated: [],
    bootTimeouts: [],
    gone: [],
    retired: [],
    releasesRetried: [],
    intentsClosed: [],
    intentsPruned: 0,
    protectedQueues: [],
    agentReachable: false,
    errors: [],
    truncated: false,
  };

  // The run's first reads and its adoption writes are retried on transient store failures: a run lost to
  // one throttled call leaves instances untracked for another interval.
  const retried = <T>(call: () => Promise<T>) => retryTransient(call, clock);
  const cluster = await retried(() => store.getCluster(clusterId));
  if (cluster === undefined) return { ...summary, skipped: "cluster-missing" };
  if (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")
    return { ...summary, skipped: "not-active" };
  const lease = await retried(() =>
    store.acquireLease(`reconciler#${clusterId}`, deps.owner, o.leaseTtlMs, clock.now()),
  );
  if (lease === undefined) return { ...summary, skipped: "lease-held-elsewhere" };

  const workflowIds = new Set(cluster.resources.map((r) => r.id));
  const ctx: RunContext = { deps, o, log, summary, clusterId, cluster, now: clock.now() };
  try {
    // What the cloud lists: undefined when the listing failed (nothing is decided from its absence then).
    let instances: CloudInstance[] | undefined;
    await step(ctx, "list", async () => {
      instances = (await provider.list(clusterId)).filter((i) => !workflowIds.has(i.id));
    });
    const intents = await retried(() => store.listLaunchIntents(clusterId, "INTENDED"));
    let report: OkReport | undefined;
    try {
      report = await deps.agent.report();
      summary.agentReachable = true;
    } catch (error) {
      log.warn("agent unreachable: decisions that need Slurm's view wait for the next run", {
        clusterId,
        error: (error as Error).message,
      });
    }
    const slurm = report === undefined ? undefined : slurmView(report);
    const adoptedRounds = new Set<string>();

    if (instances !== undefined) {
      const listed = instances;
      await step(ctx, "adopt", () => adopt(ctx, listed, intents, slurm, adoptedRounds));
      await step(ctx, "gone", () => forgetGone(ctx, listed, slurm));
      await step(ctx, "releases", () => retryReleases(ctx, listed, slurm));
    }
    if (slurm !== undefined) {
      await step(ctx, "boot", () => bootTimeouts(ctx, slurm));
      await step(ctx, "retire", () => retireUnhealthy(ctx, slurm, report as OkReport));
    }
    await step(ctx, "intents", async () => {
      const records = await store.listNodes(clusterId);
      for (const intent of intents) {
        if (adoptedRounds.has(intent.round) || ctx.now - intent.intendedAt < o.intentStaleMs) continue;
        // A launch that recorded its instances but died before its outcome: close it as LAUNCHED with them.
        const recorded = records.filter((r) => r.round === intent.round);
        if (recorded.length > 0) {
          await store
            .recordLaunchOutcome(clusterId, intent.round, {
              instances: recorded.map((r) => ({
                id: r.instanceId,
                instanceType: r.instanceType,
                zone: r.zone,
                chargeType: r.chargeType,
              })),
              failures: [],
              at: ctx.now,
            })
            .then(() => summary.intentsClosed.push(intent.round))
            .catch(ignoreConflict);
          continue;
        }
        await store
          .recordLaunchOutcome(clusterId, intent.round, {
            instances: [],
            failures: [
              { index: -1, kind: "Abandoned", message: "no outcome was recorded; closed by the reconciler" },
            ],
            at: ctx.now,
          })
          .then(() => summary.intentsClosed.push(intent.round))
          .catch(ignoreConflict);
      }
    });
    await step(ctx, "prune", async () => {
      summary.intentsPruned = await store.pruneLaunchIntents(clusterId, ctx.now - o.intentRetentionMs);
    });
  } finally {
    await store.releaseLease(lease).catch(() => undefined);
  }
  if (summary.errors.length > 0) deps.metrics.add("CycleErrors", "Count", summary.errors.length);
  return summary;
}

interface RunContext {
  deps: ReconcilerDeps;
  o: typeof DEFAULTS & { deadline?: number };
  log: ControlLog;
  summary: ReconcileSummary;
  clusterId: string;
  /** The cluster's record as this run read it. */
  cluster: ClusterRecord;
  /** The run's time: every mark and age is measured from it. */
  now: number;
}

/** Slurm's view in one report: which nodes it lists, which run a job, which are unhealthy. */
interface SlurmView {
  listed: Set<string>;
  busy: Set<string>;
  unhealthy: Set<string>;
}

function slurmView(report: OkReport): SlurmView {
  return {
    listed: new Set(report.nodes.map((n) => n.name)),
    busy: nodesRunningJobs(report),
    unhealthy: new Set(report.nodes.filter(isUnhealthy).map((n) => n.name)),
  };
}

/** Runs one step with its failure isolated; skipped once the deadline has passed. */
async function step(ctx: RunContext, name: string, action: () => Promise<void>): Promise<void> {
  if (ctx.o.deadline !== undefined && ctx.deps.clock.now() > ctx.o.deadline) {
    ctx.summary.truncated = true;
    return;
  }
  try {
    await action();
  } catch (error) {
    ctx.summary.errors.push(`${name}: ${(error as Error).message}`.slice(0, 300));
    ctx.log.warn("reconciler step failed", {
      clusterId: ctx.clusterId,
      step: name,
      error: (error as Error).message,
    });
  }
}

/** 1. Every tagged instance without a record gets one: first by its launch's intent, else as an orphan. */
async function adopt(
  ctx: RunContext,
  instances: readonly CloudInstance[],
  intents: Awaited<ReturnType<StateStore["listLaunchIntents"]>>,
  slurm: SlurmView | undefined,
  adoptedRounds: Set<string>,
): Promise<void> {
  const { store, clock } = ctx.deps;
  const { clusterId, summary } = ctx;
  const tracked = new Set(
    (await retryTransient(() => store.listNodes(clusterId), clock)).map((r) => r.instanceId),
  );
  const byRound = new Map(intents.map((i) => [i.round, i]));
  const adoptedByRound = new Map<string, CloudInstance[]>();
  const orphans: string[] = [];
  for (const instance of instances) {
    // Shutting down: on its way out; a record would only be forgotten again.
    if (tracked.has(instance.id) || instance.state === "TERMINATING" || instance.state === "STOPPING")
      continue;
    const round = Object.hasOwn(instance.tags, ROUND_TAG) ? instance.tags[ROUND_TAG] : undefined;
    const intent = round === undefined ? undefined : byRound.get(round);
    const inSlurm = slurm?.listed.has(instance.id) === true;
    const node: NodeRecord = {
      clusterId,
      nodeName: instance.id,
      instanceId: instance.id,
      queue: intent?.queue ?? instance.queue ?? "unknown",
      instanceType: instance.instanceType,
      zone: instance.zone,
      chargeType: instance.chargeType,
      status: inSlurm ? "JOINED" : "LAUNCHING",
      ...(round === undefined ? {} : { round }),
      launchedAt: instance.launchedAt ?? intent?.intendedAt ?? ctx.now,
      updatedAt: clock.now(),
      origin: intent === undefined ? "adopted" : "launch",
    };
    await retryTransient(() => store.putNode(node), clock);
    tracked.add(instance.id);
    summary.adopted.push(instance.id);
    if (intent === undefined) {
      orphans.push(instance.id);
      continue;
    }
    adoptedRounds.add(intent.round);
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
  if (orphans.length > 0) {
    await event(
      store,
      clusterId,
      clock,
      "NODE_ADOPTED",
      `${orphans.length} tagged instance(s) with no record recorded; those that never join Slurm are terminated after ${Math.round(ctx.o.orphanGraceMs / 1000)} s`,
      undefined,
      orphans,
      orphans.length,
    );
  }
}

/** 2. Records whose instance is gone, on evidence that agrees: forgotten, and Slurm told. */
async function forgetGone(
  ctx: RunContext,
  instances: readonly CloudInstance[],
  slurm: SlurmView | undefined,
): Promise<void> {
  const { store, provider, clock, agent } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  const records = await store.listNodes(clusterId);
  const listed = new Set(instances.map((i) => i.id));
  for (const r of records) {
    if (listed.has(r.instanceId) && r.missingSince !== undefined) {
      await store.markNode(clusterId, r.nodeName, { missingSince: null });
    }
  }
  const unlisted = records.filter((r) => !listed.has(r.instanceId) && now - r.launchedAt >= o.goneGraceMs);
  if (unlisted.length === 0) return;
  // The listing is one observation; a describe by id is a second, independent one.
  const described = new Map(
    (await provider.describe(unlisted.map((r) => r.instanceId))).map((i) => [i.id, i]),
  );
  for (const record of unlisted) {
    const found = described.get(record.instanceId);
    if (found !== undefined && found.state !== "TERMINATED") {
      // The listing was short (a page, a lag): the instance is there.
      if (record.missingSince !== undefined)
        await store.markNode(clusterId, record.nodeName, { missingSince: null });
      continue;
    }
    const confirmed =
      found?.state === "TERMINATED" ||
      (record.missingSince !== undefined && now - record.missingSince >= o.goneConfirmMs);
    if (!confirmed) {
      if (record.missingSince === undefined)
        await store.markNode(clusterId, record.nodeName, { missingSince: now });
      continue;
    }
    // Slurm still runs a job there: deleting the node would kill it. Wait until Slurm lets go of it.
    if (slurm?.busy.has(record.nodeName) === true) {
      ctx.log.warn("instance gone but Slurm still runs a job on its node: waiting", {
        clusterId,
        node: record.nodeName,
      });
      continue;
    }
    if (slurm === undefined || slurm.listed.has(record.nodeName)) {
      await agent.deleteNode(record.nodeName).catch((error: unknown) => {
        ctx.log.warn("could not remove the node from Slurm", {
          clusterId,
          node: record.nodeName,
          error: (error as Error).message,
        });
      });
    }
    // Its usage ends when it stopped costing: its retirement (a TERMINATING record), else the first run
    // that missed it (the cloud lost it between two runs), else now.
    const endedAt = record.status === "TERMINATING" ? record.updatedAt : (record.missingSince ?? now);
    await store.deleteNode(clusterId, record.nodeName, endedAt);
    summary.gone.push(record.nodeName);
    await event(
      store,
      clusterId,
      clock,
      "NODE_GONE",
      found?.state === "TERMINATED"
        ? "the cloud reports the instance terminated: record removed"
        : "instance not found by two listings and describes: record removed",
      record.queue,
      [record.nodeName],
    );
  }
}

/** 3. TERMINATING records whose instance still runs: terminate again (drain first if Slurm gave it a job). */
async function retryReleases(
  ctx: RunContext,
  instances: readonly CloudInstance[],
  slurm: SlurmView | undefined,
): Promise<void> {
  const { store, provider, agent } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  const live = new Set(instances.filter((i) => i.state !== "TERMINATING").map((i) => i.id));
  for (const record of await store.listNodes(clusterId)) {
    if (record.status !== "TERMINATING" || !live.has(record.instanceId)) continue;
    if (now - record.updatedAt < o.releaseRetryMs) continue;
    // Without Slurm's view nobody knows whether it took a job meanwhile; with a job, drain and wait.
    if (slurm === undefined) continue;
    if (slurm.busy.has(record.nodeName)) {
      await agent.drain(record.nodeName, "nowscale: release pending").catch(() => undefined);
      continue;
    }
    await provider.terminate([record.instanceId]);
    summary.releasesRetried.push(record.nodeName);
  }
}

/** 4. Nodes that never joined: boot timeouts (launched) and orphans (adopted), on two runs that agree. */
async function bootTimeouts(ctx: RunContext, slurm: SlurmView): Promise<void> {
  const { store, clock, metrics } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  for (const record of await store.listNodes(clusterId)) {
    if (record.status !== "LAUNCHING") continue;
    if (slurm.listed.has(record.nodeName)) {
      await recordJoin(ctx.deps, ctx.cluster, record, now);
      continue;
    }
    const adopted = record.origin === "adopted";
    if (now - record.launchedAt < (adopted ? o.orphanGraceMs : o.bootTimeoutMs)) continue;
    if (record.absentSince === undefined) {
      // First run to see it absent past the limit: the next run decides (one report never destroys).
      await store.markNode(clusterId, record.nodeName, { absentSince: now });
      continue;
    }
    // The boot's last console lines say why (read before the terminate, while the cloud still has them).
    const consoleLines = adopted ? undefined : await bootConsoleTail(ctx.deps.provider, record.instanceId);
    // It never joined, so Slurm has no node to forget.
    await retireNode({ ...ctx.deps, log: ctx.log }, clusterId, record, now, { inSlurm: false });
    if (adopted) {
      summary.orphansTerminated.push(record.nodeName);
      metrics.add("OrphansTerminated", "Count", 1);
      await event(
        store,
        clusterId,
        clock,
        "ORPHAN_TERMINATED",
        `untracked instance never joined Slurm within ${Math.round(o.orphanGraceMs / 1000)} s: terminated`,
        record.queue,
        [record.nodeName],
        1,
      );
      continue;
    }
    summary.bootTimeouts.push(record.nodeName);
    metrics.add("BootstrapFailures", "Count", 1, { Queue: record.queue });
    const before = await store.getCluster(clusterId);
    const wasProtected = before !== undefined && queueHealthOf(before, record.queue)?.protected === true;
    const health = await store.recordBootstrapFailure(
      clusterId,
      record.queue,
      o.protectAfterFailures,
      now,
      offeringKey(record.instanceType, record.zone),
    );
    await event(
      store,
      clusterId,
      clock,
      "BOOTSTRAP_FAILED",
      `did not join Slurm within ${Math.round(o.bootTimeoutMs / 1000)} s (${health.consecutiveBootstrapFailures} in a row)` +
        (consoleLines === undefined ? "" : `; console log ends:\n${consoleLines}`),
      record.queue,
      [record.nodeName],
    );
    if (health.protected && !wasProtected) {
      summary.protectedQueues.push(record.queue);
      metrics.add("ProtectedQueues", "Count", 1, { Queue: record.queue });
      await event(
        store,
        clusterId,
        clock,
        "PROTECTED_MODE",
        `${health.consecutiveBootstrapFailures} bootstrap failures in a row: ${(health.failedOfferings ?? []).join(", ") || "the queue"} no longer launched until a node joins or an operator resets`,
        record.queue,
      );
    }
  }
}

/** Lines of a failed boot's console shown in its event (the event stays small: DynamoDB items are bounded). */
export const BOOT_CONSOLE_LINES = 8;

/** The last lines of the instance's console, at most 1500 characters; undefined when the cloud keeps none. */
async function bootConsoleTail(provider: CloudProvider, instanceId: string): Promise<string | undefined> {
  if (provider.consoleOutput === undefined) return undefined;
  const text = await provider.consoleOutput(instanceId, BOOT_CONSOLE_LINES).catch(() => undefined);
  if (text === undefined || text.trim() === "") return undefined;
  return text.length > 1500 ? `…${text.slice(-1500)}` : text;
}

/** 5. Joined nodes that are DOWN, not responding or lost by Slurm past the grace, running no job: retired. */
async function retireUnhealthy(ctx: RunContext, slurm: SlurmView, report: OkReport): Promise<void> {
  const { store, clock, metrics } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  for (const record of await store.listNodes(clusterId)) {
    if (record.status !== "JOINED" && record.status !== "DRAINING") continue;
    const bad = slurm.unhealthy.has(record.nodeName) || !slurm.listed.has(record.nodeName);
    if (!bad || slurm.busy.has(record.nodeName)) {
      if (record.downSince !== undefined)
        await store.markNode(clusterId, record.nodeName, { downSince: null });
      continue;
    }
    if (record.downSince === undefined) {
      await store.markNode(clusterId, record.nodeName, { downSince: now });
      continue;
    }
    if (now - record.downSince < o.downGraceMs) continue;
    await retireNode({ ...ctx.deps, log: ctx.log }, clusterId, record, now, {
      inSlurm: slurm.listed.has(record.nodeName),
    });
    summary.retired.push(record.nodeName);
    metrics.add("NodesTerminated", "Count", 1, { Queue: record.queue });
    const state = report.nodes.find((n) => n.name === record.nodeName)?.slurmState ?? "not in Slurm";
    await event(
      store,
      clusterId,
      clock,
      "NODE_RETIRED",
      `${state} for ${Math.round((now - record.downSince) / 1000)} s and running no job: terminated, its demand goes elsewhere`,
      record.queue,
      [record.nodeName],
    );
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
