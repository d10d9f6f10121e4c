import { DRAIN_REASON_PREFIX } from "../core/shrink.js";
import type { OkReport } from "../ports/agent-report.js";
import type { CloudInstance } from "../ports/cloud-provider.js";
import type { LaunchIntent, LaunchOutcome, NodeRecord } from "../ports/state-store.js";
import { ROUND_TAG } from "./launch.js";
import { isUnhealthy, nodesRunningJobs } from "./slurm-evidence.js";

/**
 * The reconciler's decisions, pure: each takes what one step observed (records, the cloud's listing and
 * describes, Slurm's view, the run's time) and returns what to do to which node, and why. No I/O, no
 * clock. The reconciler (reconciler.ts) reads, calls these, and carries the actions out in their order.
 * Destroying needs evidence that agrees over time: a first observation only sets a mark on the record
 * (missingSince, absentSince, downSince), and a later run that sees the same acts on the mark's age.
 */

/** The reconciler's time limits (ReconcilerOptions says what each means). */
export interface ReconcileLimits {
  orphanGraceMs: number;
  bootTimeoutMs: number;
  goneGraceMs: number;
  goneConfirmMs: number;
  downGraceMs: number;
  releaseRetryMs: number;
  intentStaleMs: number;
}

/** Slurm's view in one report: which nodes it lists, which run a job, which are unhealthy, in what state. */
export interface SlurmView {
  listed: Set<string>;
  busy: Set<string>;
  unhealthy: Set<string>;
  /** Nodes NowScale drained (a `nowscale` reason) that Slurm shows DRAINED: they take no new job. */
  drained: Set<string>;
  /** Each listed node's Slurm state (the first the report gives), for the reasons. */
  states: Map<string, string>;
}

export function slurmView(report: OkReport): SlurmView {
  const states = new Map<string, string>();
  for (const n of report.nodes) if (!states.has(n.name)) states.set(n.name, n.slurmState);
  return {
    listed: new Set(report.nodes.map((n) => n.name)),
    busy: nodesRunningJobs(report),
    unhealthy: new Set(report.nodes.filter(isUnhealthy).map((n) => n.name)),
    drained: new Set(
      report.nodes
        .filter((n) => n.state === "DRAINED" && n.reason?.startsWith(DRAIN_REASON_PREFIX) === true)
        .map((n) => n.name),
    ),
    states,
  };
}

/** A record to write for an instance nobody recorded; `updatedAt` is the writer's. */
export interface Adoption {
  instance: CloudInstance;
  record: Omit<NodeRecord, "updatedAt">;
  /** The intent's round when the instance is a launch's (its tag names an INTENDED round); else an orphan. */
  intentRound?: string;
}

export interface AdoptionPlan {
  /** In the listing's order. */
  adoptions: Adoption[];
  /** The adopted instances of each intended round, whose outcome is then recorded. */
  byRound: Map<string, CloudInstance[]>;
  /** Adopted instances with no intent: terminated later if they never join. */
  orphans: string[];
}

/**
 * 1. Every listed instance without a record gets one: by its launch's intent (its round tag), else as an
 * orphan. Instances shutting down are left alone (a record would only be forgotten again); an instance in
 * Slurm is recorded JOINED, else LAUNCHING.
 */
export function planAdoptions(
  clusterId: string,
  instances: readonly CloudInstance[],
  trackedIds: ReadonlySet<string>,
  intents: readonly LaunchIntent[],
  slurm: SlurmView | undefined,
  now: number,
): AdoptionPlan {
  const tracked = new Set(trackedIds);
  const byRoundIntent = new Map(intents.map((i) => [i.round, i]));
  const plan: AdoptionPlan = { adoptions: [], byRound: new Map(), orphans: [] };
  for (const instance of instances) {
    if (tracked.has(instance.id) || instance.state === "TERMINATING" || instance.state === "STOPPING")
      continue;
    const round = Object.hasOwn(instance.tags, ROUND_TAG) ? instance.tags[ROUND_TAG] : undefined;
    const intent = round === undefined ? undefined : byRoundIntent.get(round);
    const inSlurm = slurm?.listed.has(instance.id) === true;
    const record: Omit<NodeRecord, "updatedAt"> = {
      clusterId,
      nodeName: instance.id,
      instanceId: instance.id,
      queue: intent?.queue ?? instance.queue ?? "unknown",
      instanceType: instance.instanceType,
      zone: instance.zone,
      chargeType: instance.chargeType,
      status: inSlurm ? "JOINED" : "LAUNCHING",
      ...(round === undefined ? {} : { round }),
      launchedAt: instance.launchedAt ?? intent?.intendedAt ?? now,
      origin: intent === undefined ? "adopted" : "launch",
    };
    tracked.add(instance.id);
    if (intent === undefined) {
      plan.adoptions.push({ instance, record });
      plan.orphans.push(instance.id);
      continue;
    }
    plan.adoptions.push({ instance, record, intentRound: intent.round });
    plan.byRound.set(intent.round, [...(plan.byRound.get(intent.round) ?? []), instance]);
  }
  return plan;
}

