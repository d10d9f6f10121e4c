/**
 * The scaling core's data model. Plain data only: times are epoch milliseconds passed in by the
 * caller (the core never reads a clock), sizes are integers in the units their names carry.
 */

/** What one node of an instance type offers. */
export interface Shape {
  vcpus: number;
  memoryMiB: number;
  gpus: number;
}

export interface InstanceTypeInfo extends Shape {
  /** On-demand price in USD per hour, when known; used by the packed policy and by reports. */
  pricePerHour?: number;
}

export type InstanceCatalog = Readonly<Record<string, InstanceTypeInfo>>;

export type ChargeType = "ON_DEMAND" | "SPOT";

/**
 * A job's resource request, in one of Slurm's two forms:
 * - `nodes`: exactly `nodes` nodes, each with the per-node request (sbatch -N with --mem or --exclusive);
 * - `tasks`: `tasks` independent tasks spread over as many nodes as their fit needs (sbatch -n, SWF jobs).
 */
export type JobRequest =
  | { kind: "nodes"; nodes: number; cpusPerNode: number; memPerNodeMiB: number; gpusPerNode: number }
  | { kind: "tasks"; tasks: number; cpusPerTask: number; memPerTaskMiB: number; gpusPerTask: number };

export type JobState = "PENDING" | "RUNNING" | "BLOCKED";

export interface Job {
  id: string;
  queue: string;
  state: JobState;
  /** Epoch ms. */
  submittedAt: number;
  request: JobRequest;
  /** How many identical jobs this entry stands for (the agent aggregates identical pending jobs). */
  count: number;
  /** Why a BLOCKED job cannot be helped by scale-out (held, dependency, QOS limit, ...). */
  reason?: string;
  /** Nodes a RUNNING job occupies, when known. */
  nodeNames?: readonly string[];
  /**
   * The job takes its nodes whole: no other job shares them (sbatch --exclusive, --mem=0, or no memory
   * asked in a partition without a default, where Slurm gives the job all of each node's memory).
   */
  wholeNode?: boolean;
  /** Slurm's constraint expression (sbatch -C), matched against node features (see constraint.ts). */
  constraint?: string;
}

/**
 * LAUNCHING: started, not yet usable (not in Slurm yet, or booting); NOT_READY: in Slurm but not capacity
 * now (UNKNOWN, POWERING_UP, POWERED_DOWN, NOT_RESPONDING). Both cover pending demand only within
 * bootTimeout of `launchedAt`.
 */
export const NODE_STATES = [
  "LAUNCHING",
  "NOT_READY",
  "IDLE",
  "MIXED",
  "ALLOCATED",
  "DRAINING",
  "DRAINED",
  "DOWN",
] as const;
export type NodeState = (typeof NODE_STATES)[number];

export interface ClusterNode {
  name: string;
  queue: string;
  instanceType: string;
  zone: string;
  state: NodeState;
  /** Epoch ms when the node's current unbroken idle stretch began; set for IDLE (and DRAINED) nodes. */
  idleSince?: number | undefined;
  /** Epoch ms. */
  launchedAt?: number;
  /** Slurm's reason for a DRAINING/DRAINED/DOWN node; NowScale's own drains start with "nowscale". */
  reason?: string | undefined;
}

/** An offering held unavailable after a capacity error: the planner launches elsewhere while it lasts. */
export interface UnavailableOffering {
  instanceType: string;
  zone: string;
  /** Only this charge type; both when undefined. */
  chargeType?: ChargeType;
  /** Epoch ms until which it is held; for ever (this decision) when undefined. */
  until?: number;
}

export interface ClusterState {
  jobs: readonly Job[];
  nodes: readonly ClusterNode[];
  /** Offerings that recently answered "no capacity" (the provider's cache, the simulator's full pools). */
  unavailableOfferings?: readonly UnavailableOffering[];
  /**
   * Recent arrivals per queue, for the warm headroom (config `headroomSeconds`): CPUs of the single-node
   * jobs submitted in the last `windowS` seconds, ended ones included. A queue not listed is estimated
   * from the jobs in `jobs` (pending and running only, so short jobs that already ended are missed).
   */
  arrivals?: readonly QueueArrivals[];
}

