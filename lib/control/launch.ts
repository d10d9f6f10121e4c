import { parseConfig } from "../core/config.js";
import type { ClusterState, Launch } from "../core/model.js";
import { ownValue } from "../core/own.js";
import type { Clock } from "../ports/clock.js";
import type { CloudInstance, CloudProvider, LaunchCandidate } from "../ports/cloud-provider.js";
import { CloudProviderError } from "../ports/errors.js";
import { launchToken } from "../ports/launch-token.js";
import {
  type ClusterRecord,
  ConflictError,
  type LaunchIntent,
  type LaunchOutcome,
  type Lease,
  type NodeRecord,
  type QueueHealth,
  type RepeatDecision,
  type StateStore,
} from "../ports/state-store.js";
import { appendControlEvent as event } from "./events.js";
import { type ControlLog, silentLog } from "./log.js";
import type { MetricsSink } from "./metrics.js";
import { ignoreConflict, retryTransient } from "./store-retry.js";

/** Extra tag on every instance a launch starts: the round, so the reconciler can adopt a crashed launch. */
export const ROUND_TAG = "NowScaleRound";

/**
 * The admission lease: every launch path (scale cycle, manual add-nodes) and the cluster deletion take it
 * for the few milliseconds of "count what holds a slot → write the launch intent" (or "set DELETING"), so
 * two admissions never count the same free slot and no intent is written after deletion began.
 */
export const admissionLeaseKey = (clusterId: string) => `admit#${clusterId}`;

/**
 * A launch intent still INTENDED this long after it was written has nobody left to finish it (every
 * launcher's Lambda has timed out long before): the reconciler closes it, and deletion stops waiting for it.
 */
export const ABANDONED_INTENT_MS = 300_000;

/** An offering as the queue health records it: "c5.xlarge@zone-a". */
export function offeringKey(instanceType: string, zone: string): string {
  return `${instanceType}@${zone}`;
}

/**
 * The candidates a queue may still launch: all of them, unless the queue is in protected mode, which
 * holds back the offerings whose nodes failed to join during the failure streak (and so, when every
 * offering failed, the whole queue).
 */
export function allowedCandidates<C extends { instanceType: string; zone: string }>(
  health: QueueHealth | undefined,
  candidates: readonly C[],
): C[] {
  if (health === undefined || !health.protected) return [...candidates];
  const failed = new Set(health.failedOfferings ?? []);
  // Before offerings were recorded, protected mode held the whole queue back: keep that meaning.
  if (failed.size === 0) return [];
  return candidates.filter((c) => !failed.has(offeringKey(c.instanceType, c.zone)));
}

/** The queue's health from the cluster record, or undefined; never a member of Object.prototype. */
export function queueHealthOf(
  cluster: Pick<ClusterRecord, "queueHealth">,
  queue: string,
): QueueHealth | undefined {
  return ownValue(cluster.queueHealth, queue);
}

/**
 * How many slots of `queue` are held: node records (any status until the instance is confirmed gone),
 * instances the cloud lists with the queue's tag but nobody recorded, and what INTENDED launches may
 * still start beyond the instances they already recorded.
 */
export function occupiedSlots(
  queue: string,
  records: readonly NodeRecord[],
  intents: readonly LaunchIntent[],
  listed: readonly CloudInstance[],
): number {
  const ofQueue = records.filter((r) => r.queue === queue);
  const ids = new Set(ofQueue.map((r) => r.instanceId));
  for (const i of listed) if (i.queue === queue && i.state !== "TERMINATED") ids.add(i.id);
  const recorded = recordedPerRound(ofQueue);
  let inFlight = 0;
  for (const intent of intents) {
    if (intent.queue !== queue || intent.status !== "INTENDED") continue;
    inFlight += stillToStart(intent, recorded);
  }
  return ids.size + inFlight;
}

/** How many of `records` each launch round has recorded (instances a launch recorded before its outcome). */
export function recordedPerRound(records: Iterable<NodeRecord>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) if (r.round !== undefined) counts.set(r.round, (counts.get(r.round) ?? 0) + 1);
  return counts;
}

