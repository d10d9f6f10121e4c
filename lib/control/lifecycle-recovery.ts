import { randomBytes } from "node:crypto";
import type { Clock } from "../ports/clock.js";
import type { ClusterRecord, StateStore } from "../ports/state-store.js";
import type { ExecutionState, WorkflowStarter } from "../workflow/starter.js";
import { takeAdmissionLease } from "./launch.js";
import { type ControlLog, silentLog } from "./log.js";

/**
 * Never strand a cluster. A cluster is CREATING or DELETING only while a workflow execution works on it;
 * when a start failed (Step Functions throttled, the API Lambda died) or an execution ended without
 * recording its outcome (timed out, aborted, its last record failed), nothing else would ever move the
 * cluster: the scaler and reconciler skip both statuses. The API (a retried DELETE or POST) and the
 * reconciler's `recoverStuckClusters` start what is missing, here, with the same rules.
 */

/** A record written more recently than this is left alone: the request that wrote it may still be starting its workflow. */
export const RECOVERY_GRACE_MS = 120_000;

/** Deletion attempts (each counted before its start) after which the reconciler records FAILED. */
export const MAX_DELETION_ATTEMPTS = 3;

export interface LifecycleRecoveryDeps {
  store: StateStore;
  clock: Clock;
  workflows: WorkflowStarter;
  log?: ControlLog;
}

export interface LifecycleRecoveryOptions {
  /** @default RECOVERY_GRACE_MS */
  graceMs?: number;
  /** @default MAX_DELETION_ATTEMPTS */
  maxDeletionAttempts?: number;
}

export interface RecoverySummary {
  /** CREATING clusters whose creation workflow was started (again). */
  creationsStarted: string[];
  /** DELETING clusters for which a new deletion attempt was started. */
  deletionsStarted: string[];
  /** Clusters recorded FAILED: a creation that ended unrecorded, or deletion out of attempts. */
  failed: string[];
  /** Clusters this run could not act on (each is retried next run); one never stops the others. */
  errors: { clusterId: string; message: string }[];
}

/** The workflow could not be started; nothing runs, and the record says what was attempted. */
export class WorkflowStartError extends Error {
  override readonly name = "WorkflowStartError";
}

/**
 * Starts one deletion attempt of `cluster` (any status but DELETED): records DELETING with the attempt
 * counted (a versioned write: of two callers only one starts this attempt), starts the deletion workflow
 * named after the new version (so a retried start of the same attempt is the same execution), records its
 * execution, and appends an event. The count restarts at 1 when the cluster was not DELETING yet.
 * Throws WorkflowStartError when the start failed: the cluster stays DELETING, the attempt counted.
 */
export async function startDeletionAttempt(
  deps: LifecycleRecoveryDeps,
  cluster: ClusterRecord,
  why: string,
  by?: string,
): Promise<ClusterRecord> {
  const now = deps.clock.now();
  const attempt = cluster.status === "DELETING" ? (cluster.deletionAttempts ?? 1) + 1 : 1;
  // The fence's first half: DELETING is written under the admission lease, so no launch is admitted
  // after it (the deletion workflow then waits for those admitted before: AwaitLaunchesSettled).
  const owner = `delete-${randomBytes(8).toString("hex")}`;
  const lease = await takeAdmissionLease({ store: deps.store, clock: deps.clock, owner }, cluster.clusterId);
  if (lease === undefined) {
    throw new WorkflowStartError(
      "a launch holds the cluster's admission lease: retry the deletion in a few seconds",
    );
  }
  let deleting: ClusterRecord;
  try {
    deleting = await deps.store.updateCluster(cluster.clusterId, cluster.version, {
      status: "DELETING",
      deletionAttempts: attempt,
      now,
    });
  } finally {
    await deps.store.releaseLease(lease).catch(() => undefined);
  }
  let executionArn: string;
  try {
    executionArn = await deps.workflows.startDelete(cluster.clusterId, deleting.version);
  } catch (error) {
    throw new WorkflowStartError(
      `the deletion workflow could not be started (attempt ${attempt}): ${(error as Error).message}`.slice(
        0,
        500,
      ),
      { cause: error },
    );
  }
  const updated = await deps.store.updateCluster(cluster.clusterId, deleting.version, { executionArn, now });
  await deps.store.appendEvent({
    clusterId: cluster.clusterId,
    kind: "STATUS_CHANGED",
    message:
      attempt === 1 ? `cluster deletion started${why}` : `cluster deletion attempt ${attempt} started${why}`,
    at: now,
    ...(by === undefined ? {} : { by }),
  });
  return updated;
}

/**
 * Starts the creation workflow of a CREATING cluster that has none (idempotent: the execution is named
 * after the cluster) and records its execution. Throws WorkflowStartError when the start failed.
 */
export async function startCreation(
  deps: LifecycleRecoveryDeps,
  cluster: ClusterRecord,
): Promise<ClusterRecord> {
  let executionArn: string;
  try {
    executionArn = await deps.workflows.startCreate(cluster.clusterId, cluster.spec);
  } catch (error) {
    throw new WorkflowStartError(
      `the creation workflow could not be started: ${(error as Error).message}`.slice(0, 500),
      { cause: error },
    );
  }
  return deps.store.updateCluster(cluster.clusterId, cluster.version, {
    executionArn,
    now: deps.clock.now(),
  });
}

/** The deletion execution the record names, if its execution ARN is one (it may still name the creation's). */
export function deletionExecutionOf(cluster: ClusterRecord): string | undefined {
  const arn = cluster.executionArn;
  return arn !== undefined && executionName(arn).startsWith("delete-") ? arn : undefined;
}

