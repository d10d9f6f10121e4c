import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseReport } from "../../../lib/ports/agent-report.js";
import { SlurmParseError, SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";
import { expandHostlist } from "../../../scheduler-plugins/slurm/hostlist.js";
import {
  parseScontrolNodes,
  parseScontrolPartitions,
  parseSinfoJson,
} from "../../../scheduler-plugins/slurm/nodes.js";
import { buildReport } from "../../../scheduler-plugins/slurm/report.js";
import { FIELD_SEPARATOR, parseSqueueFormat } from "../../../scheduler-plugins/slurm/squeue-format.js";
import { parseSqueueJson } from "../../../scheduler-plugins/slurm/squeue-json.js";
import { fixture } from "./fixtures.js";

/** A parser may succeed or throw its typed errors; anything else (TypeError, RangeError, a hang) fails. */
function onlyTypedErrors(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (error) {
    return error instanceof SlurmParseError || error instanceof SlurmUnavailableError;
  }
}

/** Garbage that looks a little like Slurm output: its own records cut, mixed and mutated. */
function mutatedJson(source: string) {
  const doc = JSON.parse(source) as Record<string, unknown>;
  const key = "jobs" in doc ? "jobs" : "nodes";
  const records = doc[key] as Record<string, unknown>[];
  const fields = Object.keys(records[0] ?? {});
  return fc
    .record({
      index: fc.nat(records.length - 1),
      field: fc.constantFrom(...fields),
      value: fc.oneof(
        fc.anything(),
        fc.string(),
        fc.integer(),
        fc.constant(null),
        fc.double(),
        fc.constant(Number.MAX_SAFE_INTEGER),
        fc.constantFrom("0-99999999999", "0-9%0", "a|b", "bad;name"),
      ),
      cut: fc.nat(source.length),
    })
    .map(({ index, field, value, cut }) => {
      const copy = structuredClone(doc) as Record<string, Record<string, unknown>[]>;
      const record = copy[key]?.[index];
      if (record) record[field] = value;
      const text = JSON.stringify(copy);
      return cut % 3 === 0 ? text.slice(0, cut) : text;
    });
}

const slurmish = fc.string({
  unit: fc.constantFrom(..."abcN/A=[]-,:%0123456789 \n()*+_|".split(""), FIELD_SEPARATOR),
});

describe("parsers under garbage", () => {
  it("parseSqueueJson: arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string(), (s) => onlyTypedErrors(() => parseSqueueJson(s))),
      { numRuns: 500 },
    );
  });

  it("parseSqueueJson: arbitrary JSON values", () => {
    fc.assert(
      fc.property(fc.json(), (s) => onlyTypedErrors(() => parseSqueueJson(s))),
      { numRuns: 500 },
    );
  });

  it("parseSqueueJson: recorded output with one field replaced or the text cut", () => {
    fc.assert(
      fc.property(mutatedJson(fixture("squeue.json")), (s) => onlyTypedErrors(() => parseSqueueJson(s))),
      { numRuns: 500 },
    );
  });

  it("parseSinfoJson: recorded output with one field replaced or the text cut", () => {
    fc.assert(
      fc.property(mutatedJson(fixture("sinfo.json")), (s) => onlyTypedErrors(() => parseSinfoJson(s))),
      { numRuns: 500 },
    );
  });

  it("parseSqueueFormat, parseScontrolNodes, parseScontrolPartitions: Slurm-like characters", () => {
    fc.assert(
      fc.property(slurmish, (s) =>
        [parseSqueueFormat, parseScontrolNodes, parseScontrolPartitions].every((parse) =>
          onlyTypedErrors(() => parse(s)),
        ),
      ),
      { numRuns: 1000 },
    );
  });

  it("parseSqueueFormat: recorded lines with one field replaced", () => {
    const lines = fixture("squeue-format.txt").trim().split("\n");
    fc.assert(
      fc.property(fc.nat(lines.length - 1), fc.nat(14), slurmish, (line, field, value) => {
        const fields = (lines[line] as string).split(FIELD_SEPARATOR);
        fields[field] = value;
        return onlyTypedErrors(() => parseSqueueFormat(fields.join(FIELD_SEPARATOR)));
      }),
      { numRuns: 1000 },
    );
  });

  it("expandHostlist: bracket soup terminates with names or a typed error", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."ab[]-,0123456789".split("")) }), (s) =>
        onlyTypedErrors(() => expandHostlist(s)),
      ),
      { numRuns: 1000 },
    );
  });

  it("whatever the squeue parser accepts, the report builder maps without throwing", () => {
    fc.assert(
      fc.property(mutatedJson(fixture("squeue.json")), (s) => {
        let jobs: ReturnType<typeof parseSqueueJson>["jobs"];
        try {
          jobs = parseSqueueJson(s).jobs;
        } catch {
          return true;
        }
        const report = buildReport({
          jobs,
          nodes: [],
          partitions: [],
          slurmVersion: "x",
          source: "json",
          agentVersion: "x",
          now: 0,
        });
        expect(parseReport(JSON.parse(JSON.stringify(report))).status).toBe("ok");
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});
