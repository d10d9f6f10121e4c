import type { AgentChannel } from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudInstance, CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterRecord, LaunchIntent, NodeRecord, StateStore } from "../ports/state-store.js";
import { appendControlEvent as event } from "./events.js";
import { ABANDONED_INTENT_MS, offeringKey, queueHealthOf } from "./launch.js";
import { type ControlLog, silentLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { recordJoin } from "./node-join.js";
import { RetirementOvertakenError, retireNode } from "./node-retirement.js";
import {
  bootActions,
  goneActions,
  goneSuspects,
  healthActions,
  intentClosures,
  planAdoptions,
  releaseActions,
  type SlurmView,
  slurmView,
} from "./reconcile-decision.js";
import { retireSleepingNodes } from "./sleep.js";
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
  /**
   * A step that destroys on Slurm's view (releases, boot timeouts, retirements) reads Slurm again when
   * the run's report is older than this (earlier steps slowed by throttling, slow describes). @default 15000
   */
  reportMaxAgeMs?: number;
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
  reportMaxAgeMs: 15_000,
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
 * workflow created (the master: ids in `resources`) are never touched. Each step reads, asks its pure
 * decision in reconcile-decision.ts what to do, and does it in that order.
 */
export async function reconcileCluster(
  clusterId: string,
  deps: ReconcilerDeps,
  options: ReconcilerOptions = {},
): Promise<ReconcileSummary> {
  const o = { ...DEFAULTS, ...definedOnly(options) };
  const { store, provider, clock } = deps;
  const log = deps.log ?? silentLog;
  const summary = emptySummary(clusterId);

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
    let report = await readReport(ctx);
    let readAt = clock.now();
    let slurm = report === undefined ? undefined : slurmView(report);
    // Slurm's view for a step that destroys on it: read again when the run's is older than the limit (a
    // node may have come back and taken a job since); unreadable now, the step waits for the next run.
    const recentSlurm = async (): Promise<SlurmView | undefined> => {
      if (report === undefined || clock.now() - readAt <= o.reportMaxAgeMs) return slurm;
      report = await readReport(ctx);
      readAt = clock.now();
      slurm = report === undefined ? undefined : slurmView(report);
      return slurm;
    };
    const adoptedRounds = new Set<string>();

    if (instances !== undefined) {
      const listed = instances;
      await step(ctx, "adopt", () => adopt(ctx, listed, intents, slurm, adoptedRounds));
      await step(ctx, "gone", () => forgetGone(ctx, listed, slurm));
      await step(ctx, "releases", async () => retryReleases(ctx, listed, await recentSlurm()));
    }
    await step(ctx, "boot", async () => {
      const view = await recentSlurm();
      if (view !== undefined) await bootTimeouts(ctx, view);
    });
    await step(ctx, "retire", async () => {
      const view = await recentSlurm();
      if (view !== undefined) await retireUnhealthy(ctx, view);
    });
    // A sleeping cluster's compute nodes, drained by sleep, retired as their jobs end (lib/control/sleep.ts).
    if (slurm !== undefined && cluster.status === "SLEEPING")
      await step(ctx, "asleep", async () => {
        summary.retired.push(...(await retireSleepingNodes({ ...deps, log }, clusterId)).retired);
      });
    await step(ctx, "intents", () => closeStaleIntents(ctx, intents, adoptedRounds));
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

/** The agent's report, or undefined when the agent cannot give one (summary.agentReachable says which). */
async function readReport(ctx: RunContext): Promise<OkReport | undefined> {
  try {
    const report = await ctx.deps.agent.report();
    ctx.summary.agentReachable = true;
    return report;
  } catch (error) {
    ctx.log.warn("agent unreachable: decisions that need Slurm's view wait for the next run", {
      clusterId: ctx.clusterId,
      error: (error as Error).message,
    });
    return undefined;
  }
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
  intents: readonly LaunchIntent[],
  slurm: SlurmView | undefined,
  adoptedRounds: Set<string>,
): Promise<void> {
  const { store, clock } = ctx.deps;
  const { clusterId, summary } = ctx;
  const tracked = new Set(
    (await retryTransient(() => store.listNodes(clusterId), clock)).map((r) => r.instanceId),
  );
  const plan = planAdoptions(clusterId, instances, tracked, intents, slurm, ctx.now);
  for (const { instance, record, intentRound } of plan.adoptions) {
    await retryTransient(() => store.putNode({ ...record, updatedAt: clock.now() }), clock);
    summary.adopted.push(instance.id);
    if (intentRound !== undefined) adoptedRounds.add(intentRound);
  }
  for (const [round, adopted] of plan.byRound) {
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
  const { orphans } = plan;
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
  const { relisted, unlisted } = goneSuspects(records, instances, now, o);
  for (const r of relisted) await store.markNode(clusterId, r.nodeName, { missingSince: null });
  if (unlisted.length === 0) return;
  // The listing is one observation; a describe by id is a second, independent one.
  const described = new Map(
    (await provider.describe(unlisted.map((r) => r.instanceId))).map((i) => [i.id, i]),
  );
  for (const action of goneActions(unlisted, described, slurm, now, o)) {
    const record = action.record;
    if (action.kind === "clear-mark") {
      await store.markNode(clusterId, record.nodeName, { missingSince: null });
      continue;
    }
    if (action.kind === "mark") {
      await store.markNode(clusterId, record.nodeName, { missingSince: now });
      continue;
    }
    if (action.kind === "busy") {
      ctx.log.warn("instance gone but Slurm still runs a job on its node: waiting", {
        clusterId,
        node: record.nodeName,
      });
      continue;
    }
    if (action.deleteFromSlurm) {
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
    await event(store, clusterId, clock, "NODE_GONE", action.reason, record.queue, [record.nodeName]);
  }
}

/** 3. TERMINATING records whose instance still runs: terminate again (drain first if Slurm gave it a job). */
async function retryReleases(
  ctx: RunContext,
  instances: readonly CloudInstance[],
  slurm: SlurmView | undefined,
): Promise<void> {
  const { store, provider, agent } = ctx.deps;
  const records = await store.listNodes(ctx.clusterId);
  for (const { kind, record } of releaseActions(records, instances, slurm, ctx.now, ctx.o)) {
    if (kind === "drain") {
      await agent.drain(record.nodeName, "nowscale: release pending").catch(() => undefined);
      continue;
    }
    await provider.terminate([record.instanceId]);
    ctx.summary.releasesRetried.push(record.nodeName);
  }
}

/** 4. Nodes that never joined: boot timeouts (launched) and orphans (adopted), on two runs that agree. */
async function bootTimeouts(ctx: RunContext, slurm: SlurmView): Promise<void> {
  const { store, clock, metrics } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  for (const action of bootActions(await store.listNodes(clusterId), slurm, now, o)) {
    const record = action.record;
    if (action.kind === "joined") {
      await recordJoin(ctx.deps, ctx.cluster, record, now);
      continue;
    }
    if (action.kind === "mark") {
      // First run to see it absent past the limit: the next run decides (one report never destroys).
      await store.markNode(clusterId, record.nodeName, { absentSince: now });
      continue;
    }
    const adopted = action.kind === "orphan";
    // The boot's last console lines say why (read before the terminate, while the cloud still has them).
    const consoleLines = adopted ? undefined : await bootConsoleTail(ctx.deps.provider, record.instanceId);
    // It never joined, so Slurm has no node to forget.
    if (!(await retiredUnlessOvertaken(ctx, record, now, false))) continue;
    if (adopted) {
      summary.orphansTerminated.push(record.nodeName);
      metrics.add("OrphansTerminated", "Count", 1);
      await event(
        store,
        clusterId,
        clock,
        "ORPHAN_TERMINATED",
        action.reason,
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
      `${action.reason} (${health.consecutiveBootstrapFailures} in a row)` +
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

/**
 * Retires a node the run decided on; false, with nothing terminated, when another writer moved its record
 * since this run read it (a slow boot that joined, a node resumed by hand): the next run decides again.
 */
async function retiredUnlessOvertaken(
  ctx: RunContext,
  record: NodeRecord,
  now: number,
  inSlurm: boolean,
): Promise<boolean> {
  try {
    await retireNode({ ...ctx.deps, log: ctx.log }, ctx.clusterId, record, now, { inSlurm });
    return true;
  } catch (error) {
    if (!(error instanceof RetirementOvertakenError)) throw error;
    ctx.log.info("retirement overtaken: the record moved since this run read it", {
      clusterId: ctx.clusterId,
      node: record.nodeName,
      error: error.message,
    });
    return false;
  }
}

/** 5. Joined nodes that are DOWN, not responding or lost by Slurm past the grace, running no job: retired. */
async function retireUnhealthy(ctx: RunContext, slurm: SlurmView): Promise<void> {
  const { store, clock, metrics } = ctx.deps;
  const { clusterId, summary, now, o } = ctx;
  for (const action of healthActions(await store.listNodes(clusterId), slurm, now, o)) {
    const record = action.record;
    if (action.kind === "clear-mark") {
      await store.markNode(clusterId, record.nodeName, { downSince: null });
      continue;
    }
    if (action.kind === "mark") {
      await store.markNode(clusterId, record.nodeName, { downSince: now });
      continue;
    }
    if (!(await retiredUnlessOvertaken(ctx, record, now, action.inSlurm))) continue;
    summary.retired.push(record.nodeName);
    metrics.add("NodesTerminated", "Count", 1, { Queue: record.queue });
    await event(store, clusterId, clock, "NODE_RETIRED", action.reason, record.queue, [record.nodeName]);
  }
}

/** 6. Intents left INTENDED with nothing started are closed (LAUNCHED with what their round recorded, or FAILED). */
async function closeStaleIntents(
  ctx: RunContext,
  intents: readonly LaunchIntent[],
  adoptedRounds: ReadonlySet<string>,
): Promise<void> {
  const { store } = ctx.deps;
  const records = await store.listNodes(ctx.clusterId);
  for (const { round, outcome } of intentClosures(intents, records, adoptedRounds, ctx.now, ctx.o)) {
    await store
      .recordLaunchOutcome(ctx.clusterId, round, outcome)
      .then(() => ctx.summary.intentsClosed.push(round))
      .catch(ignoreConflict);
  }
}

function emptySummary(clusterId: string): ReconcileSummary {
  return {
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
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
