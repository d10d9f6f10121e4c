import { randomBytes } from "node:crypto";
import { type Config, candidateOf, parseConfig } from "../core/config.js";
import type { Launch } from "../core/model.js";
import type { ValidationIssue } from "../core/validation.js";
import { ValidationError } from "../core/validation.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import { DEFAULT_IMAGE } from "../ports/cloud-provider.js";
import type { MasterPower } from "../ports/master-power.js";
import {
  type ClusterPlacement,
  type ClusterRecord,
  ConflictError,
  originOf,
  type QueueHealth,
  type ScalingEvent,
  type StateStore,
} from "../ports/state-store.js";
import type { WorkflowStarter } from "../workflow/starter.js";
import { type CreateClusterRequest, checkRegion } from "../workflow/tasks/request.js";
import type { AttachClusterBody } from "./api/schemas.js";
import { type AttachOutcome, type AttachPorts, attachCluster as attach } from "./attach.js";
import {
  AdmissionBusyError,
  StateRefusedError,
  UnknownNameError,
  UnsupportedOperationError,
} from "./errors.js";
import { appendControlEvent as event } from "./events.js";
import { recordedLaunch } from "./launch.js";
import {
  currentExecution,
  startCreation,
  startDeletionAttempt,
  WorkflowStartError,
} from "./lifecycle-recovery.js";
import type { MetricsSink } from "./metrics.js";
import { type NodeView, nodeViews, slurmNodes } from "./node-list.js";
import { retireNode } from "./node-retirement.js";
import { partitionSpecs } from "./queues.js";
import { clusterPrices, computeUsage, type UsageReport } from "./usage.js";
import { checkZones, type ZonesOf } from "./zones.js";

/**
 * What an operator does to a cluster (the REST API's routes call these with input already parsed):
 * create and delete through the workflows, replace the autoscaling configuration, sleep and wake, add
 * and delete nodes by hand, read events and consoles, reset a queue's protected mode. The rules live
 * here; refusals are typed errors (ValidationError, UnknownNameError, ConflictError, WorkflowStartError,
 * AdmissionBusyError, UnsupportedOperationError) that each edge maps to its own answers.
 */

export interface ClusterAdminDeps {
  store: StateStore;
  clock: Clock;
  workflows: WorkflowStarter;
  metrics: MetricsSink;
  /** The cloud and the agent of a cluster, for adding and deleting nodes by hand. */
  runtime: (cluster: ClusterRecord) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;
  /** The boot script of manually added nodes (as the scaler's). @default none */
  userData?: (cluster: ClusterRecord, launch: Launch) => string | undefined;
  /** @default "c-" + 12 random hex digits */
  newClusterId?: () => string;
  /** The stack's region: a create request for another is refused naming `region`. @default no check */
  region?: string;
  /**
   * The zones of a cloud's region: a configuration (create, attach, autoscaling set, queue add) naming another
   * zone is refused naming the entry's `zone` (lib/control/zones.ts). @default no check
   */
  zones?: ZonesOf;
  /**
   * Who asks: the IAM principal on the deployed API, `local:root` in the local mode. Operator events
   * record it (`by`); absent when the transport authenticated nobody.
   */
  by?: string | undefined;
  /** How an existing master is reached and its network checked before it is attached (lib/control/attach.ts). @default attach refused (501) */
  attach?: AttachPorts;
  /** Stops and starts a cluster's master for sleep and wake (lib/control/sleep.ts). @default none: the master is left running */
  masterPower?: (cluster: ClusterRecord) => MasterPower | undefined;
}

export interface NewClusterRequest {
  name: string;
  cloud: ClusterPlacement["cloud"];
  /** The image compute nodes boot from. @default the master's image, else the default image */
  computeImageId?: string | undefined;
  /** Validated once, at the edge; stored once, on the cluster record. */
  autoscaling: Config;
  /** What the creation workflow makes (network, master); it carries no autoscaling configuration. */
  request: CreateClusterRequest;
}

/**
 * Records the cluster (CREATING) and starts its creation workflow. With an idempotency key, a retried
 * request returns the first request's cluster (`created: false`), starting its workflow if that start
 * never took. WorkflowStartError when the workflow cannot be started: the cluster stays recorded CREATING.
 */
