import type { Report } from "../../agent/report-schema.js";
import type { SlurmClient } from "./client.js";
import { SlurmUnavailableError } from "./errors.js";
import { buildReport, failedReport } from "./report.js";

/**
 * One report of the cluster: jobs, nodes and partitions read in parallel, then grouped. Never throws:
 * an unreachable slurmctld gives status "slurmctld-unreachable", any other failure status "error".
 */
export async function collectReport(
  client: SlurmClient,
  agentVersion: string,
  now: () => number = Date.now,
): Promise<Report> {
  try {
    const [version, { source, jobs }, nodes, partitions] = await Promise.all([
      client.version(),
      client.jobs(),
      client.nodes(),
      client.partitions(),
    ]);
    return buildReport({ jobs, nodes, partitions, slurmVersion: version, source, agentVersion, now: now() });
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const status = error instanceof SlurmUnavailableError ? "slurmctld-unreachable" : "error";
    return failedReport(status, message, agentVersion, now());
  }
}
