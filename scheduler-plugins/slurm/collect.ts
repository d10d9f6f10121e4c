import { MAX_PLACEHOLDERS } from "../../lib/ports/agent-protocol.js";
import type { Report } from "../../lib/ports/agent-report.js";
import { type ArrivalRecord, arrivalsOf, largestCpusByQueue, observeArrivals } from "./arrivals.js";
import type { SlurmClient } from "./client.js";
import { SlurmUnavailableError } from "./errors.js";
import { buildReport, failedReport } from "./report.js";

/**
 * Where the agent keeps its arrivals record between reports (agent/arrivals-file.ts: a file in its state
 * directory). Both calls may fail: the report then counts from what squeue lists now.
 */
export interface ArrivalStore {
  load(): Promise<ArrivalRecord | undefined>;
  save(record: ArrivalRecord): Promise<void>;
}

/**
 * One report of the cluster: jobs, nodes, partitions and placeholders read in parallel, then grouped.
 * Never throws: an unreachable slurmctld gives status "slurmctld-unreachable", any other failure status
 * "error". The placeholders are optional: when they cannot be read the report leaves them out (the
 * control plane then does not sync them) rather than failing. The recent arrivals (arrivals.ts) are
 * counted from every job squeue lists, into `arrivals` when a store keeps the record across reports, or
 * from this report's jobs alone without one.
 */
export async function collectReport(
  client: SlurmClient,
  agentVersion: string,
  now: () => number = Date.now,
  arrivals?: ArrivalStore,
): Promise<Report> {
  try {
    const [version, { source, jobs }, nodes, partitions, placeholders, previous] = await Promise.all([
      client.version(),
      client.jobs(),
      client.nodes(),
      client.partitions(),
      client.placeholderNodes().catch(() => undefined),
      arrivals?.load().catch(() => undefined),
    ]);
    const at = now();
    const report = buildReport({
      jobs,
      nodes,
      partitions,
      slurmVersion: version,
      source,
      agentVersion,
      now: at,
    });
    if (placeholders !== undefined)
      report.placeholders = placeholders.map((n) => n.name).slice(0, MAX_PLACEHOLDERS);
    const record = observeArrivals(previous, {
      jobs,
      largest: largestCpusByQueue([...nodes, ...(placeholders ?? [])]),
      now: at,
    });
    // Best effort: a record that cannot be saved loses this observation, not the report.
    await arrivals?.save(record).catch(() => undefined);
    const counted = arrivalsOf(record, at);
    if (counted.length > 0) report.arrivals = counted;
    return report;
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const status = error instanceof SlurmUnavailableError ? "slurmctld-unreachable" : "error";
    return failedReport(status, message, agentVersion, now());
  }
}