export async function createCluster(
  deps: ClusterAdminDeps,
  input: NewClusterRequest,
  idempotencyKey?: string,
): Promise<{ cluster: ClusterRecord; created: boolean }> {
  const { request } = input;
  checkRegion(request.region, deps.region);
  await checkZones(
    deps.zones,
    { cloud: input.cloud, region: request.region },
    input.autoscaling,
    "request body",
    ["autoscaling"],
  );
  const clusterId = (deps.newClusterId ?? defaultClusterId)();
  const { cluster, created } = await deps.store.createCluster(
    {
      clusterId,
      name: input.name,
      // Without an image: the default (Debian 12) image of each launch's architecture (lib/providers/aws-ec2).
      placement: {
        cloud: input.cloud,
        region: request.region,
        imageId: input.computeImageId ?? request.master.imageId ?? DEFAULT_IMAGE,
      },
      autoscaling: input.autoscaling,
      spec: request,
      now: deps.clock.now(),
    },
    idempotencyKey,
  );
  let current = cluster;
  // The first start, or a retried request whose first attempt recorded the cluster but whose start
  // failed (or died before it): the execution is named after the cluster, so starting twice is one run.
  if (current.executionArn === undefined && current.status === "CREATING") {
    try {
      current = await startCreation(deps, current);
    } catch (error) {
      if (!(error instanceof WorkflowStartError)) throw error;
      const message = "cluster recorded; its creation workflow could not be started";
      if (created)
        await event(deps.store, cluster.clusterId, deps.clock, "STATUS_CHANGED", message, ...by(deps));
      throw new WorkflowStartError(
        `${error.message}: cluster ${current.clusterId} is recorded CREATING; retry with the same ` +
          "Idempotency-Key or DELETE it (the reconciler also starts it within minutes)",
      );
    }
    await event(
      deps.store,
      cluster.clusterId,
      deps.clock,
      "STATUS_CHANGED",
      "cluster creation started",
      ...by(deps),
    );
  }
  return { cluster: current, created };
}

/** Every cluster, any status, ordered by id. */
export function listClusters(deps: Pick<ClusterAdminDeps, "store">): Promise<ClusterRecord[]> {
  return deps.store.listClusters();
}

/** The cluster; UnknownNameError naming `clusterId` when there is none. */
export async function getCluster(
  deps: Pick<ClusterAdminDeps, "store">,
  clusterId: string,
): Promise<ClusterRecord> {
  const cluster = await deps.store.getCluster(clusterId);
  if (cluster === undefined) {
    throw new UnknownNameError(`no cluster ${shown(clusterId)}`, [
      { path: "clusterId", message: "no such cluster" },
    ]);
  }
  return cluster;
}

/**
 * Starts the deletion workflow; idempotent while one runs. A DELETING cluster whose deletion never
 * started (the start failed) or ended without recording DELETED gets a new attempt. A CREATING cluster
 * is refused (ConflictError) only while its creation workflow runs: one whose start failed, or whose
 * execution ended without recording the outcome, is deleted (deletion removes whatever the ledger and the
 * tag find). WorkflowStartError when the workflow's state cannot be read or the deletion cannot start.
 */
export async function deleteCluster(deps: ClusterAdminDeps, clusterId: string): Promise<ClusterRecord> {
  const cluster = await getCluster(deps, clusterId);
  if (cluster.status === "DELETED") return cluster;
  let running: boolean;
  try {
    running = (await currentExecution(deps, cluster)).status === "RUNNING";
  } catch (error) {
    throw new WorkflowStartError(
      `the workflow's state could not be read: ${(error as Error).message}`.slice(0, 500),
      { cause: error },
    );
  }
  if (cluster.status === "DELETING" && running) return cluster;
  if (cluster.status === "CREATING" && running) {
    throw new ConflictError("the cluster is still being created: wait until it is RUNNING or FAILED");
  }
  const why = cluster.status === "DELETING" ? " (the previous attempt is not running)" : "";
  try {
    return await startDeletionAttempt(deps, cluster, why, deps.by);
  } catch (error) {
    if (!(error instanceof WorkflowStartError)) throw error;
    throw new WorkflowStartError(
      `${error.message}: cluster ${cluster.clusterId} is recorded DELETING; retry the DELETE (the reconciler also retries within minutes)`,
    );
  }
}

/**
 * Replaces the whole autoscaling configuration (THPC's SetAutoScalingConfiguration), conditional on
 * `expectedVersion` when given (ConflictError when the record moved on). Refused while deleting.
 * Queues are partitions on the master: a new queue gets its partition first (as `queue add` does; a
 * CREATING cluster's master takes the queues the record holds when it is launched); a dropped queue is refused (StateRefusedError), since its nodes must be
 * drained and retired first (`DELETE .../queues/{queue}`, lib/control/queues.ts).
 */
