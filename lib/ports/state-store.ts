import type { ConfigInput } from "../core/config.js";
import type { ChargeType } from "../core/model.js";

/**
 * The control plane's state: clusters, nodes (with launch intents), scaling events and leases.
 * Adapters: lib/state/dynamo-store.ts (DynamoDB, and dynalite in tests and the local mode).
 *
 * Every state change is a conditional write: on a record's `version`, on its absence (create), or on a
 * lease's owner and expiry. A write whose condition fails throws ConflictError and changes nothing; a
 * read of a record that does not exist returns undefined (get) or throws NotFoundInStoreError (update).
 * All times are epoch milliseconds.
 */
export interface StateStore {
  // ── clusters ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Creates the cluster record (status CREATING, version 1). With an `idempotencyKey`, a second call with
   * the same key returns the cluster the first call created (`created: false`) and writes nothing, even
   * if that cluster has moved on since; without a key a second create of the same id is a ConflictError.
   */
  createCluster(
    input: NewCluster,
    idempotencyKey?: string,
  ): Promise<{ cluster: ClusterRecord; created: boolean }>;

  /** The cluster, or undefined. Deleted clusters stay readable with status DELETED. */
  getCluster(clusterId: string): Promise<ClusterRecord | undefined>;

  /** All clusters (any status), ordered by id; `status` filters. */
  listClusters(filter?: { status?: ClusterStatus }): Promise<ClusterRecord[]>;

  /**
   * Applies `change` if the record's version is still `expectedVersion`; returns the new record
   * (version + 1). ConflictError when someone else wrote first; NotFoundInStoreError if it does not exist.
   * FAILED requires a `reason`; moving to any other status clears the reason.
   */
  updateCluster(clusterId: string, expectedVersion: number, change: ClusterChange): Promise<ClusterRecord>;

  // ── nodes and launch intents ────────────────────────────────────────────────────────────────────

  /**
   * Records a launch the scale cycle is ABOUT to ask the provider for, before the call: the round (from
   * which the provider derives its idempotency tokens), the tokens it will use, queue, candidates, count
   * and time. Conditional on the round being new (a replayed round is a ConflictError, so two cycles can
   * never both record, and so launch, the same round).
   */
  recordLaunchIntent(intent: NewLaunchIntent): Promise<LaunchIntent>;

  /**
   * Records what a launch did: the instances started become node records (status LAUNCHING, with the
   * round, token and launch time), the intent becomes LAUNCHED (or FAILED with the failures when nothing
   * started). Conditional on the intent still being INTENDED. Node records for instances already
   * recorded are left as they are (idempotent when retried).
   */
  recordLaunchOutcome(clusterId: string, round: string, outcome: LaunchOutcome): Promise<void>;

  /** Launch intents of the cluster, optionally only those in `status`. */
  listLaunchIntents(clusterId: string, status?: LaunchIntentStatus): Promise<LaunchIntent[]>;

  /**
   * Removes the cluster's finished intents (LAUNCHED or FAILED) completed before `completedBefore`, so the
   * nodes table holds only recent history; INTENDED ones are never removed. Returns how many went.
   */
  pruneLaunchIntents(clusterId: string, completedBefore: number): Promise<number>;

  /** Adds a node record that came from outside a launch (e.g. an orphan the reconciler adopts). */
  putNode(node: NodeRecord): Promise<void>;

  /** The cluster's node records (not intents). */
  listNodes(clusterId: string): Promise<NodeRecord[]>;

  /**
   * Changes a node's status if it is still `expectedStatus` (ConflictError otherwise): LAUNCHING →
   * JOINED when Slurm reports it, → DRAINING when the cycle drained it, → TERMINATING before terminate,
   * DRAINING → JOINED when a drained node is resumed (back in service). Moving to JOINED sets `joinedAt`
   * only when the record has none (a resumed node keeps its first join).
   */
  updateNodeStatus(
    clusterId: string,
    nodeName: string,
    expectedStatus: NodeStatus,
    status: NodeStatus,
    at: number,
  ): Promise<void>;

