import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import { reportFromText } from "../../../lib/agent-channels/report-text.js";
import { AgentUnreachableError, SlurmctldUnreachableError } from "../../../lib/ports/agent-channel.js";
import { parseReport } from "../../../lib/ports/agent-report.js";
import { FakeClock } from "../../../lib/providers/fake/index.js";

const clock = new FakeClock();

async function validReport() {
  const agent = new FakeAgent(clock);
  agent.addPending("compute", "17", { nodes: 2, cpus: 4 });
  agent.join("i-1", "compute", "c5.xlarge", "zone-a");
  return agent.report();
}

const hostile = fc.oneof(
  fc.constantFrom("$(reboot)", "a;rm -rf /", "x\nNodeName=evil", "", "-x", 1e308, -1, null, [], {}, true),
  fc.jsonValue({ maxDepth: 2 }),
);

describe("reportFromText: agent output is untrusted", () => {
  it("either returns a report that passes the schema or throws a typed agent error, whatever is sent", async () => {
    // Prepare
    const base = await validReport();
    const fields = [
      "queue",
      "state",
      "count",
      "jobIds",
      "oldestSubmittedAt",
      "nodes",
      "cpusPerNode",
    ] as const;
    const nodeFields = ["name", "queue", "state", "instanceType", "cpus"] as const;
    // Act / Assess
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.constantFrom(...nodeFields),
        hostile,
        fc.boolean(),
        (field, nodeField, value, onNode) => {
          const report = structuredClone(base) as unknown as {
            jobs: Record<string, unknown>[];
            nodes: Record<string, unknown>[];
          };
          if (onNode) (report.nodes[0] as Record<string, unknown>)[nodeField] = value;
          else (report.jobs[0] as Record<string, unknown>)[field] = value;
          try {
            const parsed = reportFromText(JSON.stringify(report), "test");
            expect(() => parseReport(parsed)).not.toThrow();
          } catch (error) {
            expect(error).toBeInstanceOf(AgentUnreachableError);
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  it("refuses text that is not JSON, and maps a failed report to SlurmctldUnreachableError", () => {
    expect(() => reportFromText("<html>", "test")).toThrow(AgentUnreachableError);
    expect(() => reportFromText('{"status":"ok"}', "test")).toThrow(AgentUnreachableError);
    const failed = {
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: new Date(0).toISOString(),
      status: "slurmctld-unreachable",
      error: "down",
    };
    expect(() => reportFromText(JSON.stringify(failed), "test")).toThrow(SlurmctldUnreachableError);
  });
});
