import type { NodeState } from "../../lib/core/model.js";
import { FEATURE, JOB_ID, SIMPLE_NAME } from "../../lib/core/names.js";
import type { FailedReport, JobGroup, OkReport, ReportNode } from "../../lib/ports/agent-report.js";
import { LIMITS, REPORT_SCHEMA_VERSION } from "../../lib/ports/agent-report-limits.js";
import { placementOf } from "./features.js";
import { readNote } from "./job-notes.js";
import type { SlurmJob, SlurmNode, SlurmPartition } from "./model.js";
import { isBlocked, jobPhase } from "./reasons.js";

export interface ReportInput {
  jobs: readonly SlurmJob[];
  nodes: readonly SlurmNode[];
  partitions: readonly SlurmPartition[];
  slurmVersion: string;
  source: "json" | "format";
  agentVersion: string;
  /** Epoch ms: the report's generatedAt. */
  now: number;
}

/** A job's request in the core's terms, before grouping. */
type Shape = Pick<
  JobGroup,
  | "nodes"
  | "cpusPerNode"
  | "memPerNodeMiB"
  | "gpusPerNode"
  | "tasks"
  | "cpusPerTask"
  | "memPerTaskMiB"
  | "gpusPerTask"
>;

const MAX_EXAMPLES = 10;

/**
 * Maps parsed Slurm records onto the report: jobs grouped by (state, queue, shape, features, exclusive,
 * reason) with count and oldest submit time; NowScale's nodes with the core's states; names outside the
 * allow-lists left out and counted. Pure: the clock is `input.now`.
 */
