import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { reportJsonSchema } from "../../../agent/json-schema.js";
import { AGENT_VERSION } from "../../../agent/version.js";
import { ValidationError } from "../../../lib/core/validation.js";
import { failedReportSchema, parseReport } from "../../../lib/ports/agent-report.js";

const root = join(import.meta.dirname, "..", "..", "..");

describe("agent metadata", () => {
  it("reports the package's version", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
  });

  it("ships the JSON Schema generated from the zod schema (npm run build:agent-schema)", () => {
    const shipped: unknown = JSON.parse(readFileSync(join(root, "agent", "report.schema.json"), "utf8"));
    expect(shipped).toEqual(JSON.parse(JSON.stringify(reportJsonSchema())));
  });

  it("a failed report cannot carry a job list, so it never reads as an empty queue", () => {
    const report = {
      schemaVersion: 1,
      agentVersion: "0.1.0",
      scheduler: "slurm",
      generatedAt: "2026-11-24T04:00:00Z",
      status: "slurmctld-unreachable",
      error: "connect failure",
    };
    expect(failedReportSchema.parse(report).status).toBe("slurmctld-unreachable");
    expect(() => parseReport({ ...report, jobs: [] })).toThrow(ValidationError);
  });
});
