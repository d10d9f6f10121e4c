import { z } from "zod";
import { detachStep } from "../../control/detach.js";
import { CLOUD_ID, SIMPLE_NAME } from "../../core/names.js";
import { parseWith } from "../../core/validation.js";
import {
  checkAgentHealth,
  createNetwork,
  createSecrets,
  createSecurityGroup,
  launchMaster,
  validate,
} from "./create-tasks.js";
import { type LifecycleDeps, lifecycleDepsFor } from "./deps.js";
import { BadTaskInputError } from "./errors.js";
import { failureReason } from "./reason.js";
import { createClusterRequestSchema } from "./request.js";
import {
  awaitInstancesGone,
  awaitLaunchesSettled,
  deleteNetwork,
  deleteSecrets,
  drainCluster,
  terminateInstances,
} from "./teardown-tasks.js";

/**
 * The single entry of the workflow-task Lambda: `{task, ...input}` from a state machine's Task state
 * goes to the named lifecycle task. Inputs are checked with strict schemas; the workflow's own output
 * is the only legitimate caller, so a mismatch is a BadTaskInputError (not retried).
 */

const clusterId = z.string().regex(SIMPLE_NAME);
const id = z.string().regex(CLOUD_ID);
const stepError = z
  .object({ Error: z.string().exactOptional(), Cause: z.string().exactOptional() })
  .optional();
const selection = z.enum(["computes", "master", "all"]);
const network = z.strictObject({
  vpcId: id,
  subnetIds: z.array(id),
  masterSubnetId: id,
  owned: z.boolean(),
});
const secrets = z.strictObject({ mungeKeySecretId: z.string(), agentKeySecretId: z.string() });
const master = z.strictObject({
  instanceId: id,
  privateIp: z.string().exactOptional(),
  agentPort: z.number().int(),
  securityGroupId: id.exactOptional(),
  mungeKeySecretId: z.string().exactOptional(),
  agentKeySecretId: z.string().exactOptional(),
  healthDeadline: z.number(),
});

export const taskInputSchema = z.discriminatedUnion("task", [
  // validate takes anything: reporting what is wrong with it is its job.
  z.object({ task: z.literal("validate"), clusterId: z.unknown(), request: z.unknown() }),
  z.strictObject({
    task: z.literal("recordStatus"),
    clusterId,
    status: z.enum(["CREATING", "RUNNING", "FAILED", "DELETING", "DELETED", "DELETE_FAILED"]),
    error: stepError,
    cleanupError: stepError,
  }),
  z.strictObject({ task: z.literal("createNetwork"), clusterId, request: createClusterRequestSchema }),
  z.strictObject({ task: z.literal("createSecurityGroup"), clusterId, vpcId: id }),
  z.strictObject({ task: z.literal("createSecrets"), clusterId, vpcId: id.optional() }),
  z.strictObject({
    task: z.literal("launchMaster"),
    clusterId,
    request: createClusterRequestSchema,
    network,
    securityGroupId: id,
    secrets,
  }),
  z.strictObject({ task: z.literal("checkAgentHealth"), clusterId, master }),
  z.strictObject({ task: z.literal("drain"), clusterId }),
  z.strictObject({ task: z.literal("awaitLaunchesSettled"), clusterId }),
  z.strictObject({ task: z.literal("terminateInstances"), clusterId, which: selection }),
  z.strictObject({ task: z.literal("awaitInstancesGone"), clusterId, which: selection }),
  z.strictObject({ task: z.literal("deleteSecrets"), clusterId }),
  z.strictObject({ task: z.literal("deleteNetwork"), clusterId }),
  z.strictObject({ task: z.literal("clusterOrigin"), clusterId }),
  z.strictObject({
    task: z.literal("detachStep"),
    clusterId,
    // What the previous step saw (delete-cluster.ts carries it in the execution's state).
    previous: z.object({
      idle: z.array(z.string().regex(SIMPLE_NAME)).max(10_000),
      absent: z.array(z.string().regex(SIMPLE_NAME)).max(10_000),
      steps: z.number().int().min(0),
    }),
  }),
]);

export type TaskInput = z.input<typeof taskInputSchema>;
export type TaskName = TaskInput["task"];

/** The tasks that touch no cloud: they run with the stack's deps whatever the cluster's cloud. */
const CLOUDLESS_TASKS: ReadonlySet<TaskName> = new Set([
  "recordStatus",
  "awaitLaunchesSettled",
  "clusterOrigin",
  "detachStep",
]);

