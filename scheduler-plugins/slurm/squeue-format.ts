import { asParseError, SlurmParseError } from "./errors.js";
import { expandHostlist } from "./hostlist.js";
import { arrayRecordId, countArrayTasks, type SlurmJob } from "./model.js";
import { jobPhase } from "./reasons.js";
import { gpusIn, parseCount, parseMemMiB, parseSlurmLocalTime } from "./units.js";

/**
 * The format-string fallback for Slurm older than 22.05 (no --json). Fields are separated by the ASCII
 * unit separator, which no Slurm name or reason contains, so constraints such as "a|b" stay intact.
 */
export const FIELD_SEPARATOR = "\u001f";

const FIELDS = [
  "%i",
  "%F",
  "%K",
  "%P",
  "%T",
  "%r",
  "%V",
  "%D",
  "%C",
  "%c",
  "%m",
  "%b",
  "%f",
  "%h",
  "%N",
  "%E",
] as const;

/**
 * Arguments for `squeue` that print what parseSqueueFormat reads: all partitions, every state, as
 * `squeue --json` lists them: jobs that ended in the last MinJobAge are there too. The report leaves
 * them out of its groups (reasons.ts jobPhase); the arrivals count them (arrivals.ts).
 */
export const SQUEUE_FORMAT_ARGS: readonly string[] = [
  "--noheader",
  "--all",
  "--states=all",
  `--format=${FIELDS.join(FIELD_SEPARATOR)}`,
];

/**
 * Parses the output of `squeue ${SQUEUE_FORMAT_ARGS}`. Limits of this form: it has no task count and
 * `%m` does not say whether memory is per node or per CPU, so every job is read as nodes × per-node
 * request with %m per node. Times are the agent's local time. Throws SlurmParseError only.
 */
export function parseSqueueFormat(output: string): SlurmJob[] {
  const source = "squeue --format";
  const jobs: SlurmJob[] = [];
  const lines = output.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === "") continue;
    try {
      jobs.push(jobFromLine(line, `${source} line ${i + 1}`));
    } catch (error) {
      // A job that has ended only feeds the arrivals count: one Slurm prints oddly is left out, while
      // a pending or running one that cannot be read fails the report (never a silently short queue).
      const state = line.split(FIELD_SEPARATOR)[4] ?? "";
      if (/^[A-Z_]+$/.test(state) && jobPhase(state) === undefined) continue;
      throw asParseError(`${source} line ${i + 1}`, error);
    }
  }
  return jobs;
}

type Tuple<T, N extends number, R extends T[] = []> = R["length"] extends N ? R : Tuple<T, N, [T, ...R]>;

function jobFromLine(line: string, where: string): SlurmJob {
  const f = line.split(FIELD_SEPARATOR);
  if (f.length !== FIELDS.length)
    throw new SlurmParseError(where, `expected ${FIELDS.length} fields, found ${f.length}`);
  const [
    id,
    arrayJobId,
    arrayTasks,
    partition,
    state,
    reason,
    submit,
    nodes,
    cpus,
    minCpus,
    mem,
    tresPerNode,
    features,
    share,
    nodeList,
    dependency,
  ] = f as string[] as Tuple<string, 16>;
  if (!/^\d/.test(id)) throw new SlurmParseError(where, "job id is missing");
  if (!/^[A-Z_]+$/.test(state)) throw new SlurmParseError(where, `bad job state "${state.slice(0, 40)}"`);
  const submittedAt = parseSlurmLocalTime(submit);
  if (submittedAt === undefined) throw new SlurmParseError(where, `bad submit time "${submit.slice(0, 40)}"`);

  const nodeCount = Math.max(1, parseCount(nodes) ?? 1);
  const cpuCount = Math.max(1, parseCount(cpus) ?? 1);
  const pendingArray = id.includes("[") ? countArrayTasks(arrayTasks) : undefined;
  const memPerNodeMiB = parseMemMiB(mem);
  const job: SlurmJob = {
    id: pendingArray !== undefined ? arrayRecordId(arrayJobId, arrayTasks) : id,
    taskCount: pendingArray?.count ?? 1,
    partitions: partition.split(",").filter(Boolean),
    state,
    reason: reason || "None",
    dependency: dependency === "(null)" ? "" : dependency,
    submittedAt,
    nodeCount,
    nodesFixed: true,
    cpus: cpuCount,
    tasks: nodeCount,
    cpusPerTask: Math.max(1, Math.ceil(cpuCount / nodeCount)),
    minCpusPerNode: Math.max(1, parseCount(minCpus) ?? 1),
    gpusPerNode: gpusIn(tresPerNode === "N/A" ? "" : tresPerNode),
    gpusPerTask: 0,
    gpusPerJob: 0,
    // %m is 0 for --mem=0 and for no memory in a partition without a default: both get the whole node.
    memWholeNode: parseMemMiB(mem) === 0,
    features: features === "(null)" ? "" : features,
    exclusive: share === "NO",
    nodeNames: state === "PENDING" || nodeList === "" ? [] : expandHostlist(nodeList),
  };
  if (arrayJobId !== id && /^\d+$/.test(arrayJobId)) job.arrayJobId = arrayJobId;
  if (pendingArray?.limit !== undefined) job.arrayLimit = pendingArray.limit;
  if (memPerNodeMiB !== undefined && memPerNodeMiB > 0) job.memPerNodeMiB = memPerNodeMiB;
  return job;
}