/** What an INTENDED launch may still start beyond the instances its round has recorded. */
export function stillToStart(intent: LaunchIntent, recorded: ReadonlyMap<string, number>): number {
  return Math.max(0, intent.count - (recorded.get(intent.round) ?? 0));
}

export interface LaunchDeps {
  store: StateStore;
  provider: CloudProvider;
  clock: Clock;
  metrics: MetricsSink;
  log?: ControlLog;
  /** Who takes the admission lease (the Lambda request id). */
  owner: string;
  /** The node's boot script for a launch; none when undefined. */
  userData?: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  /** The operator's principal when a person asked for the launch (API); its events carry it. */
  by?: string | undefined;
}

/** The node records (instance ids) and launch intents (rounds) a plan counted as supply. */
export interface KnownSupply {
  instances: Set<string>;
  rounds: Set<string>;
}

export interface LaunchOptions {
  /**
   * What the plan behind this launch knew. Under the admission lease, supply of the queue that appeared
   * since (records and INTENDED launches of another path: a manual add-nodes, a concurrent cycle) is taken
   * off a best-effort launch, so no demand is launched twice. Absent: nothing is taken off (add-nodes asks
   * for nodes, not for demand).
   */
  knownAtPlan?: KnownSupply;
  /**
   * "cap": launch what still fits under maxSize (the scale cycle: the rest is planned again next poll);
   * "exact": all of `count` or nothing (a manual add-nodes request). An all-or-nothing launch is always exact.
   * @default "cap"
   */
  fit?: "cap" | "exact";
  /** How long to wait for the admission lease before refusing. @default 10000 */
  admissionWaitMs?: number;
  /** @default 30000 */
  admissionTtlMs?: number;
}

export type LaunchRefusal =
  | "round-recorded"
  | "admission-busy"
  | "cluster-not-running"
  | "queue-unknown"
  | "queue-protected"
  | "queue-full"
  | "covered-meanwhile"
  | "fenced";

export interface AdmittedLaunch {
  /** Instances asked of the provider (0 when refused). */
  admitted: number;
  refused?: LaunchRefusal;
  /** Why, in words, when refused. */
  message?: string;
  outcome?: LaunchOutcome;
}

/**
 * The one way anything is launched (scale cycle and manual add-nodes alike):
 * 1. admission, under the cluster's admission lease: the cluster is RUNNING, the queue exists and is not
 *    protected for these offerings, and the slots held (occupiedSlots: records, INTENDED launches, and the
 *    cloud's own listing of the queue) leave room under maxSize; then the launch intent is written;
 * 2. the cluster is read again right before the provider call: a deletion that began meanwhile fences it;
 * 3. the provider call; every instance a cloud call returns is recorded (LAUNCHING) before the provider
 *    keeps or releases any of it, so an instance whose release fails is never untracked;
 * 4. the outcome: the intent LAUNCHED/FAILED; instances started but not kept are marked TERMINATING, and
 *    the reconciler retries their terminate until the cloud confirms them gone.
 */