export async function replaceAutoscaling(
  deps: ClusterAdminDeps,
  clusterId: string,
  config: Config,
  expectedVersion?: number,
): Promise<ClusterRecord> {
  const cluster = await getCluster(deps, clusterId);
  if (cluster.status === "DELETING" || cluster.status === "DELETED") {
    throw new ConflictError(`the cluster is ${cluster.status}`);
  }
  await checkZones(deps.zones, cluster.placement, config, "request body");
  const before = parseConfig(cluster.autoscaling, "autoscaling configuration").queues.map((q) => q.queueName);
  const after = config.queueConfigs.map((q) => q.queueName);
  const dropped = before.filter((q) => !after.includes(q));
  // A CREATING cluster has neither nodes nor partitions yet: its queues may change freely.
  if (dropped.length > 0 && cluster.status !== "CREATING")
    throw new StateRefusedError(
      `queue ${dropped.join(", ")} would be dropped: delete a queue with DELETE /clusters/${cluster.clusterId}/queues/{queue} (nowscale queue delete), which drains and retires its nodes first`,
    );
  // A CREATING cluster's master takes the record's queues when the workflow launches it (LifecycleStore
  // .queues); a running master gets the new partitions through its agent first.
  if (after.some((q) => !before.includes(q)) && cluster.status !== "CREATING") {
    if (cluster.status !== "RUNNING" && cluster.status !== "SLEEPING")
      throw new StateRefusedError(
        `the cluster is ${cluster.status}: queues can be added to a CREATING, RUNNING or SLEEPING cluster only`,
      );
    const { agent } = await deps.runtime(cluster);
    await agent.setPartitions(partitionSpecs(config));
  }
  const updated = await deps.store.updateCluster(cluster.clusterId, expectedVersion ?? cluster.version, {
    autoscaling: config,
    now: deps.clock.now(),
  });
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "CONFIG_UPDATED",
    "autoscaling configuration replaced",
    ...by(deps),
  );
  return updated;
}

export interface AddNodesRequest {
  queue: string;
  count: number;
  /** Restricts the queue's expansionNodeConfigs to this type (and zone). */
  instanceType?: string | undefined;
  zone?: string | undefined;
}

/**
 * Launches `count` nodes of a configured queue by hand, through the one admission every launch takes
 * (maxSize, protected mode and the fence against deletion are checked there, under the admission lease).
 */
export async function addNodes(
  deps: ClusterAdminDeps,
  clusterId: string,
  request: AddNodesRequest,
): Promise<{ round: string; nodes: string[]; failures: { index: number; kind: string; message: string }[] }> {
  const cluster = await getCluster(deps, clusterId);
  const queue = parseConfig(cluster.autoscaling, "autoscaling configuration").queueByName.get(request.queue);
  if (queue === undefined) {
    throw new ValidationError("request body", [
      { path: "queue", message: "no such queue in the configuration" },
    ]);
  }
  const candidates = queue.entries
    .filter((e) => request.instanceType === undefined || e.instanceType === request.instanceType)
    .filter((e) => request.zone === undefined || e.zone === request.zone)
    .map(candidateOf);
  const first = candidates[0];
  if (first === undefined) {
    const path = request.zone !== undefined && request.instanceType === undefined ? "zone" : "instanceType";
    throw new ValidationError("request body", [
      { path, message: "not among the queue's expansionNodeConfigs" },
    ]);
  }
  if (cluster.status !== "RUNNING") throw new ConflictError(`the cluster is ${cluster.status}, not RUNNING`);
  const launch: Launch = {
    queue: request.queue,
    instanceType: first.instanceType,
    zone: first.zone,
    count: request.count,
    candidates,
    allOrNothing: false,
    jobs: [],
    reason: "added by hand",
  };
  const now = deps.clock.now();
  const round = `manual-${now.toString(36)}-${randomBytes(4).toString("hex")}`;
  const { provider } = await deps.runtime(cluster);
  const owner = `api-${randomBytes(8).toString("hex")}`;
  const { outcome, refused, message } = await recordedLaunch(
    { ...deps, provider, owner },
    cluster,
    launch,
    round,
    [],
    {
      fit: "exact",
    },
  );
  if (refused !== undefined && outcome === undefined) {
    throw refused === "admission-busy"
      ? new AdmissionBusyError(message ?? refused)
      : new ConflictError(message ?? refused);
  }
  return { round, nodes: outcome?.instances.map((i) => i.id) ?? [], failures: outcome?.failures ?? [] };
}