export interface QueueArrivals {
  queue: string;
  windowS: number;
  cpus: number;
}

/** One place to try a launch: an entry of the queue's expansionNodeConfigs. */
export interface Candidate {
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
  subnetId?: string;
  imageId?: string;
}

export interface Launch {
  queue: string;
  /** The first candidate's type and zone: where the provider tries first. */
  instanceType: string;
  zone: string;
  count: number;
  /** Fallback order, lowest config index first; begins with this launch's own type and zone. */
  candidates: Candidate[];
  /** True when the nodes only help if all of them start (one multi-node job's full set). */
  allOrNothing: boolean;
  /** Ids of the pending jobs these nodes are for; empty for a minSize top-up. */
  jobs: string[];
  /**
   * Per entry of `jobs`: how many of that job's copies this launch starts (a copy counts in the launch
   * of its first new node; a job whose copies start elsewhere but share these nodes counts 0 here).
   * With the copies in `skipped`, every pending copy is accounted for exactly once.
   */
  copies?: number[];
  reason: string;
}

export type ShrinkAction = "drain" | "terminate";

export interface Shrink {
  node: string;
  queue: string;
  action: ShrinkAction;
  reason: string;
}

/** Machine-readable reasons; every skipped job or node carries one with a sentence. */
export type SkipCode =
  | "QUEUE_NOT_CONFIGURED"
  | "AUTO_EXPANSION_DISABLED"
  | "AUTO_SHRINK_DISABLED"
  | "BLOCKED"
  | "BUSY_TIME_NOT_REACHED"
  | "NO_FITTING_SHAPE"
  | "CONSTRAINT_UNSATISFIABLE"
  | "CONSTRAINT_NOT_UNDERSTOOD"
  | "NO_CAPACITY"
  | "BEST_FIT_UNAVAILABLE"
  | "NOT_STARTED_BY_SLURM"
  | "JOB_LARGER_THAN_MAX_SIZE"
  | "QUEUE_AT_MAX_SIZE"
  | "CYCLE_CAP_REACHED"
  | "DEFERRED_BY_SCALE_OUT_RATIO"
  | "COVERED_BY_EXISTING_NODES"
  | "IDLE_TIME_NOT_REACHED"
  | "RESERVED_FOR_PENDING_JOB"
  | "KEPT_FOR_MIN_SIZE"
  | "KEPT_FOR_DESIRED_IDLE"
  | "KEPT_FOR_HEADROOM"
  | "RUNS_A_JOB"
  | "DRAINED_BY_OTHERS"
  | "LEFT_TO_RECONCILER"
  | "BOOT_TIMEOUT_PASSED"
  | "TYPE_NOT_CONFIGURED";

export type Skip =
  /** `copies`: how many of the job entry's `count` identical jobs this skip stands for. */
  | { job: string; queue: string; code: SkipCode; reason: string; copies: number }
  | { node: string; queue: string; code: SkipCode; reason: string };

/**
 * The safety net's evidence: an idle node NowScale read as able to run a pending job, idle beside it
 * longer than reservationTimeout without Slurm starting it there. The node no longer covers the job.
 */
export interface SlurmMismatch {
  node: string;
  job: string;
  queue: string;
  /** Seconds the node and the job have been idle and pending side by side. */
  waitedS: number;
  /** Slurm's pending reason for the job, when reported. */
  slurmReason?: string;
  reason: string;
}

export interface QueueSummary {
  queue: string;
  pendingJobs: number;
  /** New nodes the counted demand needs after existing idle and launching nodes are used. */
  neededNodes: number;
  /** Nodes launched this cycle (the round). */
  launchedNodes: number;
  existingNodes: number;
  launchingNodes: number;
}

export interface Decision {
  launches: Launch[];
  shrinks: Shrink[];
  skipped: Skip[];
  queues: QueueSummary[];
  /** Idle nodes Slurm did not use for pending jobs NowScale thought they fit (see SlurmMismatch). */
  mismatches: SlurmMismatch[];
}
