import { SIMPLE_NAME } from "../../lib/core/names.js";
import type { ReportArrival } from "../../lib/ports/agent-report.js";
import { LIMITS } from "../../lib/ports/agent-report-limits.js";
import { placementOf } from "./features.js";
import type { SlurmJob, SlurmNode } from "./model.js";

/**
 * Recent arrivals per queue, for the warm headroom (config `headroomSeconds`, docs/plan.md): the CPUs of
 * the single-node jobs (at most the queue's largest node's CPUs) submitted in the last minutes and
 * hours, ended jobs included. Slurm keeps no history without slurmdbd (sacct), which NowScale's masters
 * do not run, so the agent keeps its own: a small record of per-minute sums, kept for a day.
 *
 * How a minute's sum is known: squeue lists every job from its submission until MinJobAge (300 s by
 * default) after its end, so a report read in the few minutes after a minute has passed sees every job
 * submitted in it. Each report counts the jobs it sees per submit minute, and the record keeps, per
 * minute, the largest count any report saw: a count only grows while the minute fills, and a job that
 * has left squeue lowers no count already kept. Reports come every 15 to 60 s, so the kept sums are
 * exact; a gap in reports (the agent restarted, the master was down) only loses what ended and left
 * squeue meanwhile. Pure: the caller loads and saves the record (agent/arrivals-file.ts).
 */

/** Bucket width of the record. */
export const ARRIVAL_BUCKET_S = 60;
/** How far back the record reaches: the longest `headroomWindow` the configuration allows. */
export const ARRIVAL_HORIZON_S = 86_400;
/** The windows a report gives per queue; the planner uses the one nearest its `headroomWindow`. */
export const ARRIVAL_WINDOWS_S: readonly number[] = [300, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400];
/** Queues kept in the record and reported: every queue's windows fit the report's limit. */
export const MAX_ARRIVAL_QUEUES = Math.floor(LIMITS.arrivals / ARRIVAL_WINDOWS_S.length);

const RECORD_VERSION = 1;
const MAX_BUCKETS = ARRIVAL_HORIZON_S / ARRIVAL_BUCKET_S;

/** Per queue, [epoch minute, CPUs] pairs, oldest first. No queue name is ever an object key. */
export interface ArrivalRecord {
  version: 1;
  queues: { queue: string; buckets: [number, number][] }[];
}

/**
 * The largest node of each queue in CPUs, from the nodes Slurm holds: NowScale's own (their
 * `q_<queue>` feature) and the placeholder FUTURE nodes, one per queue × type of the configuration
 * (placeholders.ts), which is how the agent knows a queue's shapes before any such node runs.
 */
export function largestCpusByQueue(nodes: readonly SlurmNode[]): Map<string, number> {
  const largest = new Map<string, number>();
  for (const node of nodes) {
    const queue = placementOf(node.features)?.queue;
    if (queue === undefined || !SIMPLE_NAME.test(queue) || !Number.isSafeInteger(node.cpus)) continue;
    largest.set(queue, Math.max(largest.get(queue) ?? 0, node.cpus));
  }
  return largest;
}

/**
 * The record after one report's observation: each job squeue lists (any state) whose submit time lies
 * within the horizon and whose CPUs fit the queue's largest node counts in its submit minute; each
 * minute keeps the larger of its kept sum and this observation's. Minutes past the horizon are dropped.
 * A queue whose largest node is unknown (no node and no placeholder yet) is not counted.
 */