export function buildReport(input: ReportInput): OkReport {
  const ignored = { jobs: 0, nodes: 0, examples: [] as string[] };
  const ignore = (kind: "jobs" | "nodes", why: string) => {
    ignored[kind]++;
    if (ignored.examples.length < MAX_EXAMPLES) ignored.examples.push(why.slice(0, 300));
  };
  const partitions = new Map(input.partitions.map((p) => [p.name, p]));

  const runningArrayTasks = new Map<string, number>();
  for (const job of input.jobs) {
    if (job.arrayJobId !== undefined && jobPhase(job.state) === "RUNNING") {
      runningArrayTasks.set(job.arrayJobId, (runningArrayTasks.get(job.arrayJobId) ?? 0) + 1);
    }
  }

  const groups = new Map<string, JobGroup & { oldestMs: number }>();
  for (const job of input.jobs) {
    const phase = jobPhase(job.state);
    if (phase === undefined) continue;
    const queue = job.partitions[0];
    if (queue === undefined || !SIMPLE_NAME.test(queue)) {
      ignore(
        "jobs",
        `job ${safe(job.id)}: partition "${safe(job.partitions.join(","))}" is not a valid queue name`,
      );
      continue;
    }
    if (!JOB_ID.test(job.id)) {
      ignore("jobs", `job "${safe(job.id)}": invalid job id`);
      continue;
    }
    let state: JobGroup["state"] = phase;
    let reason = phase === "PENDING" && job.reason !== "None" ? job.reason : undefined;
    let count = job.taskCount;
    if (phase === "PENDING" && isBlocked(job.state, job.reason)) state = "BLOCKED";
    else if (phase === "PENDING" && job.dependency !== "") {
      state = "BLOCKED";
      reason = "Dependency";
    } else if (phase === "PENDING" && job.eligibleAt !== undefined && job.eligibleAt > input.now) {
      state = "BLOCKED";
      reason = "BeginTime";
    }
    if (state === "PENDING" && job.arrayLimit !== undefined && job.arrayJobId !== undefined) {
      // A throttled array (--array=...%N) can only start N tasks at once, whatever the queue holds.
      const room = Math.max(0, job.arrayLimit - (runningArrayTasks.get(job.arrayJobId) ?? 0));
      if (room === 0) {
        state = "BLOCKED";
        reason = "JobArrayTaskLimit";
      } else count = Math.min(count, room);
    }
    const { wholeNode, ...shape } = shapeOf(job, partitions.get(queue));
    const features = job.features !== "" ? job.features.slice(0, 500) : undefined;
    // Jobs holding different notes are told apart, so each group's note is what all its jobs hold.
    const notes =
      job.comment === undefined && job.adminComment === undefined
        ? {}
        : readNote(job.comment ?? "", job.adminComment ?? "");
    const key = JSON.stringify([
      state,
      queue,
      shape,
      features,
      job.exclusive,
      wholeNode,
      reason,
      notes.note,
      notes.noteIn,
      notes.userComment,
    ]);
    const group = groups.get(key);
    if (group === undefined) {
      const g: JobGroup & { oldestMs: number } = {
        queue,
        state,
        ...shape,
        count: Math.min(count, LIMITS.count),
        oldestSubmittedAt: "",
        oldestMs: job.submittedAt,
        jobIds: [job.id],
      };
      if (features !== undefined) g.features = features;
      if (job.exclusive) g.exclusive = true;
      if (wholeNode) g.wholeNode = true;
      if (reason !== undefined) g.reason = reason.slice(0, 500);
      Object.assign(g, notes);
      if (state === "RUNNING") g.nodeNames = validNodeNames(job.nodeNames);
      // Slurm's numbers are untrusted too: a request beyond the schema's bounds is left out, not clamped.
      if (!withinLimits(shape, job.submittedAt)) {
        ignore("jobs", `job ${job.id}: request or submit time out of range`);
        continue;
      }
      groups.set(key, g);
    } else {
      group.count = Math.min(group.count + count, LIMITS.count);
      if (job.submittedAt < group.oldestMs) {
        group.oldestMs = job.submittedAt;
        group.jobIds.unshift(job.id);
      } else group.jobIds.push(job.id);
      if (group.jobIds.length > LIMITS.jobIds) group.jobIds.length = LIMITS.jobIds;
      if (group.nodeNames !== undefined)
        group.nodeNames = mergeNames(group.nodeNames, validNodeNames(job.nodeNames));
    }
  }
  const jobs = [...groups.values()].map(
    ({ oldestMs, ...g }): JobGroup => ({ ...g, oldestSubmittedAt: iso(oldestMs) }),
  );

  const nodes: ReportNode[] = [];
  const unmanagedNodes: string[] = [];
  for (const node of input.nodes) {
    const placement = placementOf(node.features);
    if (!SIMPLE_NAME.test(node.name)) {
      ignore("nodes", `node "${safe(node.name)}": invalid node name`);
    } else if (placement === undefined || node.state === "FUTURE") {
      // FUTURE nodes are placeholders (shapes Slurm must know before any such node exists): never capacity.
      unmanagedNodes.push(node.name);
    } else {
      nodes.push(reportNode(node, placement));
    }
  }

  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    agentVersion: input.agentVersion,
    scheduler: "slurm",
    generatedAt: iso(input.now),
    status: "ok",
    slurmVersion: input.slurmVersion.slice(0, 50),
    source: input.source,
    jobs,
    nodes,
    unmanagedNodes,
    partitions: reportPartitions(input.partitions, (why) => {
      if (ignored.examples.length < MAX_EXAMPLES) ignored.examples.push(why.slice(0, 300));
    }),
    ignored,
  };
}

/** The partitions whose names pass the allow-list (others are told in `ignored.examples`), at most 1000. */
function reportPartitions(
  partitions: readonly SlurmPartition[],
  tell: (why: string) => void,
): NonNullable<OkReport["partitions"]> {
  const out: NonNullable<OkReport["partitions"]> = [];
  for (const p of partitions) {
    if (!SIMPLE_NAME.test(p.name)) {
      tell(`partition "${safe(p.name)}": not a valid queue name`);
      continue;
    }
    const state = p.state !== undefined && /^[A-Z_]{1,20}$/.test(p.state) ? p.state : "UNKNOWN";
    if (out.length < 1000) out.push({ name: p.name, state, default: p.isDefault === true });
  }
  return out;
}

/** The report for a controller that did not answer, or whose answer could not be read. */
export function failedReport(
  status: FailedReport["status"],
  error: string,
  agentVersion: string,
  now: number,
): FailedReport {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    agentVersion,
    scheduler: "slurm",
    generatedAt: iso(now),
    status,
    error: error.slice(0, 1000),
  };
}