/**
 * Retires the named nodes (terminate, tell Slurm, remove the record: lib/control/node-retirement.ts).
 * UnknownNameError naming `nodes[i]` for each name that is not a node of the cluster; then none is touched.
 */
export async function deleteNodes(
  deps: ClusterAdminDeps,
  clusterId: string,
  nodes: readonly string[],
): Promise<void> {
  const cluster = await getCluster(deps, clusterId);
  const records = await deps.store.listNodes(cluster.clusterId);
  const issues: ValidationIssue[] = [];
  const chosen = nodes.map((name, i) => {
    const record = records.find((r) => r.nodeName === name);
    if (record === undefined)
      issues.push({ path: `nodes[${i}]`, message: `no node ${name} in this cluster` });
    return record;
  });
  if (issues.length > 0) throw new UnknownNameError("unknown nodes", issues);
  const { provider, agent } = await deps.runtime(cluster);
  const now = deps.clock.now();
  for (const record of chosen) {
    if (record === undefined) continue;
    // Slurm not told: the record stays TERMINATING and the reconciler removes the node from Slurm.
    await retireNode({ store: deps.store, provider, agent }, cluster.clusterId, record, now, {
      requested: true,
    });
  }
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "MANUAL",
    "nodes deleted by hand",
    undefined,
    [...nodes],
    nodes.length,
    deps.by,
  );
}

/** The cluster's scaling events, newest first. */
export async function listEvents(
  deps: ClusterAdminDeps,
  clusterId: string,
  limit: number,
): Promise<ScalingEvent[]> {
  const cluster = await getCluster(deps, clusterId);
  return deps.store.listEvents(cluster.clusterId, limit);
}

/**
 * A node's console output (its boot: cloud-init and the user data), the last `lines` lines. A node is
 * named after its instance id, so a node already gone (a failed boot) is still found by name where the
 * cloud keeps its console. UnsupportedOperationError where the cloud's provider cannot read consoles.
 */
export async function nodeConsole(
  deps: ClusterAdminDeps,
  clusterId: string,
  node: string,
  lines: number,
): Promise<{ node: string; instanceId: string; output: string }> {
  const cluster = await getCluster(deps, clusterId);
  const record = (await deps.store.listNodes(cluster.clusterId)).find((n) => n.nodeName === node);
  const { provider } = await deps.runtime(cluster);
  const notFound = (what: string) =>
    new UnknownNameError(`no node ${node}${what} in cluster ${cluster.clusterId}`, [
      { path: "node", message: `no such node${what}` },
    ]);
  if (provider.consoleOutput === undefined) {
    if (record === undefined) throw notFound("");
    throw new UnsupportedOperationError(`the ${provider.cloud} provider cannot read instance consoles`);
  }
  const instanceId = record?.instanceId ?? node;
  const output = await provider.consoleOutput(instanceId, lines);
  if (output === undefined) throw notFound(" with a console output");
  return { node, instanceId, output };
}

/**
 * Clears a configured queue's protected mode. Only the configuration's queues have a health to reset:
 * any other name is UnknownNameError naming `queue` (it would otherwise be written into the cluster
 * record, growing it toward DynamoDB's item limit, for nothing).
 */
export async function resetProtection(
  deps: ClusterAdminDeps,
  clusterId: string,
  queue: string,
): Promise<QueueHealth> {
  const cluster = await getCluster(deps, clusterId);
  const configured = parseConfig(cluster.autoscaling, "autoscaling configuration").queueByName;
  if (!configured.has(queue)) {
    throw new UnknownNameError(
      `no queue ${shown(queue)} in the configuration of cluster ${cluster.clusterId}`,
      [{ path: "queue", message: `not among the configured queues (${[...configured.keys()].join(", ")})` }],
    );
  }
  const health = await deps.store.resetProtectedMode(cluster.clusterId, queue, deps.clock.now());
  await event(
    deps.store,
    cluster.clusterId,
    deps.clock,
    "PROTECTED_MODE_CLEARED",
    "reset by an operator",
    queue,
    undefined,
    undefined,
    deps.by,
  );
  return health;
}

