import { asParseError, SlurmParseError, SlurmUnavailableError } from "./errors.js";
import { expandHostlist } from "./hostlist.js";
import { arrayRecordId, countArrayTasks, type SlurmJob } from "./model.js";
import { gpusIn, jsonCount, jsonText } from "./units.js";

/**
 * Slurm's JSON output (squeue/sinfo --json, 22.05+): `meta`, `errors`, then the records. When slurmctld
 * does not answer, 22.05 still exits 0 with an empty list and an entry in `errors`: that entry, not
 * the empty list, is the truth.
 */
export interface SlurmJsonEnvelope {
  version?: string;
  records: unknown[];
}

/**
 * Checks the envelope of a Slurm JSON document and returns its `key` list.
 * Throws SlurmUnavailableError when `errors` is not empty and SlurmParseError on anything malformed.
 */
export function readJsonEnvelope(text: string, key: "jobs" | "nodes", source: string): SlurmJsonEnvelope {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new SlurmParseError(source, "not JSON", { cause: error });
  }
  if (!isObject(doc)) throw new SlurmParseError(source, "expected a JSON object");
  const errors = doc.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    const first = errors[0];
    const text = isObject(first)
      ? [first.source, first.description, first.error]
          .filter((x) => typeof x === "string" && x !== "")
          .join(": ")
      : String(first);
    throw new SlurmUnavailableError(`${source} reported an error: ${text.slice(0, 300) || "unspecified"}`);
  }
  const records = doc[key];
  if (!Array.isArray(records)) throw new SlurmParseError(source, `missing "${key}" list`);
  const meta = doc.meta;
  const slurm = isObject(meta) && isObject(meta.Slurm) ? meta.Slurm : undefined;
  const release = slurm && typeof slurm.release === "string" ? slurm.release : undefined;
  return release === undefined ? { records } : { version: release, records };
}

/**
 * Parses `squeue --json` (Slurm 22.05+, OpenAPI v0.0.38 and later field names) into jobs.
 * Throws SlurmUnavailableError when the document carries errors, SlurmParseError when it is malformed;
 * never anything else.
 */
export function parseSqueueJson(text: string): { version?: string; jobs: SlurmJob[] } {
  const source = "squeue --json";
  try {
    const { version, records } = readJsonEnvelope(text, "jobs", source);
    const jobs = records.map((record, i) => jobFromJson(record, `${source} jobs[${i}]`));
    return version === undefined ? { jobs } : { version, jobs };
  } catch (error) {
    if (error instanceof SlurmUnavailableError) throw error;
    throw asParseError(source, error);
  }
}

function jobFromJson(record: unknown, where: string): SlurmJob {
  if (!isObject(record)) throw new SlurmParseError(where, "expected an object");
  const jobId = jsonCount(record.job_id);
  if (jobId === undefined) throw new SlurmParseError(where, "job_id is missing");
  const state = jsonText(record.job_state).toUpperCase();
  if (!state) throw new SlurmParseError(where, "job_state is missing");
  const arrayJobId = jsonCount(record.array_job_id) ?? 0;
  const arrayTaskId = jsonCount(record.array_task_id);
  const arrayTasks =
    arrayJobId > 0 && arrayTaskId === undefined ? countArrayTasks(text(record.array_task_string)) : undefined;
  const id =
    arrayJobId === 0
      ? String(jobId)
      : arrayTaskId !== undefined
        ? `${arrayJobId}_${arrayTaskId}`
        : arrayRecordId(String(arrayJobId), text(record.array_task_string));

  const nodeCount = Math.max(1, jsonCount(record.node_count) ?? 1);
  const tasks = Math.max(1, jsonCount(record.tasks) ?? 1);
  const cpus = Math.max(1, jsonCount(record.cpus) ?? 1);
  const tasksPerNode = jsonCount(record.tasks_per_node) ?? 0;
  const maxNodes = jsonCount(record.max_nodes) ?? 0;
  // 22.05 writes null for cpus_per_task even when -c was given; cpus / tasks recovers it.
  const cpusPerTask = Math.max(1, jsonCount(record.cpus_per_task) ?? Math.floor(cpus / tasks));
  const memPerNodeMiB = jsonCount(record.memory_per_node);
  const memPerCpuMiB = jsonCount(record.memory_per_cpu);
  const flags = Array.isArray(record.flags) ? record.flags.map(text) : [];
  // --mem=0 (all the node's memory): 22.05 writes null with the JOB_MEM_SET flag; 23.02+ writes 0.
  const memWholeNode =
    memPerNodeMiB === 0 ||
    (flags.includes("JOB_MEM_SET") && memPerNodeMiB === undefined && memPerCpuMiB === undefined);
  const cpusPerGpu = gpusIn(text(record.cpus_per_tres));
  const memPerGpuMiB = gpusIn(text(record.memory_per_tres) || text(record.mem_per_tres));
  const shared = Array.isArray(record.shared) ? record.shared.map(text) : [text(record.shared)];
  const exclusive =
    shared.includes("none") || record.exclusive === true || jsonText(record.exclusive) === "true";

  const job: SlurmJob = {
    id,
    taskCount: arrayTasks?.count ?? 1,
    partitions: text(record.partition).split(",").filter(Boolean),
    state,
    reason: text(record.state_reason) || "None",
    dependency: text(record.dependency) === "(null)" ? "" : text(record.dependency),
    submittedAt: (jsonCount(record.submit_time) ?? 0) * 1000,
    nodeCount,
    nodesFixed: maxNodes > 0 || tasksPerNode > 0 || (memPerNodeMiB !== undefined && memPerNodeMiB > 0),
    cpus,
    tasks,
    cpusPerTask,
    minCpusPerNode: Math.max(1, jsonCount(record.minimum_cpus_per_node) ?? 1),
    gpusPerNode: gpusIn(text(record.tres_per_node)),
    gpusPerTask: gpusIn(text(record.tres_per_task)),
    gpusPerJob: gpusIn(text(record.tres_per_job)),
    memWholeNode,
    features: text(record.features),
    exclusive,
    nodeNames: nodeNamesOf(record),
  };
  // Only the JSON source has them: job notes (job-notes.ts) are written only where they can be read back.
  job.comment = text(record.comment);
  job.adminComment = text(record.admin_comment);
  const eligible = jsonCount(record.eligible_time);
  if (eligible !== undefined && eligible > 0) job.eligibleAt = eligible * 1000;
  if (arrayJobId > 0) job.arrayJobId = String(arrayJobId);
  if (arrayTasks?.limit !== undefined) job.arrayLimit = arrayTasks.limit;
  if (memPerNodeMiB !== undefined && memPerNodeMiB > 0) job.memPerNodeMiB = memPerNodeMiB;
  if (memPerCpuMiB !== undefined) job.memPerCpuMiB = memPerCpuMiB;
  if (cpusPerGpu > 0) job.cpusPerGpu = cpusPerGpu;
  if (memPerGpuMiB > 0) job.memPerGpuMiB = memPerGpuMiB;
  return job;
}

function nodeNamesOf(record: Record<string, unknown>): string[] {
  const resources = record.job_resources;
  if (isObject(resources) && Array.isArray(resources.allocated_nodes)) {
    const names = resources.allocated_nodes
      .map((n) => (isObject(n) ? text(n.nodename) : ""))
      .filter((n) => n !== "");
    if (names.length > 0) return names;
  }
  const nodes = text(record.nodes);
  return nodes ? expandHostlist(nodes) : [];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON string field, or "" for anything else. */
export function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}