  /**
   * Removes a node record; removing one that is gone succeeds. A node record never leaves without its
   * usage: before the record is deleted, a copy with `endedAt` is kept in the usage history
   * (listEndedNodes), so node-hours and cost still count an instance after its record is gone. The first
   * copy of a node's launch stays (a retried delete keeps the first end). `endedAt` is when the instance
   * stopped costing: the retirement's time, or for an instance found gone the first run that missed it.
   * @default endedAt: the record's `updatedAt` (for a TERMINATING record, when its terminate was decided)
   */
  deleteNode(clusterId: string, nodeName: string, endedAt?: number): Promise<void>;

  /**
   * The usage history: nodes whose record was deleted (their instance terminated or gone), each as its
   * record was with `endedAt`, oldest end first; with `endedSince`, only those that ended at or after it.
   * Kept for the store's usage retention (TTL).
   */
  listEndedNodes(clusterId: string, endedSince?: number): Promise<EndedNode[]>;

  /**
   * Sets (a number, epoch ms) or clears (null) the node's evidence marks, leaving the other fields and
   * the status alone. Destroying decisions need an observation to agree over time (a node missing from
   * one listing or one report is not gone), so the first observation is written here and the decision is
   * taken only when a later run sees the same. A record that no longer exists is left absent (no error).
   */
  markNode(clusterId: string, nodeName: string, marks: NodeMarks): Promise<void>;

  // ── queue health (protected mode) ───────────────────────────────────────────────────────────────

  /**
   * Counts one bootstrap failure for the queue and adds `offering` ("instanceType@zone") to its failed
   * offerings; when the consecutive count reaches `threshold` the queue is marked protected (its failed
   * offerings are no longer launched). Returns the queue's health after the change.
   */
  recordBootstrapFailure(
    clusterId: string,
    queue: string,
    threshold: number,
    at: number,
    offering?: string,
  ): Promise<QueueHealth>;

  /** A node of the queue joined: the consecutive failure count and protected mode are cleared. */
  recordBootstrapSuccess(clusterId: string, queue: string, at: number): Promise<QueueHealth>;

  /** Operator reset: clears protected mode and the count (same effect as a success). */
  resetProtectedMode(clusterId: string, queue: string, at: number): Promise<QueueHealth>;

  // ── events ──────────────────────────────────────────────────────────────────────────────────────

  /** Appends a scaling event; it expires after the store's retention (TTL). Returns it with its id. */
  appendEvent(event: NewEvent): Promise<ScalingEvent>;

  /** The cluster's events, newest first, at most `limit` (default 100, max 1000). */
  listEvents(clusterId: string, limit?: number): Promise<ScalingEvent[]>;

  /**
   * Counts one more occurrence of a repeated notice (`key`: e.g. one offering's LAUNCH_FAILED and its
   * reason) and says whether to write it as an event: yes for the first, then at most once per
   * `intervalMs` (the answer then carries how many were held back since the last written one). Kept on
   * the cluster's item apart from its version (an operator's If-Match never fails for it), so a scaler
   * restart does not start the count afresh. NotFoundInStoreError when the cluster does not exist.
   */
  noteRepeat(clusterId: string, key: string, at: number, intervalMs: number): Promise<RepeatDecision>;

  /**
   * Forgets the counts of every key that starts with `keyPrefix` (e.g. one offering's LAUNCH_FAILED of
   * every reason, once the offering launched), so the next noteRepeat of such a key is a first and is
   * written at once: a new run of failures after a success is news. Nothing counted under the prefix:
   * nothing is written. Kept apart from the record's version as noteRepeat. NotFoundInStoreError when the
   * cluster does not exist.
   */
  clearRepeat(clusterId: string, keyPrefix: string): Promise<void>;

  // ── leases ──────────────────────────────────────────────────────────────────────────────────────

  /**
   * Takes the lease if it is free or expired (or already held by `owner`) for `ttlMs` from `now`; the
   * returned lease carries a `fence` that grows with each new holder. Undefined when someone else holds it.
   */
  acquireLease(key: string, owner: string, ttlMs: number, now: number): Promise<Lease | undefined>;

  /**
   * Extends the lease by `ttlMs` from `now` if `owner` still holds it and it has not expired;
   * LeaseLostError otherwise (a stale holder loses: it must stop acting).
   */
  renewLease(lease: Lease, ttlMs: number, now: number): Promise<Lease>;

  /** Gives the lease up if `owner` still holds it; a lease already taken over is left alone. */
  releaseLease(lease: Lease): Promise<void>;