/**
 * Attaches an existing Slurm master (lib/control/attach.ts): every check, then one RUNNING record.
 * AttachRefusedError (a check failed), StateRefusedError (the master is already attached), naming the
 * field; nothing stored. UnsupportedOperationError when this control plane has no attach ports.
 */
export async function attachCluster(deps: ClusterAdminDeps, body: AttachClusterBody): Promise<AttachOutcome> {
  if (deps.region !== undefined && body.cloud === "aws" && body.region !== deps.region) {
    throw new ValidationError("request body", [
      { path: "region", message: `must be the stack's region ${deps.region}, not ${body.region}` },
    ]);
  }
  if (deps.attach === undefined)
    throw new UnsupportedOperationError("this control plane cannot attach masters");
  await checkZones(deps.zones, { cloud: body.cloud, region: body.region }, body.autoscaling, "request body", [
    "autoscaling",
  ]);
  return attach(
    {
      store: deps.store,
      clock: deps.clock,
      ports: deps.attach,
      ...(deps.newClusterId === undefined ? {} : { newClusterId: deps.newClusterId }),
    },
    body,
  );
}

/**
 * Detaches an attached cluster: the deletion workflow's detach path retires what NowScale launched and
 * leaves the master alone (DELETE does the same for an attached cluster). A created cluster: ConflictError.
 */
export async function detachCluster(deps: ClusterAdminDeps, clusterId: string): Promise<ClusterRecord> {
  const cluster = await getCluster(deps, clusterId);
  if (originOf(cluster) !== "attached") {
    throw new ConflictError(`cluster ${cluster.clusterId} was created by NowScale: DELETE deletes it`);
  }
  return deleteCluster(deps, clusterId);
}

/**
 * The cluster's nodes (THPC DescribeNodes): each record with Slurm's state from the agent's report, idle
 * time, cost so far and whether it may be rebuilt. Slurm unreachable (or the cluster not RUNNING or
 * SLEEPING): the records still answer, with `slurm.reachable` false and Slurm's fields null.
 */
export async function listNodes(
  deps: ClusterAdminDeps,
  clusterId: string,
): Promise<{
  clusterId: string;
  at: number;
  slurm: { reachable: true } | { reachable: false; error: string };
  nodes: NodeView[];
}> {
  const cluster = await getCluster(deps, clusterId);
  const records = await deps.store.listNodes(cluster.clusterId);
  let slurm: ReturnType<typeof slurmNodes> | undefined;
  let slurmError = `the cluster is ${cluster.status}`;
  if (cluster.status === "RUNNING" || cluster.status === "SLEEPING") {
    try {
      const { agent } = await deps.runtime(cluster);
      slurm = slurmNodes(await agent.report());
    } catch (error) {
      slurmError = (error as Error).message.slice(0, 300);
    }
  }
  const now = deps.clock.now();
  const config = parseConfig(cluster.autoscaling, "autoscaling configuration");
  return {
    clusterId: cluster.clusterId,
    at: now,
    slurm: slurm === undefined ? { reachable: false, error: slurmError } : { reachable: true },
    nodes: nodeViews(records, slurm, clusterPrices(cluster), now, config.bootTimeout * 1000),
  };
}

/**
 * Node-hours and cost by day, queue and instance type (lib/control/usage.ts) in the window [from, to]
 * (epoch ms; the first launch and now by default), from the live records and the usage history.
 */
export async function usage(
  deps: ClusterAdminDeps,
  clusterId: string,
  from?: number,
  to?: number,
): Promise<UsageReport & { at: number }> {
  const cluster = await getCluster(deps, clusterId);
  const [live, ended] = await Promise.all([
    deps.store.listNodes(cluster.clusterId),
    deps.store.listEndedNodes(cluster.clusterId, from),
  ]);
  const now = deps.clock.now();
  const report = computeUsage({
    clusterId: cluster.clusterId,
    live,
    ended,
    price: clusterPrices(cluster),
    now,
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
  });
  return { ...report, at: now };
}

/** The trailing arguments of appendControlEvent that record who asked (queue, nodes, count, by). */
function by(deps: Pick<ClusterAdminDeps, "by">): [undefined, undefined, undefined, string | undefined] {
  return [undefined, undefined, undefined, deps.by];
}

/** A user's string inside an error message: quoted, and short. */
export function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function defaultClusterId(): string {
  return `c-${randomBytes(6).toString("hex")}`;
}