export function observeArrivals(
  previous: ArrivalRecord | undefined,
  input: { jobs: readonly SlurmJob[]; largest: ReadonlyMap<string, number>; now: number },
): ArrivalRecord {
  const nowMinute = Math.floor(input.now / 1000 / ARRIVAL_BUCKET_S);
  const oldest = nowMinute - MAX_BUCKETS + 1;
  const seen = new Map<string, Map<number, number>>();
  for (const job of input.jobs) {
    const queue = job.partitions[0];
    if (queue === undefined || !SIMPLE_NAME.test(queue)) continue;
    const largest = input.largest.get(queue);
    if (largest === undefined || !(job.cpus >= 1) || job.cpus > largest) continue;
    const minute = Math.floor(job.submittedAt / 1000 / ARRIVAL_BUCKET_S);
    if (!Number.isSafeInteger(minute) || minute < oldest || minute > nowMinute) continue;
    let perMinute = seen.get(queue);
    if (perMinute === undefined) {
      if (seen.size >= MAX_ARRIVAL_QUEUES) continue;
      perMinute = new Map();
      seen.set(queue, perMinute);
    }
    const cpus = job.cpus * Math.max(1, job.taskCount);
    perMinute.set(minute, Math.min(LIMITS.arrivalCpus, (perMinute.get(minute) ?? 0) + cpus));
  }
  const merged = new Map<string, Map<number, number>>();
  for (const { queue, buckets } of previous?.queues ?? []) {
    const kept = new Map<number, number>();
    for (const [minute, cpus] of buckets) if (minute >= oldest && minute <= nowMinute) kept.set(minute, cpus);
    if (kept.size > 0) merged.set(queue, kept);
  }
  for (const [queue, perMinute] of seen) {
    let kept = merged.get(queue);
    if (kept === undefined) {
      kept = new Map();
      merged.set(queue, kept);
    }
    for (const [minute, cpus] of perMinute) kept.set(minute, Math.max(kept.get(minute) ?? 0, cpus));
  }
  const queues = [...merged]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_ARRIVAL_QUEUES)
    .map(([queue, kept]) => ({
      queue,
      buckets: [...kept].sort(([a], [b]) => a - b) as [number, number][],
    }));
  return { version: RECORD_VERSION, queues };
}

/** The report's arrivals: per queue, the CPUs submitted in each of ARRIVAL_WINDOWS_S up to `now`. */
export function arrivalsOf(record: ArrivalRecord, now: number): ReportArrival[] {
  const nowMinute = Math.floor(now / 1000 / ARRIVAL_BUCKET_S);
  const out: ReportArrival[] = [];
  for (const { queue, buckets } of record.queues) {
    for (const windowS of ARRIVAL_WINDOWS_S) {
      // The minutes that end within the window: the current one and the (window ÷ 60) − 1 before it.
      const from = nowMinute - windowS / ARRIVAL_BUCKET_S + 1;
      let cpus = 0;
      for (const [minute, c] of buckets) if (minute >= from && minute <= nowMinute) cpus += c;
      out.push({ queue, windowS, cpus: Math.min(cpus, LIMITS.arrivalCpus) });
    }
  }
  return out;
}

/**
 * A saved record, checked: undefined when the text is not one (the agent then starts afresh, which only
 * undercounts until the record refills).
 */
export function parseArrivalRecord(text: string): ArrivalRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { version, queues } = parsed as { version?: unknown; queues?: unknown };
  if (version !== RECORD_VERSION || !Array.isArray(queues) || queues.length > MAX_ARRIVAL_QUEUES)
    return undefined;
  const out: ArrivalRecord = { version: RECORD_VERSION, queues: [] };
  for (const entry of queues as unknown[]) {
    const { queue, buckets } = (entry ?? {}) as { queue?: unknown; buckets?: unknown };
    if (typeof queue !== "string" || !SIMPLE_NAME.test(queue)) return undefined;
    if (!Array.isArray(buckets) || buckets.length > MAX_BUCKETS) return undefined;
    const pairs: [number, number][] = [];
    for (const pair of buckets as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) return undefined;
      const [minute, cpus] = pair as [unknown, unknown];
      if (!Number.isSafeInteger(minute) || !Number.isSafeInteger(cpus)) return undefined;
      if ((cpus as number) < 0 || (cpus as number) > LIMITS.arrivalCpus) return undefined;
      pairs.push([minute as number, cpus as number]);
    }
    out.queues.push({ queue, buckets: pairs });
  }
  return out;
}