export async function recordedLaunch(
  deps: LaunchDeps,
  cluster: ClusterRecord,
  launch: Launch,
  round: string,
  jobs: ClusterState["jobs"] = [],
  options: LaunchOptions = {},
): Promise<AdmittedLaunch> {
  const { store, clock, metrics } = deps;
  const log = deps.log ?? silentLog;
  const clusterId = cluster.clusterId;

  // The listing is read before the lease (it may retry for seconds); anything launched after it writes an
  // intent under the lease first, so the count below still sees it.
  const listed = await deps.provider.list(clusterId).catch((error: unknown) => {
    log.warn("listing failed: admission counts records and intents only", {
      clusterId,
      error: (error as Error).message,
    });
    return [] as CloudInstance[];
  });
  const admission = await admit(deps, cluster, launch, round, listed, options);
  if (admission.refused !== undefined) return admission;
  const { candidates, tokens, count } = admission;
  const admittedLaunch: Launch = { ...launch, count, candidates };

  // The fence: a deletion that set DELETING after admission stops the call here.
  const current = await store.getCluster(clusterId);
  if (current?.status !== "RUNNING") {
    const outcome: LaunchOutcome = {
      instances: [],
      failures: [{ index: -1, kind: "Fenced", message: `the cluster is ${current?.status ?? "gone"}` }],
      at: clock.now(),
    };
    await store.recordLaunchOutcome(clusterId, round, outcome).catch(ignoreConflict);
    return {
      admitted: 0,
      refused: "fenced",
      message: `the cluster is ${current?.status ?? "gone"}`,
      outcome,
    };
  }

  const userData = deps.userData?.(cluster, admittedLaunch);
  /** Instance id → the idempotency token of the candidate the provider started it for. */
  const tokenById = new Map<string, string>();
  const tokenOf = (i: CloudInstance): { token?: string } => {
    const token = tokenById.get(i.id);
    return token === undefined ? {} : { token };
  };
  const recordStarted = async (instances: readonly CloudInstance[]) => {
    for (const i of instances) {
      await retryTransient(
        () =>
          store.putNode({
            clusterId,
            nodeName: i.id,
            instanceId: i.id,
            queue: launch.queue,
            instanceType: i.instanceType,
            zone: i.zone,
            chargeType: i.chargeType,
            status: "LAUNCHING",
            round,
            ...tokenOf(i),
            launchedAt: i.launchedAt ?? clock.now(),
            updatedAt: clock.now(),
            origin: "launch",
          }),
        clock,
      );
    }
  };
  const started: CloudInstance[] = [];
  let outcome: LaunchOutcome;
  try {
    const result = await deps.provider.launch({
      clusterId,
      queue: launch.queue,
      round,
      candidates,
      count,
      allOrNothing: launch.allOrNothing,
      imageId: cluster.placement.imageId,
      tags: { [ROUND_TAG]: round },
      ...(userData === undefined ? {} : { userData }),
      onStarted: async (instances, candidateIndex) => {
        const token = tokens[candidateIndex];
        if (token !== undefined) for (const i of instances) tokenById.set(i.id, token);
        started.push(...instances);
        await recordStarted(instances);
      },
    });
    outcome = {
      instances: result.instances.map((i) => ({
        id: i.id,
        instanceType: i.instanceType,
        zone: i.zone,
        chargeType: i.chargeType,
        ...tokenOf(i),
      })),
      failures: result.failures.map((f) => ({
        index: f.index,
        kind: f.error.kind,
        message: f.error.message.slice(0, 300),
      })),
      at: clock.now(),
    };
  } catch (error) {
    if (!(error instanceof CloudProviderError)) throw error;
    outcome = {
      instances: [],
      failures: [{ index: -1, kind: error.kind, message: error.message.slice(0, 300) }],
      at: clock.now(),
    };
  }
  // The reconciler may have adopted this round's instances while the call was in flight: already recorded.
  await retryTransient(() => store.recordLaunchOutcome(clusterId, round, outcome), clock).catch(
    ignoreConflict,
  );

  // The fence's last word: a deletion that began while the call was in flight (its sweep may already
  // have run) finds these instances recorded, but the launcher cleans up after itself at once.
  const after = await store.getCluster(clusterId).catch(() => undefined);
  if (after !== undefined && after.status !== "RUNNING" && outcome.instances.length > 0) {
    const ids = outcome.instances.map((i) => i.id);
    log.warn("the cluster left RUNNING while the launch was in flight: terminating what it started", {
      clusterId,
      status: after.status,
      instances: ids,
    });
    for (const id of ids) {
      await store
        .updateNodeStatus(clusterId, id, "LAUNCHING", "TERMINATING", clock.now())
        .catch(() => undefined);
    }
    await deps.provider.terminate(ids).catch((error: unknown) =>
      log.warn("terminate after a fenced launch failed: the deletion sweep or the reconciler retries", {
        clusterId,
        error: (error as Error).message,
      }),
    );
  }

  // Started but not kept (a surplus, a short all-or-nothing set): the provider terminated them, or tried
  // to. Their records say TERMINATING until the reconciler sees the cloud confirm them gone.
  const kept = new Set(outcome.instances.map((i) => i.id));
  const released = started.filter((i) => !kept.has(i.id));
  for (const i of released) {
    await store
      .updateNodeStatus(clusterId, i.id, "LAUNCHING", "TERMINATING", clock.now())
      .catch(ignoreConflict);
  }
  if (released.length > 0) {
    await event(
      store,
      clusterId,
      clock,
      "RELEASE_PENDING",
      `${released.length} instance(s) started beyond what the launch keeps: terminating`,
      launch.queue,
      released.map((i) => i.id),
      released.length,
    );
  }

  const startedCount = outcome.instances.length;
  for (const f of outcome.failures) metrics.add("LaunchFailures", "Count", 1, { Reason: f.kind });
  if (startedCount > 0) {
    metrics.add("NodesLaunched", "Count", startedCount, { Queue: launch.queue });
    const oldest = Math.min(...jobs.filter((j) => launch.jobs.includes(j.id)).map((j) => j.submittedAt));
    if (Number.isFinite(oldest)) metrics.add("ScaleOutLatency", "Milliseconds", outcome.at - oldest);
    await clearLaunchFailed(deps, clusterId, launch);
    await event(
      store,
      clusterId,
      clock,
      "LAUNCHED",
      `${startedCount} × ${launch.instanceType}: ${launch.reason}`.slice(0, 500),
      launch.queue,
      outcome.instances.map((i) => i.id),
      startedCount,
      deps.by,
    );
  } else {
    const reason = launchFailedReason(count, launch.instanceType, outcome.failures);
    const message = await debouncedFailure(deps, clusterId, launch, outcome, reason);
    if (message !== undefined) {
      await event(store, clusterId, clock, "LAUNCH_FAILED", message, launch.queue, [], count, deps.by);
    }
  }
  return { admitted: count, outcome };
}

