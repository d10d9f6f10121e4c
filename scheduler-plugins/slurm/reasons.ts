/**
 * Which pending jobs a new node can help. The list names what cannot (fail open): a reason Slurm adds
 * later counts as demand, since missing demand leaves a job waiting forever while spare demand only
 * costs an idle node until shrinkIdleTime. PartitionConfig and PartitionNodeLimit are demand here:
 * they are what Slurm says about a dynamic partition with too few nodes. So is BadConstraints: Slurm
 * 22.05 sets it when no node now in the partition can satisfy the job (a node of the wrong type
 * joined), and runs the job at its next pass once a fitting node joins (measured: test/slurm).
 */
const BLOCKED_EXACT = new Set([
  "AccountNotAllowed",
  "BeginTime",
  "DeadLine",
  "FedJobLock",
  "InactiveLimit",
  "InvalidAccount",
  "InvalidQOS",
  "JobArrayTaskLimit",
  "Licenses",
  "PartitionDown",
  "PartitionInactive",
  "PartitionTimeLimit",
  "Reservation",
  "ReservationDeleted",
  "launch failed requeued held",
]);

const BLOCKED_PREFIXES = [
  "JobHeld",
  "Dependency",
  "QOS",
  "Assoc",
  "MaxCpu",
  "MaxMem",
  "MaxNode",
  "MaxJob",
  "MaxSubmit",
];

/** Job states that are pending but wait for a person, not for nodes. */
const BLOCKED_STATES = new Set(["REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD"]);

/** True when the pending job waits on something no new node fixes: hold, dependency, limits, begin time. */
export function isBlocked(state: string, reason: string): boolean {
  return (
    BLOCKED_STATES.has(state) ||
    BLOCKED_EXACT.has(reason) ||
    BLOCKED_PREFIXES.some((p) => reason.startsWith(p))
  );
}

const PENDING_STATES = new Set(["PENDING", "REQUEUED", "REQUEUE_FED", ...BLOCKED_STATES]);
const RUNNING_STATES = new Set([
  "RUNNING",
  "CONFIGURING",
  "COMPLETING",
  "SUSPENDED",
  "STAGE_OUT",
  "SIGNALING",
  "RESIZING",
]);

/** PENDING, RUNNING (holds nodes) or undefined for a finished job that squeue still lists. */
export function jobPhase(state: string): "PENDING" | "RUNNING" | undefined {
  if (PENDING_STATES.has(state)) return "PENDING";
  if (RUNNING_STATES.has(state)) return "RUNNING";
  return undefined;
}
