import { MAX_PLACEHOLDERS } from "../../lib/ports/agent-protocol.js";
import type { Report } from "../../lib/ports/agent-report.js";
import type { SlurmClient } from "./client.js";
import { SlurmUnavailableError } from "./errors.js";
import { buildReport, failedReport } from "./report.js";

/**
 * One report of the cluster: jobs, nodes, partitions and placeholders read in parallel, then grouped.
 * Never throws: an unreachable slurmctld gives status "slurmctld-unreachable", any other failure status
 * "error". The placeholders are optional: when they cannot be read the report leaves them out (the
 * control plane then does not sync them) rather than failing.
 */
export async function collectReport(
  client: SlurmClient,
  agentVersion: string,
  now: () => number = Date.now,
): Promise<Report> {
  try {
    const [version, { source, jobs }, nodes, partitions, placeholders] = await Promise.all([
      client.version(),
      client.jobs(),
      client.nodes(),
      client.partitions(),
      client.placeholderNames().catch(() => undefined),
    ]);
    const report = buildReport({
      jobs,
      nodes,
      partitions,
      slurmVersion: version,
      source,
      agentVersion,
      now: now(),
    });
    if (placeholders !== undefined) report.placeholders = placeholders.slice(0, MAX_PLACEHOLDERS);
    return report;
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const status = error instanceof SlurmUnavailableError ? "slurmctld-unreachable" : "error";
    return failedReport(status, message, agentVersion, now());
  }
}
