/**
 * What the parsers read from Slurm, before it is mapped onto the report: one shape whatever the
 * source (squeue --json, squeue format string, sinfo --json, scontrol -o). Memory in MiB, times in epoch ms.
 */

export interface SlurmJob {
  /** "17", "9_3" (one array task), "9_0-28" (pending array tasks 0 to 28 not yet split off: arrayRecordId). */
  id: string;
  /** Base job id of an array; undefined for a plain job. */
  arrayJobId?: string;
  /** How many jobs this record stands for: array tasks still pending in it, else 1. */
  taskCount: number;
  /** Array throttle (`--array=0-99%4`): at most this many tasks of the array run at once. */
  arrayLimit?: number;
  /** Partitions the job may run in, in Slurm's order. */
  partitions: string[];
  /** Slurm's job state, e.g. PENDING, RUNNING, COMPLETING. */
  state: string;
  /** Slurm's reason code, e.g. Resources, Priority, Dependency, JobHeldUser; "None" when there is none. */
  reason: string;
  /**
   * Dependencies still to be met ("afterok:5(unfulfilled)"), "" when none. Slurm may show another
   * reason (PartitionConfig) for such a job, so this is read on its own.
   */
  dependency: string;
  /** When the job may start (--begin), if Slurm says; a future time blocks it like BeginTime. */
  eligibleAt?: number;
  submittedAt: number;
  /** Minimum node count (Slurm's estimate when the user gave only -n). */
  nodeCount: number;
  /** True when the user fixed the node count (-N), the tasks per node, or the per-node memory. */
  nodesFixed: boolean;
  /** Total CPUs requested. */
  cpus: number;
  tasks: number;
  cpusPerTask: number;
  minCpusPerNode: number;
  memPerNodeMiB?: number;
  memPerCpuMiB?: number;
  gpusPerNode: number;
  gpusPerTask: number;
  /** --gpus for the whole job. */
  gpusPerJob: number;
  /** --cpus-per-gpu (Slurm's cpus_per_tres), when given. */
  cpusPerGpu?: number;
  /** --mem-per-gpu in MiB (Slurm's memory_per_tres), when given. */
  memPerGpuMiB?: number;
  /**
   * --mem=0: all of each node's memory. Slurm 22.05's JSON writes memory_per_node null for it, like an
   * unset one; only the JOB_MEM_SET flag tells them apart.
   */
  memWholeNode: boolean;
  /** Constraint expression (-C), "" when none. */
  features: string;
  exclusive: boolean;
  /** Nodes a running job occupies. */
  nodeNames: string[];
  /** The job's Comment and AdminComment, where the source has them (squeue --json); NowScale's notes. */
  comment?: string;
  adminComment?: string;
}

export interface SlurmNode {
  name: string;
  /** Base state in upper case: IDLE, ALLOCATED, MIXED, DOWN, FUTURE, UNKNOWN, ERROR. */
  state: string;
  /** State flags in upper case: DRAIN, COMPLETING, NOT_RESPONDING, POWERING_UP, DYNAMIC_NORM, ... */
  flags: string[];
  cpus: number;
  cpusAllocated: number;
  memoryMiB: number;
  memoryAllocatedMiB: number;
  gpus: number;
  features: string[];
  partitions: string[];
  reason: string;
  /** When the node was last busy, i.e. when its current idle stretch began. */
  lastBusyAt?: number;
  /** When its slurmd registered. */
  slurmdStartedAt?: number;
}

export interface SlurmPartition {
  name: string;
  defMemPerCpuMiB?: number;
  defMemPerNodeMiB?: number;
  /** Slurm's State= (UP, DOWN, DRAIN, INACTIVE). */
  state?: string;
  /** Default=YES: jobs without -p go there. */
  isDefault?: boolean;
}

/** Counts array tasks in Slurm's task string: "0-9,20,22%3" → 12, "0-99:2" → 50; "" or "N/A" → undefined. */
export function countArrayTasks(spec: string): { count: number; limit?: number } | undefined {
  const [list, limitText] = spec.split("%");
  if (!list || list === "N/A") return undefined;
  let count = 0;
  for (const range of list.split(",")) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(range.trim());
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    if (to < from || step < 1) return undefined;
    count += Math.floor((to - from) / step) + 1;
  }
  const limit = limitText !== undefined && /^\d+$/.test(limitText) ? Number(limitText) : undefined;
  return limit === undefined ? { count } : { count, limit };
}

/**
 * The id of a record standing for an array's pending tasks: "9_0-28" for Slurm's "9_[0-9,20-28:2%3]",
 * so it passes the core's job id allow-list (no brackets or commas).
 */
export function arrayRecordId(arrayJobId: string, spec: string): string {
  const numbers = (spec.split("%")[0] ?? "").match(/\d+/g) ?? [];
  const ranges = (spec.split("%")[0] ?? "").split(",");
  const first = numbers[0];
  const last = /(\d+)(?::\d+)?$/.exec(ranges[ranges.length - 1] ?? "")?.[1];
  if (first === undefined || last === undefined) return arrayJobId;
  return first === last ? `${arrayJobId}_${first}` : `${arrayJobId}_${first}-${last}`;
}