/**
 * How often the service's own LAUNCH_FAILED of one offering and reason is written while it keeps failing:
 * the scale cycle retries every poll (every 2 s locally), and an event per retry buries everything else
 * in the history.
 */
export const LAUNCH_FAILED_EVERY_MS = 10 * 60_000;

/**
 * The LAUNCH_FAILED text to write now, or undefined to hold it back: an operator's launch (`by`) always
 * gets its event; the service's own are written for the first failure of an offering (queue, type, zones,
 * charge types) and reason (the kinds, and a whole-request refusal's message), then at most once per LAUNCH_FAILED_EVERY_MS with the count held back since.
 * The count is kept in the store (noteRepeat), so a restarted scaler does not write the first again; a
 * launch of the offering that starts instances clears it (clearLaunchFailed).
 */
async function debouncedFailure(
  deps: LaunchDeps,
  clusterId: string,
  launch: Launch,
  outcome: LaunchOutcome,
  reason: string,
): Promise<string | undefined> {
  if (deps.by !== undefined) return reason;
  const kinds = [...new Set(outcome.failures.map((f) => f.kind))].sort().join(",");
  // A request refused as a whole says why in its message (launchFailedReason): another message is
  // another reason (the operator fixed one thing and met the next), written at once, not held back.
  const whole = outcome.failures.find((f) => f.index === -1 && f.kind === "InvalidRequest")?.message;
  const key = `${launchFailedPrefix(launch)}${kinds}${whole === undefined ? "" : ` ${whole}`}`;
  const decision: RepeatDecision = await deps.store
    .noteRepeat(clusterId, key, deps.clock.now(), LAUNCH_FAILED_EVERY_MS)
    .catch((error: unknown) => {
      // Better one event too many than a failure nobody is told of.
      (deps.log ?? silentLog).warn("repeat count failed: LAUNCH_FAILED written", {
        clusterId,
        error: (error as Error).message,
      });
      return { write: true, suppressed: 0 };
    });
  if (!decision.write) return undefined;
  if (decision.suppressed === 0 || decision.lastWrittenAt === undefined) return reason;
  const since = new Date(decision.lastWrittenAt).toISOString();
  const tail = ` (repeated ${decision.suppressed} times since ${since})`;
  return `${reason.slice(0, 500 - tail.length)}${tail}`;
}