/** 2a. Before the describe: marks to clear (listed again), and records the listing misses past the grace. */
export function goneSuspects(
  records: readonly NodeRecord[],
  instances: readonly CloudInstance[],
  now: number,
  limits: Pick<ReconcileLimits, "goneGraceMs">,
): { relisted: NodeRecord[]; unlisted: NodeRecord[] } {
  const listed = new Set(instances.map((i) => i.id));
  return {
    relisted: records.filter((r) => listed.has(r.instanceId) && r.missingSince !== undefined),
    unlisted: records.filter((r) => !listed.has(r.instanceId) && now - r.launchedAt >= limits.goneGraceMs),
  };
}

export type GoneAction =
  /** The describe found it (the listing was short): clear the record's missingSince. */
  | { kind: "clear-mark"; record: NodeRecord }
  /** First run to miss it in both: mark missingSince; a later run decides. */
  | { kind: "mark"; record: NodeRecord }
  /** Gone, but Slurm still runs a job on its node: deleting the node would kill it; wait. */
  | { kind: "busy"; record: NodeRecord }
  /** Gone on evidence that agrees: tell Slurm (when it lists the node or cannot be asked) and forget it. */
  | { kind: "forget"; record: NodeRecord; deleteFromSlurm: boolean; reason: string };

/**
 * 2b. Records the listing missed, with what a describe by id found: gone when the describe answers
 * TERMINATED, or when listing and describe both missed it in a run `goneConfirmMs` after the first.
 */
export function goneActions(
  unlisted: readonly NodeRecord[],
  described: ReadonlyMap<string, CloudInstance>,
  slurm: SlurmView | undefined,
  now: number,
  limits: Pick<ReconcileLimits, "goneConfirmMs">,
): GoneAction[] {
  const actions: GoneAction[] = [];
  for (const record of unlisted) {
    const found = described.get(record.instanceId);
    if (found !== undefined && found.state !== "TERMINATED") {
      if (record.missingSince !== undefined) actions.push({ kind: "clear-mark", record });
      continue;
    }
    const confirmed =
      found?.state === "TERMINATED" ||
      (record.missingSince !== undefined && now - record.missingSince >= limits.goneConfirmMs);
    if (!confirmed) {
      if (record.missingSince === undefined) actions.push({ kind: "mark", record });
      continue;
    }
    if (slurm?.busy.has(record.nodeName) === true) {
      actions.push({ kind: "busy", record });
      continue;
    }
    actions.push({
      kind: "forget",
      record,
      deleteFromSlurm: slurm === undefined || slurm.listed.has(record.nodeName),
      reason:
        found?.state === "TERMINATED"
          ? "the cloud reports the instance terminated: record removed"
          : "instance not found by two listings and describes: record removed",
    });
  }
  return actions;
}

/**
 * 3. TERMINATING records whose instance still runs, past `releaseRetryMs` since the terminate: terminate
 * again, or drain first when Slurm gave the node a job meanwhile, or when Slurm lists it healthy and
 * not drained by NowScale (a slow boot that joined after its retirement was decided: a job may land on
 * it any moment, so one report showing it idle is not enough; a later run terminates it once it shows
 * drained and empty). Without Slurm's view nobody knows whether it took a job: nothing.
 */
export function releaseActions(
  records: readonly NodeRecord[],
  instances: readonly CloudInstance[],
  slurm: SlurmView | undefined,
  now: number,
  limits: Pick<ReconcileLimits, "releaseRetryMs">,
): { kind: "drain" | "terminate"; record: NodeRecord }[] {
  const live = new Set(instances.filter((i) => i.state !== "TERMINATING").map((i) => i.id));
  const actions: { kind: "drain" | "terminate"; record: NodeRecord }[] = [];
  for (const record of records) {
    if (record.status !== "TERMINATING" || !live.has(record.instanceId)) continue;
    if (now - record.updatedAt < limits.releaseRetryMs) continue;
    if (slurm === undefined) continue;
    const name = record.nodeName;
    const takesJobs = slurm.listed.has(name) && !slurm.drained.has(name) && !slurm.unhealthy.has(name);
    actions.push({ kind: slurm.busy.has(name) || takesJobs ? "drain" : "terminate", record });
  }
  return actions;
}