/**
 * The core's shape of a job, and whether it takes its nodes whole.
 * - `--gpus` without `-N`: Slurm spreads the GPUs over as many nodes as it needs (12 GPUs on 4-GPU
 *   nodes run on 3), so the job becomes tasks of one GPU each, with its CPUs and memory shared out
 *   (`--cpus-per-gpu`, `--mem-per-gpu` per GPU; `--mem` is split over the GPUs: an approximation).
 * - Whole-node requests (-N, --ntasks-per-node, --mem, --exclusive, GPUs per node, or a single task)
 *   become nodes × per-node; other multi-task jobs (-n) become tasks × per-task.
 * - Memory: --mem, else --mem-per-gpu × GPUs, else --mem-per-cpu × CPUs, else the partition's
 *   DefMemPerNode/DefMemPerCPU. --mem=0, or no memory at all in a partition without a default, gives
 *   the job all of each node's memory: `wholeNode`, like --exclusive.
 * - CPUs: at least --cpus-per-gpu × GPUs.
 */
export function shapeOf(
  job: SlurmJob,
  partition: SlurmPartition | undefined,
): Shape & { wholeNode: boolean } {
  // Slurm fills memory_per_cpu with DefMemPerCPU even when --mem-per-gpu was given: the GPU figure wins.
  const perGpuMem = job.memPerGpuMiB;
  const perCpuMem =
    perGpuMem !== undefined
      ? undefined
      : (job.memPerCpuMiB ?? (job.memPerNodeMiB === undefined ? partition?.defMemPerCpuMiB : undefined));
  const noMemory =
    job.memPerNodeMiB === undefined &&
    perGpuMem === undefined &&
    perCpuMem === undefined &&
    partition?.defMemPerNodeMiB === undefined;
  const wholeNode = job.exclusive || job.memWholeNode || noMemory;
  const cpusFor = (gpus: number) => (job.cpusPerGpu !== undefined ? gpus * job.cpusPerGpu : 0);

  if (job.gpusPerJob > 0 && !job.nodesFixed && job.gpusPerNode === 0 && job.gpusPerTask === 0) {
    const units = job.gpusPerJob;
    const cpusPerTask = Math.max(1, job.cpusPerGpu ?? Math.ceil(job.cpus / units));
    const memPerTask = wholeNode
      ? 0
      : (perGpuMem ??
        (job.memPerNodeMiB !== undefined
          ? Math.ceil(job.memPerNodeMiB / units)
          : perCpuMem !== undefined
            ? perCpuMem * cpusPerTask
            : Math.ceil((partition?.defMemPerNodeMiB ?? 0) / units)));
    return { tasks: units, cpusPerTask, memPerTaskMiB: memPerTask, gpusPerTask: 1, wholeNode };
  }
  const wholeNodes = job.nodesFixed || job.exclusive || job.gpusPerNode > 0 || job.tasks <= 1;
  if (wholeNodes) {
    const nodes = job.nodeCount;
    const gpus =
      job.gpusPerNode || Math.ceil(job.gpusPerJob / nodes) || job.gpusPerTask * Math.ceil(job.tasks / nodes);
    const cpusPerNode = Math.max(job.minCpusPerNode, Math.ceil(job.cpus / nodes), cpusFor(gpus));
    const mem = wholeNode
      ? 0
      : (job.memPerNodeMiB ??
        (perGpuMem !== undefined ? perGpuMem * gpus : undefined) ??
        (perCpuMem !== undefined ? perCpuMem * cpusPerNode : partition?.defMemPerNodeMiB) ??
        0);
    return { nodes, cpusPerNode, memPerNodeMiB: mem, gpusPerNode: gpus, wholeNode };
  }
  const gpusPerTask = job.gpusPerTask || Math.ceil(job.gpusPerJob / job.tasks);
  const cpusPerTask = Math.max(job.cpusPerTask, cpusFor(gpusPerTask));
  const memPerTask = wholeNode
    ? 0
    : perGpuMem !== undefined
      ? perGpuMem * gpusPerTask
      : perCpuMem !== undefined
        ? perCpuMem * cpusPerTask
        : 0;
  return { tasks: job.tasks, cpusPerTask, memPerTaskMiB: memPerTask, gpusPerTask, wholeNode };
}

