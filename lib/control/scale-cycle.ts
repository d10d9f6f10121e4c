import { parseConfig, type ResolvedConfig } from "../core/config.js";
import type { ClusterState, Decision, Launch, Shrink } from "../core/model.js";
import {
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import { type OkReport, reportToClusterState } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import {
  type ClusterRecord,
  type Lease,
  LeaseLostError,
  type NodeRecord,
  type StateStore,
} from "../ports/state-store.js";
import { appendControlEvent as event } from "./events.js";
import { jobNoteChanges, noteKey } from "./job-notes.js";
import { type KnownSupply, recordedLaunch } from "./launch.js";
import { type ControlLog, silentLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { recordJoin } from "./node-join.js";
import {
  RetirementOvertakenError,
  retireDrainedNodes,
  retireNode,
  stillAsPlanned,
} from "./node-retirement.js";
import { placeholdersToSync } from "./placeholder-sync.js";
import { decidePoll, idleOnOurClock, joinedSinceLastPoll } from "./poll-decision.js";
import { nodesRunningJobs } from "./slurm-evidence.js";
import { ignoreConflict } from "./store-retry.js";

export { appendControlEvent } from "./events.js";
export { ROUND_TAG, recordedLaunch } from "./launch.js";

export interface ScaleCycleDeps {
  store: StateStore;
  agent: AgentChannel;
  provider: CloudProvider;
  clock: Clock;
  metrics: MetricsSink;
  log?: ControlLog;
  /** Who holds the lease: the Lambda request id (unique per invocation). */
  owner: string;
  /** The node's boot script for a launch; none when undefined. */
  userData?: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  /**
   * The cluster's record as the caller has just read it (the Lambda reads it to build its ports): the
   * cycle's first poll uses it instead of reading it twice more; later polls read it afresh.
   * @default read by the cycle
   */
  cluster?: ClusterRecord;
  /** Shrink decisions carried over from the cluster's previous cycle. @default a new, empty memory */
  shrinkMemory?: ShrinkMemory;
  /**
   * The wait between two polls; resolving before `pollMs` polls early (a wake: lib/control/wake.ts).
   * @default clock.sleep(pollMs)
   */
  betweenPolls?: (pollMs: number) => Promise<void>;
}

export interface ScaleCycleOptions {
  /** How long one invocation keeps polling. @default 50000 (a Lambda invoked every minute) */
  windowMs?: number;
  /** Time between polls. @default 15000 */
  pollMs?: number;
  /** Lease time; renewed before every poll and every launch. @default 60000 */
  leaseTtlMs?: number;
  /** A launch needs at least this much lease left, or the heartbeat counts as stale. @default 10000 */
  leaseMarginMs?: number;
}

export type CycleOutcome =
  | "done"
  | "lease-held-elsewhere"
  | "lease-lost"
  | "not-running"
  | "cluster-missing"
  | "config-invalid";

export interface CycleSummary {
  clusterId: string;
  outcome: CycleOutcome;
  polls: number;
  launchedNodes: number;
  launchFailures: number;
  drained: string[];
  terminated: string[];
}

const leaseKey = (clusterId: string) => `scaler#${clusterId}`;

/**
 * One scaler invocation for one cluster: take the cluster's lease, then poll → plan → act several
 * times inside the window, renewing the lease before each poll and each launch. The lease is the
 * heartbeat: when it cannot be renewed (expired, taken over) the cycle stops at once and launches nothing.
 */
export async function runScaleCycle(
  clusterId: string,
  deps: ScaleCycleDeps,
  options: ScaleCycleOptions = {},
): Promise<CycleSummary> {
  const windowMs = options.windowMs ?? 50_000;
  const pollMs = options.pollMs ?? 15_000;
  const ttlMs = options.leaseTtlMs ?? 60_000;
  const marginMs = options.leaseMarginMs ?? 10_000;
  const { store, clock, metrics } = deps;
  const log = deps.log ?? silentLog;
  const started = clock.now();
  const summary: CycleSummary = {
    clusterId,
    outcome: "done",
    polls: 0,
    launchedNodes: 0,
    launchFailures: 0,
    drained: [],
    terminated: [],
  };

  const first = deps.cluster?.clusterId === clusterId ? deps.cluster : await store.getCluster(clusterId);
  if (first === undefined) return { ...summary, outcome: "cluster-missing" };
  if (first.status !== "RUNNING") return { ...summary, outcome: "not-running" };
  const acquired = await store.acquireLease(leaseKey(clusterId), deps.owner, ttlMs, started);
  if (acquired === undefined) return { ...summary, outcome: "lease-held-elsewhere" };

  const holder = new LeaseHolder(store, clock, acquired, ttlMs, marginMs);
  const agreed = deps.shrinkMemory ?? new ShrinkMemory();
  try {
    for (let poll = 0; ; poll++) {
      // The first poll follows the read above by milliseconds (and launches are fenced on the status).
      const cluster = poll === 0 ? first : await store.getCluster(clusterId);
      if (cluster === undefined || cluster.status !== "RUNNING") {
        summary.outcome = cluster === undefined ? "cluster-missing" : "not-running";
        break;
      }
      let config: ResolvedConfig;
      try {
        config = parseConfig(cluster.autoscaling, "autoscaling configuration");
      } catch (error) {
        await event(
          store,
          clusterId,
          clock,
          "CYCLE_ERROR",
          `configuration invalid: ${(error as Error).message}`,
        );
        metrics.add("CycleErrors", "Count", 1);
        summary.outcome = "config-invalid";
        break;
      }
      summary.polls += 1;
      await pollOnce({
        deps,
        log,
        holder,
        cluster,
        config,
        round: `${started.toString(36)}-f${acquired.fence}-p${poll}`,
        summary,
        agreed,
      });
      if (clock.now() + pollMs - started > windowMs) break;
      await (deps.betweenPolls?.(pollMs) ?? clock.sleep(pollMs));
      await holder.renew();
    }
  } catch (error) {
    if (!(error instanceof LeaseLostError)) {
      metrics.add("CycleErrors", "Count", 1);
      throw error;
    }
    log.warn("lease lost: the cycle stops", { clusterId });
    summary.outcome = "lease-lost";
  } finally {
    metrics.add("CycleDuration", "Milliseconds", clock.now() - started);
    if (summary.outcome !== "lease-lost") await store.releaseLease(holder.lease).catch(() => undefined);
  }
  return summary;
}

/** The lease and its renewal; `fresh()` is the heartbeat check before anything is launched. */
class LeaseHolder {
  constructor(
    private readonly store: StateStore,
    private readonly clock: Clock,
    public lease: Lease,
    private readonly ttlMs: number,
    private readonly marginMs: number,
  ) {}

  /** Extends the lease (a conditional write): LeaseLostError when another holder has it. */
  async renew(): Promise<void> {
    this.lease = await this.store.renewLease(this.lease, this.ttlMs, this.clock.now());
  }

  /** Renews, then refuses (LeaseLostError) if the lease would not outlast the next action. */
  async fresh(): Promise<void> {
    if (this.lease.expiresAtMs <= this.clock.now()) {
      throw new LeaseLostError(`lease ${this.lease.key} expired before the action`);
    }
    await this.renew();
    if (this.lease.expiresAtMs - this.clock.now() < this.marginMs) {
      throw new LeaseLostError(`lease ${this.lease.key} is too close to expiry`);
    }
  }
}

interface PollContext {
  deps: ScaleCycleDeps;
  log: ControlLog;
  holder: LeaseHolder;
  cluster: ClusterRecord;
  config: ResolvedConfig;
  /** Prefix of this poll's launch rounds. */
  round: string;
  summary: CycleSummary;
  /**
   * Shrinks ("node action") the previous poll's report also called for. Destroying needs two reports in
   * a row that agree: a node flapped to idle or drained in one report is not drained or terminated.
   */
  agreed: ShrinkMemory;
}

/**
 * The shrink decisions of the last poll that had a report; a poll without one breaks the chain. One per
 * cluster: a scale cycle makes its own unless its caller keeps one across cycles (the local mode runs one
 * poll per cycle, so it passes the same memory to every cycle of a cluster).
 */
export class ShrinkMemory {
  private previous = new Set<string>();

  /** True when the previous report called for the same action on the same node; remembers it for the next. */
  confirm(next: Set<string>, shrink: Shrink): boolean {
    const key = `${shrink.node} ${shrink.action}`;
    next.add(key);
    return this.previous.has(key);
  }

  commit(next: Set<string>): void {
    this.previous = next;
  }

  forget(): void {
    this.previous = new Set();
  }

  /** What the previous poll already told in events (jobs not served, Slurm mismatches): told once per stretch. */
  readonly notices = new NoticeMemory();

  /** The job notes written in the previous polls (job-notes.ts): each written once per stretch. */
  readonly jobNotes = new NoticeMemory();

  /** The placeholder sets synced in the previous polls (placeholder-sync.ts): each asked once per stretch. */
  readonly placeholders = new NoticeMemory();
}

/** Keys of notices the previous poll carried: a notice becomes an event when it is new, not every poll. */
export class NoticeMemory {
  private previous = new Set<string>();

  /** True when `key` was not in the previous poll's notices; remembers it for the next. */
  isNew(next: Set<string>, key: string): boolean {
    next.add(key);
    return !this.previous.has(key);
  }

  commit(next: Set<string>): void {
    this.previous = next;
  }
}

/** Skip codes that mean NowScale will not serve the job as it stands: told as JOB_NOT_SERVED events. */
const NOT_SERVED: ReadonlySet<string> = new Set([
  "NO_FITTING_SHAPE",
  "JOB_LARGER_THAN_MAX_SIZE",
  "CONSTRAINT_UNSATISFIABLE",
  "CONSTRAINT_NOT_UNDERSTOOD",
  "NOT_STARTED_BY_SLURM",
  "NO_CAPACITY",
  "BEST_FIT_UNAVAILABLE",
]);

/** At most this many notice events per poll; the rest wait for a later poll. */
const MAX_NOTICES_PER_POLL = 20;

/**
 * The planner's reasons where people look: a job NowScale will not serve, and an idle node Slurm did not
 * use for a job NowScale read as fitting (the safety net), each an event once while it lasts.
 */
async function tellDecision(ctx: PollContext, decision: Decision): Promise<void> {
  const { store, clock } = ctx.deps;
  const clusterId = ctx.cluster.clusterId;
  const next = new Set<string>();
  let told = 0;
  for (const skip of decision.skipped) {
    if (!("job" in skip) || !NOT_SERVED.has(skip.code)) continue;
    if (!ctx.agreed.notices.isNew(next, `job ${skip.job} ${skip.code}`) || told >= MAX_NOTICES_PER_POLL)
      continue;
    told++;
    await event(
      store,
      clusterId,
      clock,
      "JOB_NOT_SERVED",
      `job ${skip.job}: ${skip.reason}`.slice(0, 500),
      skip.queue,
      undefined,
      skip.copies,
    );
  }
  for (const m of decision.mismatches) {
    if (!ctx.agreed.notices.isNew(next, `mismatch ${m.node} ${m.job}`) || told >= MAX_NOTICES_PER_POLL)
      continue;
    told++;
    await event(
      store,
      clusterId,
      clock,
      "SLURM_MISMATCH",
      `node ${m.node}: ${m.reason}`.slice(0, 500),
      m.queue,
      [m.node],
    );
  }
  ctx.agreed.notices.commit(next);
}

/**
 * One poll, in three phases: observe (the agent's report, the records, the intents, the provider's
 * unavailable offerings; nodes that joined are recorded on the way), decide (`decidePoll`, pure), act
 * (launch, tell, note, shrink what two reports in a row called for).
 */
async function pollOnce(ctx: PollContext): Promise<void> {
  const { deps, cluster } = ctx;
  const { store, clock, metrics } = deps;
  const clusterId = cluster.clusterId;

  // Observe.
  const read = await readReport(ctx);
  if (read === undefined) return;
  const { report, seen } = read;
  // Intents before records (as admission reads them): a launch finishing in between is seen either way.
  const intents = await store.listLaunchIntents(clusterId, "INTENDED");
  const records = await store.listNodes(clusterId);
  const now = clock.now();
  // Nodes that registered since the last poll: joined, and their queue's bootstrap streak is broken.
  for (const record of joinedSinceLastPoll(records, seen)) await recordJoin(deps, cluster, record, now);
  const unavailable = await deps.provider.unavailableOfferings();

  // Decide.
  const next = decidePoll({
    cluster,
    config: ctx.config,
    seen,
    records,
    intents,
    unavailable,
    now,
    round: ctx.round,
  });

  // Act.
  emitStateMetrics(metrics, next.state);
  await tellDecision(ctx, next.decision);
  for (const step of next.launches) {
    if (step.kind === "protected") {
      metrics.add("ProtectedQueues", "Count", 1, { Queue: step.queue });
      ctx.log.warn("queue in protected mode: launch skipped", { clusterId, queue: step.queue });
      continue;
    }
    await launchOne(ctx, step.launch, step.round, next.state.jobs, next.known);
  }
  await writeJobNotes(ctx, report, next.notServed);
  await syncPlaceholders(ctx, report);
  await shrinkAgreed(ctx, next.decision.shrinks, records, next.state);
}

/**
 * The agent's report and the cluster state it describes; undefined when the agent, slurmctld or the
 * report cannot be trusted this poll (told as an event, and the shrink memory's chain is broken).
 */
async function readReport(ctx: PollContext): Promise<{ report: OkReport; seen: ClusterState } | undefined> {
  const { store, clock, metrics } = ctx.deps;
  const clusterId = ctx.cluster.clusterId;
  try {
    const report = await ctx.deps.agent.report();
    const seen = idleOnOurClock(reportToClusterState(report), Date.parse(report.generatedAt), clock.now());
    return { report, seen };
  } catch (error) {
    const kind = error instanceof SlurmctldUnreachableError ? "SLURMCTLD_UNREACHABLE" : "AGENT_UNREACHABLE";
    if (!(error instanceof AgentUnreachableError || error instanceof SlurmctldUnreachableError)) {
      // reportToClusterState refused the report: treat it as an agent we cannot trust.
      ctx.log.warn("agent report rejected", { clusterId, error: (error as Error).message });
    }
    metrics.add("AgentUnreachable", "Count", 1, { Reason: kind });
    await event(store, clusterId, clock, kind, (error as Error).message.slice(0, 500));
    ctx.agreed.forget();
    return undefined;
  }
}

/** Shrinks the planner called for that the previous report also called for; each node's failure isolated. */
async function shrinkAgreed(
  ctx: PollContext,
  shrinks: readonly Shrink[],
  records: NodeRecord[],
  planned: ClusterState,
): Promise<void> {
  const calledFor = new Set<string>();
  const agreed = shrinks.filter((shrink) => ctx.agreed.confirm(calledFor, shrink));
  ctx.agreed.commit(calledFor);
  const confirmed = await terminatesStillAsPlanned(ctx, agreed, planned);
  const drainedNow: NodeRecord[] = [];
  for (const shrink of confirmed) {
    try {
      const drained = await shrinkOne(ctx, shrink, records);
      if (drained !== undefined) drainedNow.push(drained);
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      if (error instanceof RetirementOvertakenError) {
        // Its record moved since this poll read it (resumed by hand, say): the next poll decides again.
        ctx.log.info("shrink overtaken", { clusterId: ctx.cluster.clusterId, node: shrink.node });
        continue;
      }
      // One node that cannot be drained or terminated now must not stop the others; the next poll retries.
      ctx.deps.metrics.add("CycleErrors", "Count", 1);
      ctx.log.warn("shrink failed", {
        clusterId: ctx.cluster.clusterId,
        node: shrink.node,
        error: (error as Error).message,
      });
    }
  }
  await terminateDrainedNow(ctx, drainedNow);
}

/**
 * The shrinks less the terminates Slurm no longer agrees with: the poll's report was read before its
 * launches, notes and drains, so each terminate is checked on a report read now (`stillAsPlanned`: the
 * node as the plan saw it, with no job). Slurm unreadable now: no terminate this poll.
 */
async function terminatesStillAsPlanned(
  ctx: PollContext,
  shrinks: Shrink[],
  planned: ClusterState,
): Promise<Shrink[]> {
  if (!shrinks.some((s) => s.action === "terminate")) return shrinks;
  const clusterId = ctx.cluster.clusterId;
  let report: OkReport;
  try {
    report = await ctx.deps.agent.report();
  } catch (error) {
    ctx.log.warn("Slurm could not be read before the terminates: none this poll", {
      clusterId,
      error: (error as Error).message.slice(0, 300),
    });
    return shrinks.filter((s) => s.action !== "terminate");
  }
  const states = new Map(planned.nodes.map((n) => [n.name, n.state]));
  const busy = nodesRunningJobs(report);
  return shrinks.filter((shrink) => {
    if (shrink.action !== "terminate") return true;
    const why = stillAsPlanned(report, shrink.node, states.get(shrink.node), busy);
    if (why !== undefined) ctx.log.info("terminate not carried out", { clusterId, node: shrink.node, why });
    return why === undefined;
  });
}

/**
 * Same-poll terminate (issue 15): the nodes this poll drained are read back from Slurm at once, and each
 * one Slurm shows DRAINED with no job is terminated and removed from Slurm now, not a poll later
 * (node-retirement.ts, `retireDrainedNodes`, says on what evidence).
 */
async function terminateDrainedNow(ctx: PollContext, drained: NodeRecord[]): Promise<void> {
  if (drained.length === 0) return;
  const { deps, summary } = ctx;
  const { store, clock, metrics } = deps;
  const clusterId = ctx.cluster.clusterId;
  await ctx.holder.fresh();
  const { retired, kept } = await retireDrainedNodes({ ...deps, log: ctx.log }, clusterId, drained, () =>
    clock.now(),
  );
  for (const record of retired) {
    summary.terminated.push(record.nodeName);
    metrics.add("NodesTerminated", "Count", 1, { Queue: record.queue });
    await event(
      store,
      clusterId,
      clock,
      "TERMINATED",
      "drained and holds no job: terminated in the poll that drained it",
      record.queue,
      [record.nodeName],
    );
  }
  for (const k of kept) ctx.log.info("drained node kept for a later poll", { clusterId, ...k });
}

/**
 * Puts the planner's reasons where users look (`squeue -O jobid,comment`): the notes that differ from
 * what the report says the jobs hold, at most MAX_NOTES_PER_POLL, in one agent call. A failed call is
 * logged and retried at the next poll; it never stops the cycle.
 */
async function writeJobNotes(
  ctx: PollContext,
  report: OkReport,
  reasons: ReadonlyMap<string, string>,
): Promise<void> {
  const memory = ctx.agreed.jobNotes;
  const next = new Set<string>();
  const notes = jobNoteChanges(report, reasons, (key) => memory.isNew(next, key));
  if (notes.length > 0) {
    try {
      await ctx.deps.agent.setJobNotes(notes);
    } catch (error) {
      for (const note of notes) next.delete(noteKey(note));
      ctx.log.warn("job notes not written", {
        clusterId: ctx.cluster.clusterId,
        error: (error as Error).message,
      });
    }
  }
  memory.commit(next);
}

/**
 * Keeps the placeholder FUTURE nodes in step with the configuration: when the report's differ from what
 * the configuration needs (a queue, type, shape, zone or feature changed), one agent call syncs them.
 * Never capacity: the planner never sees them. A failed call is logged and retried at the next poll.
 */
async function syncPlaceholders(ctx: PollContext, report: OkReport): Promise<void> {
  const memory = ctx.agreed.placeholders;
  const next = new Set<string>();
  const wanted = placeholdersToSync(report, ctx.config);
  if (wanted !== undefined && memory.isNew(next, wanted.key)) {
    try {
      const { created, removed } = await ctx.deps.agent.syncPlaceholders(wanted.specs);
      ctx.log.info("placeholders synced", { clusterId: ctx.cluster.clusterId, created, removed });
    } catch (error) {
      next.delete(wanted.key);
      ctx.log.warn("placeholders not synced", {
        clusterId: ctx.cluster.clusterId,
        error: (error as Error).message,
      });
    }
  }
  memory.commit(next);
}

/** Slurm takes 1-200 printable ASCII characters as a reason. */
function drainReason(reason: string): string {
  return `nowscale: ${reason}`.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

/** Record the intent (with its tokens) → call the provider → record the outcome, in that order. */
async function launchOne(
  ctx: PollContext,
  launch: Launch,
  round: string,
  jobs: ClusterState["jobs"],
  known: KnownSupply,
) {
  await ctx.holder.fresh(); // a stale heartbeat refuses the launch (LeaseLostError stops the cycle)
  const { outcome, refused, message } = await recordedLaunch(ctx.deps, ctx.cluster, launch, round, jobs, {
    knownAtPlan: known,
  });
  // This cycle's own launches were planned for: the next launch of the poll must not count them as new.
  known.rounds.add(round);
  for (const i of outcome?.instances ?? []) known.instances.add(i.id);
  if (refused !== undefined && refused !== "round-recorded") {
    ctx.log.info("launch not admitted", {
      clusterId: ctx.cluster.clusterId,
      queue: launch.queue,
      refused,
      message,
    });
  }
  if (outcome === undefined) return;
  ctx.summary.launchedNodes += outcome.instances.length;
  ctx.summary.launchFailures += outcome.failures.length;
}

/**
 * Drain through the agent; terminate only a drained node NowScale launched (a node record exists).
 * Answers the record of a node it drained (as the store now holds it), for the same-poll terminate.
 */
async function shrinkOne(
  ctx: PollContext,
  shrink: Shrink,
  records: NodeRecord[],
): Promise<NodeRecord | undefined> {
  const { deps, cluster, summary } = ctx;
  const { store, clock, metrics } = deps;
  const clusterId = cluster.clusterId;
  const record = records.find((r) => r.nodeName === shrink.node);
  await ctx.holder.fresh();
  if (shrink.action === "drain") {
    await deps.agent.drain(shrink.node, drainReason(shrink.reason));
    if (record?.status === "JOINED") {
      await store
        .updateNodeStatus(clusterId, shrink.node, "JOINED", "DRAINING", clock.now())
        .catch(ignoreConflict);
    }
    summary.drained.push(shrink.node);
    metrics.add("NodesDrained", "Count", 1, { Queue: shrink.queue });
    await event(store, clusterId, clock, "DRAINED", shrink.reason.slice(0, 500), shrink.queue, [shrink.node]);
    return record === undefined
      ? undefined
      : { ...record, status: record.status === "JOINED" ? "DRAINING" : record.status };
  }
  if (record === undefined) {
    ctx.log.warn("drained node has no record: not terminated", { clusterId, node: shrink.node });
    return undefined;
  }
  await retireNode({ ...deps, log: ctx.log }, clusterId, record, clock.now());
  summary.terminated.push(record.nodeName);
  metrics.add("NodesTerminated", "Count", 1, { Queue: shrink.queue });
  await event(store, clusterId, clock, "TERMINATED", shrink.reason.slice(0, 500), shrink.queue, [
    record.nodeName,
  ]);
  return undefined;
}

function emitStateMetrics(metrics: MetricsSink, state: ClusterState): void {
  const pending = state.jobs.filter((j) => j.state === "PENDING").reduce((s, j) => s + j.count, 0);
  metrics.add("PendingDemand", "Count", pending);
  metrics.add("NodesLaunching", "Count", state.nodes.filter((n) => n.state === "LAUNCHING").length);
  metrics.add(
    "NodesRunning",
    "Count",
    state.nodes.filter((n) => n.state === "MIXED" || n.state === "ALLOCATED").length,
  );
  metrics.add("NodesIdle", "Count", state.nodes.filter((n) => n.state === "IDLE").length);
}