  /**
   * The lease as stored (its fence included, also once expired or released), undefined when it was never
   * taken. A read that may lag a write by a moment (eventually consistent): for watching a fence grow
   * (lib/control/wake.ts), never for deciding who holds a lease.
   */
  readLease(key: string): Promise<Lease | undefined>;
}

/** noteRepeat's answer. */
export interface RepeatDecision {
  /** Write the event now. */
  write: boolean;
  /** Occurrences held back since the last written one (when `write`: before this one). */
  suppressed: number;
  /** When the last written one was written; undefined for the first of the key. */
  lastWrittenAt?: number;
}

/** One key's count as noteRepeat keeps it (a list on the cluster item, never an object keyed by it). */
export interface RepeatNotice {
  key: string;
  writtenAt: number;
  suppressed: number;
}

export type ClusterStatus = "CREATING" | "RUNNING" | "SLEEPING" | "DELETING" | "DELETED" | "FAILED";
export const CLUSTER_STATUSES: readonly ClusterStatus[] = [
  "CREATING",
  "RUNNING",
  "SLEEPING",
  "DELETING",
  "DELETED",
  "FAILED",
];

/** Which cloud the cluster runs on and where; the provider adapter is built from it. */
export interface ClusterPlacement {
  cloud: "aws" | "tencent" | "alibaba" | "local" | "fake";
  region: string;
  /** The image compute nodes boot from. */
  imageId: string;
}

/** How the control plane reaches the cluster's agent. */
export type AgentEndpoint =
  | { kind: "http"; url: string; keySecretArn?: string }
  | { kind: "ssm"; instanceId: string }
  /**
   * An attached master reached through its cloud's run-command channel: Tencent TAT (`ins-…`) or Alibaba
   * Cloud Assistant (`i-…`), in the cluster's region with the stack's key for that cloud.
   */
  | { kind: "tat"; instanceId: string }
  | { kind: "cloud-assistant"; instanceId: string }
  | { kind: "none" };

/** Something the creation workflow made, so compensation and deletion know what to remove. */
export interface CreatedResource {
  /** e.g. "vpc", "subnet", "securityGroup", "secret", "masterInstance". */
  type: string;
  id: string;
  /** Epoch ms. */
  createdAt: number;
}

/**
 * How a cluster came to NowScale. "created": NowScale made its network, secrets and master (the creation
 * workflow) and deletion removes them. "attached": an existing Slurm master the user registered
 * (`POST /clusters/attach`, docs/attach.md): NowScale only launches and retires compute nodes for it,
 * and deleting it detaches (retires what NowScale launched), never touching the master.
 */
export type ClusterOrigin = "created" | "attached";

/** A record without `origin` predates the field: it was created. */
export function originOf(cluster: Pick<ClusterRecord, "origin">): ClusterOrigin {
  return cluster.origin ?? "created";
}

/** What NowScale knows of an attached master (what the compute nodes and detach need). */
export interface AttachedMaster {
  /**
   * How the control plane reaches the agent (also in `agent`): signed HTTP, or the cloud's run-command
   * channel (AWS SSM Run Command, Tencent TAT, Alibaba Cloud Assistant).
   */
  channel: "http" | "ssm" | "tat" | "cloud-assistant";
  /** slurmctld as compute nodes reach it: `slurmd --conf-server ADDRESS:PORT` (configless). */
  controllerAddress: string;
  controllerPort: number;
  /** The secret holding the master's munge key, which compute nodes fetch at boot (never its value). */
  mungeKeySecret: string;
  /** The master's instance id (`i-…`, `mi-…`, `ins-…`), when known; it is never adopted, drained or terminated. */
  instanceId?: string;
  /** Where compute nodes launch: the user's subnets and security groups (never created or deleted). */
  subnetIds: string[];
  securityGroupIds: string[];
  /** The compute subnets' VPC as the attach network check found it (Tencent, Alibaba: launches name it). */
  vpcId?: string;
  /** Slurm's version when it was attached. */
  slurmVersion: string;
  /**
   * Epoch ms. Only instances launched after it can be NowScale's (detach adopts nothing older), so a
   * master that happens to carry the cluster's tag can never be taken for a compute node.
   */
  attachedAt: number;
}