/** True when the shape fits the report schema's bounds and the submit time is a real date. */
function withinLimits(shape: Shape, submittedAt: number): boolean {
  const max: Record<keyof Shape, number> = {
    nodes: LIMITS.nodes,
    cpusPerNode: LIMITS.cpus,
    memPerNodeMiB: LIMITS.memMiB,
    gpusPerNode: LIMITS.gpus,
    tasks: LIMITS.tasks,
    cpusPerTask: LIMITS.cpus,
    memPerTaskMiB: LIMITS.memMiB,
    gpusPerTask: LIMITS.gpus,
  };
  const fieldsOk = (Object.keys(max) as (keyof Shape)[]).every((k) => {
    const v = shape[k];
    return v === undefined || (Number.isSafeInteger(v) && v >= 0 && v <= max[k]);
  });
  return fieldsOk && !Number.isNaN(new Date(submittedAt).getTime());
}

/** Flags that say a node is not usable capacity now, although it is in Slurm. */
const NOT_READY_FLAGS = ["POWERING_UP", "POWERED_DOWN", "POWER_DOWN", "POWERING_DOWN"];

/**
 * Slurm's node state and flags → the core's node state. A node in Slurm that cannot take a job now
 * (UNKNOWN, powered down or powering up) is NOT_READY: the core counts it as capacity only within
 * bootTimeout of its launch. NOT_RESPONDING alone is not: Slurm sets it for a moment after every RESUME
 * (seen on the test bed), turns a node that stays silent DOWN itself after SlurmdTimeout, and until then
 * the safety net stops an idle silent node from covering a job Slurm does not start there. A busy node
 * keeps its busy state whatever its flags, so it is never shrunk under a running job.
 */
export function nodeStateOf(node: Pick<SlurmNode, "state" | "flags" | "cpusAllocated">): NodeState {
  const flags = new Set(node.flags);
  const busy =
    node.state === "ALLOCATED" || node.state === "MIXED" || flags.has("COMPLETING") || node.cpusAllocated > 0;
  if (node.state === "DOWN" || node.state === "ERROR" || flags.has("FAIL")) return "DOWN";
  if (flags.has("DRAIN") || flags.has("DRAINING") || flags.has("DRAINED"))
    return busy ? "DRAINING" : "DRAINED";
  if (node.state === "ALLOCATED") return "ALLOCATED";
  if (busy) return "MIXED";
  if (node.state === "FUTURE" || node.state === "UNKNOWN" || NOT_READY_FLAGS.some((f) => flags.has(f))) {
    return "NOT_READY";
  }
  return "IDLE";
}

function reportNode(
  node: SlurmNode,
  placement: { queue: string; instanceType: string; zone: string },
): ReportNode {
  const state = nodeStateOf(node);
  const out: ReportNode = {
    name: node.name,
    ...placement,
    state,
    cpus: clamp(node.cpus, 100_000),
    cpusAllocated: clamp(node.cpusAllocated, 100_000),
    memoryMiB: clamp(node.memoryMiB, 1 << 30),
    memoryAllocatedMiB: clamp(node.memoryAllocatedMiB, 1 << 30),
    gpus: clamp(node.gpus, 1024),
    features: node.features.filter((f) => FEATURE.test(f)).slice(0, 64),
    slurmState: [node.state, ...node.flags].join("+").slice(0, 200),
  };
  const idleSince = node.lastBusyAt ?? node.slurmdStartedAt;
  if ((state === "IDLE" || state === "DRAINED") && idleSince !== undefined) out.idleSince = iso(idleSince);
  if (node.reason !== "" && (state === "DRAINING" || state === "DRAINED" || state === "DOWN"))
    out.reason = node.reason.slice(0, 500);
  return out;
}

function validNodeNames(names: readonly string[]): string[] {
  return names.filter((n) => SIMPLE_NAME.test(n));
}

function mergeNames(a: string[], b: string[]): string[] {
  if (b.every((n) => a.includes(n))) return a;
  return [...new Set([...a, ...b])];
}

function clamp(value: number, max: number): number {
  return Math.min(Math.max(0, Math.floor(value)), max);
}

/** ISO time; an out-of-range time (untrusted input) becomes the epoch rather than a RangeError. */
function iso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}

/** Names in `ignored.examples` are untrusted: keep them printable and short. */
function safe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 80);
}