/** How the workflow working on the cluster stands: its creation while CREATING, its deletion while DELETING. */
export async function currentExecution(
  deps: LifecycleRecoveryDeps,
  cluster: ClusterRecord,
): Promise<ExecutionState & { executionArn?: string }> {
  const arn = cluster.status === "DELETING" ? deletionExecutionOf(cluster) : cluster.executionArn;
  if (arn === undefined) return { status: "ABSENT" };
  return { ...(await deps.workflows.describeExecution(arn)), executionArn: arn };
}

/**
 * Every CREATING or DELETING cluster left without a live workflow gets one, or an end: run by the
 * reconciler (functions/reconciler.ts, and the local mode's loop). Records changed within `graceMs` are
 * left to the request that changed them.
 *
 * - CREATING, no execution (its start failed): the creation workflow is started again.
 * - CREATING, the execution ended without recording RUNNING or FAILED (timed out, aborted, or its last
 *   record failed): FAILED with a reason naming the execution and how it ended.
 * - DELETING, no deletion execution, or one that ended without recording DELETED: a new attempt is
 *   started, up to `maxDeletionAttempts`; after that FAILED with a reason naming the step that failed.
 */
export async function recoverStuckClusters(
  deps: LifecycleRecoveryDeps,
  options: LifecycleRecoveryOptions = {},
): Promise<RecoverySummary> {
  const graceMs = options.graceMs ?? RECOVERY_GRACE_MS;
  const maxAttempts = options.maxDeletionAttempts ?? MAX_DELETION_ATTEMPTS;
  const log = deps.log ?? silentLog;
  const summary: RecoverySummary = { creationsStarted: [], deletionsStarted: [], failed: [], errors: [] };
  const stuck = [
    ...(await deps.store.listClusters({ status: "CREATING" })),
    ...(await deps.store.listClusters({ status: "DELETING" })),
  ];
  for (const cluster of stuck) {
    if (deps.clock.now() - cluster.updatedAt < graceMs) continue;
    try {
      const outcome =
        cluster.status === "CREATING"
          ? await recoverCreating(deps, cluster)
          : await recoverDeleting(deps, cluster, maxAttempts);
      if (outcome === "started" && cluster.status === "CREATING")
        summary.creationsStarted.push(cluster.clusterId);
      if (outcome === "started" && cluster.status === "DELETING")
        summary.deletionsStarted.push(cluster.clusterId);
      if (outcome === "failed") summary.failed.push(cluster.clusterId);
      if (outcome !== "left") log.warn("stuck cluster recovered", { clusterId: cluster.clusterId, outcome });
    } catch (error) {
      // One cluster's failure (the start failed again, a conflicting write) is retried on the next run.
      const message = (error as Error).message.slice(0, 500);
      summary.errors.push({ clusterId: cluster.clusterId, message });
      log.error("stuck cluster not recovered", { clusterId: cluster.clusterId, error: message });
    }
  }
  return summary;
}

type Outcome = "left" | "started" | "failed";

async function recoverCreating(deps: LifecycleRecoveryDeps, cluster: ClusterRecord): Promise<Outcome> {
  const execution = await currentExecution(deps, cluster);
  if (execution.status === "RUNNING") return "left";
  if (execution.status === "ABSENT") {
    if (cluster.spec === undefined) {
      await fail(
        deps,
        cluster,
        "creation failed: no creation request was recorded to start the workflow with",
      );
      return "failed";
    }
    await startCreation(deps, cluster);
    await deps.store.appendEvent({
      clusterId: cluster.clusterId,
      kind: "STATUS_CHANGED",
      message: "cluster creation started by the reconciler (the first start did not take)",
      at: deps.clock.now(),
    });
    return "started";
  }
  await fail(
    deps,
    cluster,
    `creation failed: the creation workflow (${executionName(execution.executionArn ?? "")}) ended ` +
      `${execution.status}${detail(execution)} without recording the outcome; anything it made may remain: ` +
      "DELETE the cluster to remove it",
  );
  return "failed";
}

async function recoverDeleting(
  deps: LifecycleRecoveryDeps,
  cluster: ClusterRecord,
  maxAttempts: number,
): Promise<Outcome> {
  const execution = await currentExecution(deps, cluster);
  if (execution.status === "RUNNING") return "left";
  const attempts = cluster.deletionAttempts ?? 1;
  if (attempts >= maxAttempts) {
    const step =
      execution.executionArn === undefined
        ? "starting the deletion workflow (StartExecution) failed"
        : execution.status === "ABSENT"
          ? `the deletion workflow (${executionName(execution.executionArn)}) has no execution`
          : `the deletion workflow (${executionName(execution.executionArn)}) ended ${execution.status}` +
            `${detail(execution)} without recording DELETED`;
    await fail(
      deps,
      cluster,
      `deletion failed after ${attempts} attempts: ${step}; DELETE the cluster to try again`,
    );
    return "failed";
  }
  await startDeletionAttempt(deps, cluster, " by the reconciler");
  return "started";
}

async function fail(deps: LifecycleRecoveryDeps, cluster: ClusterRecord, reason: string): Promise<void> {
  const now = deps.clock.now();
  await deps.store.updateCluster(cluster.clusterId, cluster.version, { status: "FAILED", reason, now });
  await deps.store.appendEvent({
    clusterId: cluster.clusterId,
    kind: "STATUS_CHANGED",
    message: reason,
    at: now,
  });
}

function detail(execution: ExecutionState): string {
  return execution.error === undefined ? "" : ` (${execution.error})`;
}

/** An execution ARN ends with `:<name>`; names are `create-<cluster>` and `delete-<cluster>-<attempt>`. */
function executionName(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(":") + 1);
}