export interface NewCluster {
  clusterId: string;
  name: string;
  placement: ClusterPlacement;
  /** The autoscaling configuration (core configSchema input), validated before it is stored. */
  autoscaling: ConfigInput;
  /**
   * The creation workflow's request (what to make: region, network, master), without the autoscaling
   * configuration: that is `autoscaling` above, the one copy. For an attached cluster, the attach request.
   */
  spec?: Record<string, unknown>;
  /** @default "created" */
  origin?: ClusterOrigin;
  /** Attached clusters only. */
  attachment?: AttachedMaster;
  /** The first status: an attached cluster starts RUNNING, with its agent endpoint. @default "CREATING" */
  status?: "CREATING" | "RUNNING";
  /** @default { kind: "none" } */
  agent?: AgentEndpoint;
  now: number;
}

export interface QueueHealth {
  queue: string;
  consecutiveBootstrapFailures: number;
  /** Set at the threshold of consecutive failures: the offerings below are no longer launched. */
  protected: boolean;
  /**
   * The offerings ("instanceType@zone") whose nodes failed to join during the current streak; protected
   * mode holds exactly these back (all of a queue's offerings: the whole queue). Cleared by a join or a reset.
   */
  failedOfferings?: string[];
  /** Epoch ms of the last change. */
  updatedAt: number;
}

export interface ClusterRecord extends Omit<NewCluster, "now" | "status" | "agent"> {
  status: ClusterStatus;
  /** Set when status is FAILED. */
  reason?: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  agent: AgentEndpoint;
  resources: CreatedResource[];
  /** Per queue; absent queues are healthy. */
  queueHealth: Record<string, QueueHealth>;
  /** The workflow execution that created or deletes the cluster. */
  executionArn?: string;
  /**
   * Deletion workflow executions started since the cluster last entered DELETING (each start attempt
   * counts, even one whose start failed); bounds the reconciler's automatic retries.
   */
  deletionAttempts?: number;
  /**
   * What every compute node sets up before it joins (THPC StorageOption and InitNodeScripts): rendered
   * into each new node's boot script (lib/control/storage.ts; checked again by the renderer). Absent: none.
   */
  nodeSetup?: NodeSetup;
  /** The cluster's users (lib/control/users.ts), deleted ones kept so their uid is never reused. */
  users?: ClusterUser[];
}

/**
 * A cluster's node setup as stored: plain data, validated by lib/control/storage.ts with the boot-script
 * renderer's own schemas (scheduler-plugins/slurm/bootstrap.ts) on the way in and again at render.
 */
export interface NodeSetup {
  /** Mounts, by localPath (unique). */
  storage: { protocol: string; remotePath: string; localPath: string }[];
  /** Run in order before the node joins, each from a URL or inline. */
  initScripts: ({ url: string; timeoutS: number } | { inline: string; timeoutS: number })[];
}

/** A cluster user as the control plane records it: no password or key, only where they are kept. */
export interface ClusterUser {
  name: string;
  uid: number;
  enabled: boolean;
  createdAt: number;
  /** The secret store's id of its password and key (lib/ports/user-secrets.ts), when it has one. */
  secretId?: string;
  hasPassword: boolean;
  hasKey: boolean;
  /** Set when the user was deleted (the record keeps the name's uid: files may remain). */
  deletedAt?: number;
  /** The deletion removed the home directory. */
  purged?: boolean;
}

/** Fields updateCluster may change; `resources` replaces the list. */
export interface ClusterChange {
  status?: ClusterStatus;
  reason?: string;
  autoscaling?: ConfigInput;
  agent?: AgentEndpoint;
  resources?: CreatedResource[];
  executionArn?: string;
  deletionAttempts?: number;
  /** Replaces the node setup as a whole. */
  nodeSetup?: NodeSetup;
  /** Replaces the cluster's user list. */
  users?: ClusterUser[];
  now: number;
}

export type LaunchIntentStatus = "INTENDED" | "LAUNCHED" | "FAILED";

export interface LaunchCandidateRecord {
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  subnetId?: string;
  imageId?: string;
}

export interface NewLaunchIntent {
  clusterId: string;
  /** Unique per cluster; the provider derives each candidate's idempotency token from it. */
  round: string;
  queue: string;
  count: number;
  allOrNothing: boolean;
  candidates: LaunchCandidateRecord[];
  /** The idempotency token of each candidate's call, in candidate order. */
  tokens: string[];
  jobs: string[];
  /** Epoch ms, before the provider is called. */
  intendedAt: number;
}