export type BootAction =
  /** Slurm lists it: it joined. */
  | { kind: "joined"; record: NodeRecord }
  /** First run to see it absent past its limit: mark absentSince; the next run decides. */
  | { kind: "mark"; record: NodeRecord }
  /** An adopted orphan absent past the orphan grace in two runs: terminate. */
  | { kind: "orphan"; record: NodeRecord; reason: string }
  /** A launched node absent past the boot timeout in two runs: terminate, a bootstrap failure of its offering. */
  | { kind: "boot-timeout"; record: NodeRecord; reason: string };

/** 4. LAUNCHING records: joined, or absent from Slurm past the boot timeout (launched) or orphan grace (adopted). */
export function bootActions(
  records: readonly NodeRecord[],
  slurm: SlurmView,
  now: number,
  limits: Pick<ReconcileLimits, "orphanGraceMs" | "bootTimeoutMs">,
): BootAction[] {
  const actions: BootAction[] = [];
  for (const record of records) {
    if (record.status !== "LAUNCHING") continue;
    if (slurm.listed.has(record.nodeName)) {
      actions.push({ kind: "joined", record });
      continue;
    }
    const adopted = record.origin === "adopted";
    if (now - record.launchedAt < (adopted ? limits.orphanGraceMs : limits.bootTimeoutMs)) continue;
    if (record.absentSince === undefined) {
      actions.push({ kind: "mark", record });
      continue;
    }
    actions.push(
      adopted
        ? {
            kind: "orphan",
            record,
            reason: `untracked instance never joined Slurm within ${Math.round(limits.orphanGraceMs / 1000)} s: terminated`,
          }
        : {
            kind: "boot-timeout",
            record,
            reason: `did not join Slurm within ${Math.round(limits.bootTimeoutMs / 1000)} s`,
          },
    );
  }
  return actions;
}

export type HealthAction =
  /** Healthy again, or running a job: clear downSince. */
  | { kind: "clear-mark"; record: NodeRecord }
  /** First report to show it DOWN, not responding or not listed: mark downSince. */
  | { kind: "mark"; record: NodeRecord }
  /** Unhealthy past the grace and running no job: retire (terminate; delete from Slurm when it lists it). */
  | { kind: "retire"; record: NodeRecord; inSlurm: boolean; reason: string };

/** 5. Joined and draining nodes DOWN, not responding or lost by Slurm past `downGraceMs`, running no job. */
export function healthActions(
  records: readonly NodeRecord[],
  slurm: SlurmView,
  now: number,
  limits: Pick<ReconcileLimits, "downGraceMs">,
): HealthAction[] {
  const actions: HealthAction[] = [];
  for (const record of records) {
    if (record.status !== "JOINED" && record.status !== "DRAINING") continue;
    const bad = slurm.unhealthy.has(record.nodeName) || !slurm.listed.has(record.nodeName);
    if (!bad || slurm.busy.has(record.nodeName)) {
      if (record.downSince !== undefined) actions.push({ kind: "clear-mark", record });
      continue;
    }
    if (record.downSince === undefined) {
      actions.push({ kind: "mark", record });
      continue;
    }
    if (now - record.downSince < limits.downGraceMs) continue;
    const state = slurm.states.get(record.nodeName) ?? "not in Slurm";
    actions.push({
      kind: "retire",
      record,
      inSlurm: slurm.listed.has(record.nodeName),
      reason: `${state} for ${Math.round((now - record.downSince) / 1000)} s and running no job: terminated, its demand goes elsewhere`,
    });
  }
  return actions;
}

/**
 * 6. INTENDED launches older than `intentStaleMs` that this run did not adopt instances for: closed as
 * LAUNCHED with the instances their round recorded (the launch died before its outcome), else as FAILED.
 */
export function intentClosures(
  intents: readonly LaunchIntent[],
  records: readonly NodeRecord[],
  adoptedRounds: ReadonlySet<string>,
  now: number,
  limits: Pick<ReconcileLimits, "intentStaleMs">,
): { round: string; outcome: LaunchOutcome }[] {
  const closures: { round: string; outcome: LaunchOutcome }[] = [];
  for (const intent of intents) {
    if (adoptedRounds.has(intent.round) || now - intent.intendedAt < limits.intentStaleMs) continue;
    const recorded = records.filter((r) => r.round === intent.round);
    closures.push({
      round: intent.round,
      outcome:
        recorded.length > 0
          ? {
              instances: recorded.map((r) => ({
                id: r.instanceId,
                instanceType: r.instanceType,
                zone: r.zone,
                chargeType: r.chargeType,
              })),
              failures: [],
              at: now,
            }
          : {
              instances: [],
              failures: [
                {
                  index: -1,
                  kind: "Abandoned",
                  message: "no outcome was recorded; closed by the reconciler",
                },
              ],
              at: now,
            },
    });
  }
  return closures;
}
