import {
  type AgentChannel,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../ports/agent-channel.js";
import type { OkReport } from "../ports/agent-report.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import { type ClusterRecord, type NodeRecord, originOf, type StateStore } from "../ports/state-store.js";
import { releaseMasterClaim } from "./attach.js";
import { appendControlEvent as event } from "./events.js";
import { jobNoteChanges } from "./job-notes.js";
import { ABANDONED_INTENT_MS } from "./launch.js";
import { type ControlLog, silentLog } from "./log.js";
import { RetirementOvertakenError, retireNode } from "./node-retirement.js";
import { nodesRunningJobs } from "./slurm-evidence.js";

/**
 * Detaching an attached cluster (docs/attach.md): NowScale takes back exactly what it added to the
 * user's Slurm and cloud, and nothing else. The deletion workflow's detach path (lib/workflow/
 * delete-cluster.ts) calls `detachStep` every 15-300 s until it answers `done`, carrying the evidence of
 * one step into the next. Each step:
 *
 * 1. refuses unless the cluster is attached and DELETING (the fence: no launch is admitted any more);
 * 2. records every instance the cloud lists with the cluster's tag that has no record and was launched
 *    after the attach (a master predates it, so it is never taken for a compute node; nor is the
 *    master's own instance id);
 * 3. reads Slurm's view (no report: no evidence, nothing destroyed this step);
 * 4. for each node record, by the usual retirement protocol: a node running a job is drained and left
 *    running; an idle node is drained; a node Slurm shows drained (or down) and idle in two steps in a
 *    row, or absent from Slurm in two steps in a row, is retired (terminated, its Slurm node entry
 *    deleted, its record removed: lib/control/node-retirement.ts); a TERMINATING record is retried
 *    once Slurm gives its node no new job (absent, drained or down), drained first otherwise;
 * 5. when no record and no launch in flight is left: removes the placeholder FUTURE nodes and clears
 *    the job notes NowScale wrote, releases the master's claim, and answers `done`.
 *
 * The master, the user's own nodes (no record), partitions and slurm.conf are never touched. At most
 * MAX_ACTIONS agent actions per step keep one step inside the task's time limit; the rest follow.
 */

export interface DetachDeps {
  store: StateStore;
  provider: CloudProvider;
  agent: AgentChannel;
  clock: Clock;
  log?: ControlLog;
}

/** What one step saw, carried to the next (the workflow's state): the evidence that must agree. */
export interface DetachEvidence {
  /** Nodes Slurm showed drained (or down) and idle. */
  idle: string[];
  /** Node records Slurm did not list. */
  absent: string[];
  steps: number;
}

export interface DetachProgress extends DetachEvidence {
  done: boolean;
  /** Retired this step. */
  retired: string[];
  /** Nodes still running jobs (drained: they take no new one). */
  busy: string[];
  /** Launches admitted before the fence with no outcome yet. */
  inFlight: number;
  /** Node records left. */
  remaining: number;
  /** Seconds the workflow waits before the next step. */
  waitSeconds: number;
}

/** The reason NowScale's drains of a detach carry (prefixed as every NowScale drain). */
export const DETACH_REASON = "nowscale: cluster detached";
/** Agent actions (drains, retirements) per step. */
export const MAX_ACTIONS = 10;
/** A step waits this long to confirm evidence, and this long while only running jobs remain. */
export const CONFIRM_WAIT_S = 15;
export const JOBS_WAIT_S = 300;
/** Steps before detach gives up (a workflow's history holds ~25,000 events; a step costs ~10): ~7 days. */
export const MAX_DETACH_STEPS = 2000;

/** Not an attached cluster, or not being deleted: detach refuses (never retried). */
export class NotDetachableError extends Error {
  override readonly name = "NotDetachableError";
}

/** Jobs still run on NowScale's nodes after MAX_DETACH_STEPS: DELETE (or detach) again resumes. */
export class DetachTimeoutError extends Error {
  override readonly name = "DetachTimeoutError";
}

export async function detachStep(
  deps: DetachDeps,
  clusterId: string,
  previous: DetachEvidence,
): Promise<DetachProgress> {
  const { store, clock } = deps;
  const log = deps.log ?? silentLog;
  const cluster = await store.getCluster(clusterId);
  if (cluster === undefined || originOf(cluster) !== "attached") {
    throw new NotDetachableError(`cluster ${clusterId} is not an attached cluster: nothing is detached`);
  }
  if (cluster.status !== "DELETING") {
    throw new NotDetachableError(
      `cluster ${clusterId} is ${cluster.status}: detach runs on a DELETING cluster`,
    );
  }
  const steps = previous.steps + 1;
  const now = clock.now();
  const intents = await store.listLaunchIntents(clusterId, "INTENDED");
  const inFlight = intents.filter((i) => now - i.intendedAt < ABANDONED_INTENT_MS).length;
  await adoptLaunched(deps, cluster, now);

  let report: OkReport | undefined;
  try {
    report = await deps.agent.report();
  } catch (error) {
    if (!(error instanceof AgentUnreachableError || error instanceof SlurmctldUnreachableError)) throw error;
    log.warn("detach: no report, nothing retired this step", { clusterId, error: (error as Error).message });
  }
  const records = await store.listNodes(clusterId);
  const progress: DetachProgress = {
    idle: [],
    absent: [],
    steps,
    done: false,
    retired: [],
    busy: [],
    inFlight,
    remaining: records.length,
    waitSeconds: CONFIRM_WAIT_S,
  };
  if (report === undefined) return timed(progress, records.length);

  const inSlurm = new Map(report.nodes.map((n) => [n.name, n]));
  const busy = nodesRunningJobs(report);
  let actions = 0;
  const retire = async (record: NodeRecord) => {
    actions++;
    // A record another writer moved since this step read it is left for the next step to look at again.
    const result = await retireNode({ ...deps, log }, clusterId, record, clock.now()).catch((error) => {
      if (error instanceof RetirementOvertakenError) return "overtaken" as const;
      throw error;
    });
    if (result === "retired") progress.retired.push(record.nodeName);
  };
  for (const record of records) {
    if (actions >= MAX_ACTIONS) break;
    const name = record.nodeName;
    const node = inSlurm.get(name);
    if (record.status === "TERMINATING" && !busy.has(name)) {
      // Retirement was decided before (a terminate or a Slurm delete failed): carry it out again, once
      // Slurm gives the node no new job (not listed, drained or down); one listed idle and not drained
      // (a boot that joined after its release failed) may take a job any moment, so it is drained first.
      if (node === undefined || node.state === "DRAINED" || node.state === "DOWN") await retire(record);
      else {
        actions++;
        await deps.agent.drain(name, DETACH_REASON);
      }
      continue;
    }
    if (node === undefined) {
      // Not in Slurm (never joined, or gone): in two steps in a row, it runs nothing there.
      if (previous.absent.includes(name)) await retire(record);
      else progress.absent.push(name);
      continue;
    }
    if (busy.has(name)) {
      progress.busy.push(name);
      if (node.state !== "DRAINING") {
        actions++;
        await deps.agent.drain(name, DETACH_REASON);
      }
      continue;
    }
    if (node.state !== "DRAINED" && node.state !== "DOWN") {
      actions++;
      await deps.agent.drain(name, DETACH_REASON);
      continue;
    }
    if (previous.idle.includes(name)) await retire(record);
    else progress.idle.push(name);
  }
  progress.remaining = (await store.listNodes(clusterId)).length;
  if (progress.remaining > 0 || inFlight > 0) {
    const confirming = progress.idle.length + progress.absent.length > 0 || progress.retired.length > 0;
    progress.waitSeconds = confirming || steps < 8 ? CONFIRM_WAIT_S : JOBS_WAIT_S;
    return timed(progress, progress.remaining);
  }

  // Nothing of NowScale's runs any more: what it added to Slurm goes too.
  await deps.agent.syncPlaceholders([]);
  const clear = jobNoteChanges(report, new Map(), () => true, 50);
  if (clear.length > 0) await deps.agent.setJobNotes(clear);
  await releaseMasterClaim(store, cluster, clock.now());
  await event(
    store,
    clusterId,
    clock,
    "STATUS_CHANGED",
    "detached: NowScale's nodes retired; the master untouched",
  );
  progress.done = true;
  return progress;
}

/** Instances with the cluster's tag, launched after the attach, without a record: recorded so they retire too. */
async function adoptLaunched(deps: DetachDeps, cluster: ClusterRecord, now: number): Promise<void> {
  const attachedAt = cluster.attachment?.attachedAt ?? Number.POSITIVE_INFINITY;
  const master = cluster.attachment?.instanceId;
  const tracked = new Set((await deps.store.listNodes(cluster.clusterId)).map((r) => r.instanceId));
  for (const instance of await deps.provider.list(cluster.clusterId)) {
    if (tracked.has(instance.id) || instance.id === master) continue;
    if (instance.state === "TERMINATED" || instance.state === "TERMINATING") continue;
    // No launch time, or one before the attach: not provably NowScale's.
    if (instance.launchedAt === undefined || instance.launchedAt < attachedAt) continue;
    await deps.store.putNode({
      clusterId: cluster.clusterId,
      nodeName: instance.id,
      instanceId: instance.id,
      queue: instance.queue ?? "unknown",
      instanceType: instance.instanceType,
      zone: instance.zone,
      chargeType: instance.chargeType,
      status: "LAUNCHING",
      launchedAt: instance.launchedAt,
      updatedAt: now,
      origin: "adopted",
    });
  }
}

function timed(progress: DetachProgress, remaining: number): DetachProgress {
  if (progress.steps < MAX_DETACH_STEPS) return progress;
  throw new DetachTimeoutError(
    `detach gave up after ${progress.steps} steps with ${remaining} node(s) left (busy: ${progress.busy.slice(0, 10).join(", ") || "none"}): DELETE the cluster again to resume`,
  );
}