/**
 * The repeat key's part naming the offering (queue, types, zones, charge types): every reason's key of
 * the offering starts with it. The offering ends at ` | ` (its parts hold no space), so one offering's
 * prefix never matches another's that merely begins the same way (a longer candidate list).
 */
function launchFailedPrefix(launch: Launch): string {
  const offering = launch.candidates
    .map((c) => `${offeringKey(c.instanceType, c.zone)}/${c.chargeType}`)
    .join(" ");
  return `LAUNCH_FAILED ${launch.queue} ${offering || offeringKey(launch.instanceType, launch.zone)} | `;
}

/**
 * The offering launched: its held-back LAUNCH_FAILED counts are forgotten (store.clearRepeat), so a
 * failure after this success starts a new episode and is written at once rather than held back for the
 * rest of the last one's interval. A store failure is logged only: the launch itself succeeded, and the
 * cost is one failure written late.
 */
async function clearLaunchFailed(deps: LaunchDeps, clusterId: string, launch: Launch): Promise<void> {
  await deps.store.clearRepeat(clusterId, launchFailedPrefix(launch)).catch((error: unknown) => {
    (deps.log ?? silentLog).warn("repeat count not cleared after a launch: a next failure may be held back", {
      clusterId,
      error: (error as Error).message,
    });
  });
}

type Admission =
  | (AdmittedLaunch & { refused: LaunchRefusal })
  | { refused?: undefined; count: number; candidates: LaunchCandidate[]; tokens: string[] };

/** Step 1 of recordedLaunch: the checks and the intent, under the admission lease. */
async function admit(
  deps: LaunchDeps,
  cluster: ClusterRecord,
  launch: Launch,
  round: string,
  listed: readonly CloudInstance[],
  options: LaunchOptions,
): Promise<Admission> {
  const { store, clock } = deps;
  const clusterId = cluster.clusterId;
  const lease = await takeAdmissionLease(deps, clusterId, options);
  if (lease === undefined) {
    return refuse("admission-busy", "another launch or a deletion holds the admission lease: retry");
  }
  try {
    const current = await store.getCluster(clusterId);
    if (current?.status !== "RUNNING") {
      return refuse("cluster-not-running", `the cluster is ${current?.status ?? "gone"}, not RUNNING`);
    }
    const config = parseConfig(current.autoscaling, "autoscaling configuration");
    const queue = config.queueByName.get(launch.queue);
    if (queue === undefined) return refuse("queue-unknown", `queue ${launch.queue} is not configured`);
    // The plan's candidates as they are (candidateOf made them): filtered, never copied again.
    const candidates: LaunchCandidate[] = allowedCandidates(
      queueHealthOf(current, launch.queue),
      launch.candidates,
    );
    if (candidates.length === 0) {
      return refuse(
        "queue-protected",
        `queue ${launch.queue} is in protected mode after repeated bootstrap failures: reset it or fix the boot`,
      );
    }
    // Intents first, then records: a launch that finishes between the two reads is then seen as an
    // INTENDED intent and its records, or as records alone (they are written before its outcome); read the
    // other way round it could be seen as neither.
    const intents = await store.listLaunchIntents(clusterId, "INTENDED");
    const records = await store.listNodes(clusterId);
    const room = queue.maxSize - occupiedSlots(launch.queue, records, intents, listed);
    const exact = launch.allOrNothing || options.fit === "exact";
    const wanted = exact
      ? launch.count
      : launch.count - newSupply(launch.queue, records, intents, options.knownAtPlan);
    if (wanted <= 0) {
      return refuse(
        "covered-meanwhile",
        `queue ${launch.queue}: nodes launched since the plan cover this demand`,
      );
    }
    const count = Math.min(wanted, Math.max(0, room));
    if (count <= 0 || (exact && count < launch.count)) {
      return refuse(
        "queue-full",
        `queue ${launch.queue} holds ${queue.maxSize - Math.max(0, room)} of maxSize ${queue.maxSize} slots: ${launch.count} more do not fit`,
      );
    }
    const tokens = candidates.map((c) => launchToken(clusterId, round, c));
    // The intent must land while the lease is still ours: renew (conditional) right before it.
    await store.renewLease(lease, options.admissionTtlMs ?? 30_000, clock.now());
    try {
      await store.recordLaunchIntent({
        clusterId,
        round,
        queue: launch.queue,
        count,
        allOrNothing: launch.allOrNothing,
        candidates,
        tokens,
        jobs: launch.jobs,
        intendedAt: clock.now(),
      });
    } catch (error) {
      if (error instanceof ConflictError)
        return refuse("round-recorded", `round ${round} is already recorded`);
      throw error;
    }
    return { count, candidates, tokens };
  } finally {
    await store.releaseLease(lease).catch(() => undefined);
  }
}