export interface LaunchIntent extends NewLaunchIntent {
  status: LaunchIntentStatus;
  instanceIds: string[];
  failures: { index: number; kind: string; message: string }[];
  completedAt?: number;
}

export interface LaunchOutcome {
  instances: { id: string; instanceType: string; zone: string; chargeType: ChargeType; token?: string }[];
  failures: { index: number; kind: string; message: string }[];
  at: number;
}

/**
 * LAUNCHING: started, not yet in Slurm; JOINED: Slurm reports it; DRAINING: NowScale drained it;
 * TERMINATING: terminate requested.
 */
export type NodeStatus = "LAUNCHING" | "JOINED" | "DRAINING" | "TERMINATING";

/** Evidence marks of a node record (see StateStore.markNode); null clears a mark. */
export interface NodeMarks {
  /** First reconciler run (epoch ms) whose cloud listing and describe-by-id did not find the instance. */
  missingSince?: number | null;
  /** First report (epoch ms) in which Slurm did not list the node. */
  absentSince?: number | null;
  /** First report (epoch ms) in which Slurm showed the node DOWN or not responding. */
  downSince?: number | null;
}

export interface NodeRecord {
  clusterId: string;
  /** The instance id, which is also the Slurm node name. */
  nodeName: string;
  instanceId: string;
  queue: string;
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  status: NodeStatus;
  /** The launch round and the token its call carried. */
  round?: string;
  token?: string;
  /** Epoch ms. */
  launchedAt: number;
  joinedAt?: number;
  updatedAt: number;
  /**
   * How the record came to be: "launch" (a launch's outcome, or its instances recorded before any
   * release), "adopted" (the reconciler found a tagged instance with no record and recorded it).
   * Absent on records written before this field existed: read as "launch".
   */
  origin?: "launch" | "adopted";
  missingSince?: number;
  absentSince?: number;
  downSince?: number;
}

/** A node whose record was deleted: the record as it was, and when the instance stopped costing. */
export interface EndedNode extends NodeRecord {
  /** Epoch ms. */
  endedAt: number;
}

export type EventKind =
  | "LAUNCH_INTENDED"
  | "LAUNCHED"
  | "LAUNCH_FAILED"
  | "DRAINED"
  | "TERMINATED"
  | "ORPHAN_TERMINATED"
  | "BOOTSTRAP_FAILED"
  | "PROTECTED_MODE"
  | "PROTECTED_MODE_CLEARED"
  | "NODE_GONE"
  | "NODE_ADOPTED"
  | "NODE_RETIRED"
  | "RELEASE_PENDING"
  | "AGENT_UNREACHABLE"
  | "SLURMCTLD_UNREACHABLE"
  | "CYCLE_ERROR"
  /** The planner will not serve a job as it stands (no fitting type, constraint, capacity, ...). */
  | "JOB_NOT_SERVED"
  /** The safety net: an idle node Slurm did not use for a pending job NowScale read as fitting it. */
  | "SLURM_MISMATCH"
  | "CONFIG_UPDATED"
  | "STATUS_CHANGED"
  | "MANUAL";

export interface NewEvent {
  clusterId: string;
  kind: EventKind;
  message: string;
  queue?: string;
  nodes?: string[];
  count?: number;
  at: number;
  /**
   * Who asked for it, for operator actions: the caller's IAM principal on the deployed API (API
   * Gateway's requestContext.identity.userArn), `local:root` for the local mode's token. Absent on the
   * service's own events (the scaler, the reconciler, the workflows).
   */
  by?: string;
}

export interface ScalingEvent extends NewEvent {
  /** Sortable by time: zero-padded ms time + a random suffix. */
  eventId: string;
}

export interface Lease {
  key: string;
  owner: string;
  /** Epoch ms. */
  expiresAtMs: number;
  /** Grows by one each time the lease changes hands; identifies this holding in records. */
  fence: number;
}

/** A conditional write lost: someone else changed the record first (or it already existed). */
export class ConflictError extends Error {
  override readonly name = "ConflictError";
}

/** The record to update does not exist. */
export class NotFoundInStoreError extends Error {
  override readonly name = "NotFoundInStoreError";
}

/** The lease expired or was taken over: the holder must stop acting on the cluster. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}