export async function runLifecycleTask(stackDeps: LifecycleDeps, raw: unknown): Promise<unknown> {
  let input: z.output<typeof taskInputSchema>;
  try {
    input = parseWith(taskInputSchema, raw, "workflow task input");
  } catch (error) {
    throw new BadTaskInputError((error as Error).message);
  }
  const deps = await depsForTask(stackDeps, input);
  switch (input.task) {
    case "validate":
      return validate(deps, input);
    case "recordStatus": {
      const reason =
        input.status === "FAILED" || input.status === "DELETE_FAILED"
          ? failureReason(input.error, input.cleanupError)
          : undefined;
      await deps.store.setStatus(input.clusterId, input.status, reason === undefined ? {} : { reason });
      return { status: input.status, ...(reason === undefined ? {} : { reason }) };
    }
    case "createNetwork":
      return createNetwork(deps, input.clusterId, input.request);
    case "createSecurityGroup":
      return createSecurityGroup(deps, input.clusterId, input.vpcId);
    case "createSecrets":
      return createSecrets(deps, input.clusterId, input.vpcId);
    case "launchMaster":
      return launchMaster(deps, input);
    case "checkAgentHealth":
      return checkAgentHealth(deps, input.clusterId, input.master);
    case "drain":
      return drainCluster(deps, input.clusterId);
    case "awaitLaunchesSettled":
      return awaitLaunchesSettled(deps, input.clusterId);
    case "terminateInstances":
      return terminateInstances(deps, input.clusterId, input.which);
    case "awaitInstancesGone":
      return awaitInstancesGone(deps, input.clusterId, input.which);
    case "deleteSecrets":
      return deleteSecrets(deps, input.clusterId);
    case "deleteNetwork":
      return deleteNetwork(deps, input.clusterId);
    case "clusterOrigin":
      return { attached: (await deps.store.origin(input.clusterId)) === "attached" };
    case "detachStep":
      return detach(deps, input.clusterId, input.previous);
  }
}

/**
 * The deps for the cluster's recorded cloud (deps.ts, lifecycleDepsFor). A stack set up for its own cloud
 * only (no `clouds`) never reads the placement: its tasks run as they always did.
 */
async function depsForTask(
  deps: LifecycleDeps,
  input: z.output<typeof taskInputSchema>,
): Promise<LifecycleDeps> {
  if (deps.clouds === undefined || CLOUDLESS_TASKS.has(input.task)) return deps;
  // validate reports a bad cluster id itself; there is no record to read for one.
  if (typeof input.clusterId !== "string" || !SIMPLE_NAME.test(input.clusterId)) return deps;
  return lifecycleDepsFor(deps, await deps.store.placement(input.clusterId));
}

/** One detach step with the cluster's own cloud and agent, as the scaler reaches them. */
async function detach(
  deps: LifecycleDeps,
  clusterId: string,
  previous: { idle: string[]; absent: string[]; steps: number },
) {
  const control = deps.controlPlane;
  if (control === undefined) throw new BadTaskInputError("this workflow runtime cannot detach clusters");
  const cluster = await control.store.getCluster(clusterId);
  if (cluster === undefined) throw new BadTaskInputError(`no cluster ${clusterId}`);
  const { provider, agent } = await control.runtime(cluster);
  const progress = await detachStep(
    { store: control.store, provider, agent, clock: deps.clock },
    clusterId,
    previous,
  );
  // Users made on an attached master have their passwords and keys in NowScale's store: they go once
  // the detach is done (the master and its users stay the user's). A failure fails the step, whose retry
  // finds nothing left to retire and deletes them again (deleting is idempotent).
  // The step itself is cloudless (the runtime reaches the cluster's cloud); the secrets are in its cloud's store.
  const resources = progress.done
    ? deps.clouds === undefined
      ? deps.resources
      : (await lifecycleDepsFor(deps, cluster.placement)).resources
    : undefined;
  const recorded = (cluster.users ?? []).flatMap((u) => u.secretId ?? []);
  const usersSecrets = (await resources?.deleteUserSecrets?.(clusterId, recorded)) ?? [];
  // The execution's state keeps what the next step needs and what a person reading it wants to see.
  return {
    ...(usersSecrets.length === 0 ? {} : { deletedUserSecrets: usersSecrets.length }),
    idle: progress.idle,
    absent: progress.absent,
    steps: progress.steps,
    done: progress.done,
    waitSeconds: progress.waitSeconds,
    remaining: progress.remaining,
    busy: progress.busy.slice(0, 20),
  };
}