/** Supply of the queue the plan did not know: new live records, and what new INTENDED launches may start. */
function newSupply(
  queue: string,
  records: readonly NodeRecord[],
  intents: readonly LaunchIntent[],
  known: KnownSupply | undefined,
): number {
  if (known === undefined) return 0;
  const live = records.filter(
    (r) => r.queue === queue && r.status !== "TERMINATING" && r.status !== "DRAINING",
  );
  let count = live.filter(
    (r) => !known.instances.has(r.instanceId) && !(r.round !== undefined && known.rounds.has(r.round)),
  ).length;
  const recorded = recordedPerRound(live);
  for (const i of intents) {
    if (i.queue !== queue || i.status !== "INTENDED" || known.rounds.has(i.round)) continue;
    count += stillToStart(i, recorded);
  }
  return count;
}

function refuse(refused: LaunchRefusal, message: string): AdmittedLaunch & { refused: LaunchRefusal } {
  return { admitted: 0, refused, message };
}

/**
 * Takes the cluster's admission lease, waiting (on the clock) up to `admissionWaitMs` for its holder to
 * finish: holders keep it for milliseconds, or until its TTL when they crashed. Undefined when it stayed taken.
 */
export async function takeAdmissionLease(
  deps: Pick<LaunchDeps, "store" | "clock" | "owner">,
  clusterId: string,
  options: Pick<LaunchOptions, "admissionWaitMs" | "admissionTtlMs"> = {},
): Promise<Lease | undefined> {
  const waitMs = options.admissionWaitMs ?? 10_000;
  const ttlMs = options.admissionTtlMs ?? 30_000;
  const stepMs = 250;
  // Bounded by attempts as well as by time: a clock that does not move (a test's) cannot make it spin.
  const attempts = Math.max(1, Math.ceil(waitMs / stepMs) + 1);
  const deadline = deps.clock.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    const now = deps.clock.now();
    const lease = await deps.store.acquireLease(admissionLeaseKey(clusterId), deps.owner, ttlMs, now);
    if (lease !== undefined || attempt >= attempts || deps.clock.now() >= deadline) return lease;
    await deps.clock.sleep(Math.min(stepMs, Math.max(1, deadline - deps.clock.now())));
  }
}

/**
 * The LAUNCH_FAILED event's text: the failures' kinds and, for a request the provider refused as a whole
 * (index -1: its own validation, e.g. user data over the limit), that refusal's message, since the kind
 * alone (InvalidRequest) does not say what to fix. At most 500 characters, as the other events.
 */
export function launchFailedReason(
  count: number,
  instanceType: string,
  failures: readonly { index: number; kind: string; message: string }[],
): string {
  const kinds = [...new Set(failures.map((f) => f.kind))].join(", ");
  const whole = failures.find((f) => f.index === -1 && f.kind === "InvalidRequest");
  const why = whole === undefined ? "" : `: ${whole.message}`;
  return `${count} × ${instanceType}: ${kinds || "nothing started"}${why}`.slice(0, 500);
}
