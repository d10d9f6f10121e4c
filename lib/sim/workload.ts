import type { ResolvedConfig } from "../core/config.js";
import type { SwfRecord } from "./swf.js";

/** One trace job as the simulator replays it: P processors = P one-CPU tasks. Times in ms. */
export interface SimJob {
  id: string;
  queue: string;
  submitMs: number;
  runMs: number;
  /** The walltime the scheduler plans with (SWF requested time, else the run time). */
  estimateMs: number;
  procs: number;
  memPerTaskMiB: number;
}

export interface Workload {
  /** Sorted by submit time, then trace order. */
  jobs: SimJob[];
  /** Records left out, by reason (unknown run time, no processor count, ...). */
  skipped: Record<string, number>;
}

export interface WorkloadOptions {
  /** SWF queue number → queue name; "*" for the rest. Unmapped numbers go to the first configured queue. */
  queueMap: Readonly<Record<string, string>>;
  /** MiB per processor when field 10 is unknown (or 0). */
  memPerCpuMiB: number;
}

/**
 * Maps SWF records to jobs: submit (field 2), run time (4), processors (8, else 5), requested time (9,
 * else the run time), memory (10, KB per processor, else the default), queue (15, via queueMap).
 * Records without a submit time, a run time or a processor count cannot be replayed and are counted
 * in `skipped`.
 */
export function toWorkload(
  records: readonly SwfRecord[],
  config: ResolvedConfig,
  options: WorkloadOptions,
): Workload {
  const firstQueue = config.queues[0]?.queueName;
  if (firstQueue === undefined) throw new Error("a validated config has at least one queue");
  const fallbackQueue = options.queueMap["*"] ?? firstQueue;
  const skipped: Record<string, number> = {};
  const skip = (reason: string) => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  const jobs: SimJob[] = [];
  const ids = new Set<string>();

  for (const r of records) {
    const procs = r.requestedProcessors || r.allocatedProcessors;
    if (r.submitTime === undefined) skip("unknown submit time");
    else if (r.runTime === undefined) skip("unknown run time");
    else if (!procs) skip("unknown processor count");
    else {
      const mem = r.requestedMemoryKB ? Math.ceil(r.requestedMemoryKB / 1024) : options.memPerCpuMiB;
      const queue =
        r.queueNumber === undefined
          ? fallbackQueue
          : (options.queueMap[String(r.queueNumber)] ?? fallbackQueue);
      let id = r.jobNumber === undefined ? `line${r.line}` : String(r.jobNumber);
      if (ids.has(id)) id = `${id}-line${r.line}`;
      ids.add(id);
      const runMs = Math.round(r.runTime * 1000);
      jobs.push({
        id,
        queue,
        submitMs: Math.round(r.submitTime * 1000),
        runMs,
        estimateMs: r.requestedTime === undefined ? runMs : Math.round(r.requestedTime * 1000),
        procs: Math.ceil(procs),
        memPerTaskMiB: mem,
      });
    }
  }
  // Array.prototype.sort is stable: equal submit times keep trace order.
  jobs.sort((a, b) => a.submitMs - b.submitMs);
  return { jobs, skipped };
}
