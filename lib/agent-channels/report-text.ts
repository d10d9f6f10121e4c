import { AgentUnreachableError, SlurmctldUnreachableError } from "../ports/agent-channel.js";
import { type OkReport, parseReport } from "../ports/agent-report.js";

/**
 * Turns an agent's raw answer (text) into an ok report, or the typed error that says what went wrong.
 * The text is untrusted: it is parsed as JSON and validated by the agent's schema, nothing else.
 */
export function reportFromText(text: string, origin: string): OkReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AgentUnreachableError(`${origin}: the answer is not JSON`, { cause: error });
  }
  let report: ReturnType<typeof parseReport>;
  try {
    report = parseReport(raw, origin);
  } catch (error) {
    throw new AgentUnreachableError(`${origin}: the answer is not a valid report`, { cause: error });
  }
  if (report.status !== "ok") {
    throw new SlurmctldUnreachableError(`${origin}: ${report.status}: ${report.error.slice(0, 300)}`);
  }
  return report;
}
