import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../lib/core/config.js";
import { ValidationError } from "../../../lib/core/validation.js";
import { formatSwf, parseSwf, SWF_FIELDS } from "../../../lib/sim/swf.js";
import { toWorkload } from "../../../lib/sim/workload.js";

const FULL_LINE = "7 100 5 3600 16 3500.5 2048 32 7200 4096 1 12 3 9 2 1 6 30";

function catchError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("SWF reader", () => {
  it("reads all 18 fields of a job line in order", () => {
    // Prepare
    const text = `${FULL_LINE}\n`;

    // Act
    const { records } = parseSwf(text);

    // Assess
    expect(SWF_FIELDS).toHaveLength(18);
    expect(records).toEqual([
      {
        line: 1,
        jobNumber: 7,
        submitTime: 100,
        waitTime: 5,
        runTime: 3600,
        allocatedProcessors: 16,
        averageCpuTimeUsed: 3500.5,
        usedMemoryKB: 2048,
        requestedProcessors: 32,
        requestedTime: 7200,
        requestedMemoryKB: 4096,
        status: 1,
        userId: 12,
        groupId: 3,
        executableNumber: 9,
        queueNumber: 2,
        partitionNumber: 1,
        precedingJobNumber: 6,
        thinkTimeFromPrecedingJob: 30,
      },
    ]);
  });

  it("keeps header comments, including Key: value fields, and skips blank lines", () => {
    // Prepare
    const text = [
      "; Version: 2",
      ";  MaxNodes: 256",
      "; a free comment",
      "",
      FULL_LINE,
      "; Note: between jobs",
      "",
    ].join("\n");

    // Act
    const trace = parseSwf(text);

    // Assess
    expect(trace.header).toEqual(["Version: 2", "MaxNodes: 256", "a free comment", "Note: between jobs"]);
    expect(trace.headerFields).toEqual({ Version: "2", MaxNodes: "256", Note: "between jobs" });
    expect(trace.records).toHaveLength(1);
    expect(trace.records[0]?.line).toBe(5);
  });

  it("treats -1 as unknown", () => {
    // Prepare
    const text = "1 0 -1 10 4 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1\n";

    // Act
    const [record] = parseSwf(text).records;

    // Assess
    expect(record?.waitTime).toBeUndefined();
    expect(record?.requestedProcessors).toBeUndefined();
    expect(record?.thinkTimeFromPrecedingJob).toBeUndefined();
    expect(record?.queueNumber).toBe(0);
  });

  it("names the line and the problem of each malformed line", () => {
    // Prepare: line 2 has 17 fields, line 3 a word, line 4 a negative value other than -1.
    const text = [
      "; header",
      "1 0 -1 10 4 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1",
      "2 0 -1 ten 4 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1",
      "3 0 -1 10 -4 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1",
      FULL_LINE,
    ].join("\n");

    // Act
    const error = catchError(() => parseSwf(text, "bad.swf"));

    // Assess
    expect(error.issues.map((i) => i.path)).toEqual(["line 2", "line 3", "line 4"]);
    expect(error.issues[0]?.message).toMatch(/expected 18 fields, found 17/);
    expect(error.issues[1]?.message).toMatch(/field 4 \(runTime\) is "ten", not a number/);
    expect(error.issues[2]?.message).toMatch(/field 5 \(allocatedProcessors\) is -4: use -1 for unknown/);
    expect(error.message).toContain("bad.swf");
  });

  it("reports at most 10 malformed lines and counts the rest", () => {
    // Prepare
    const text = Array.from({ length: 25 }, () => "1 2 3").join("\n");

    // Act
    const error = catchError(() => parseSwf(text));

    // Assess
    expect(error.issues).toHaveLength(11);
    expect(error.issues[9]?.path).toBe("line 10");
    expect(error.issues[10]?.message).toBe("15 more malformed line(s) not shown");
  });

  it("formats records back into text it reads the same way", () => {
    // Prepare
    const original = parseSwf(`; Version: 2\n${FULL_LINE}\n`);

    // Act
    const again = parseSwf(formatSwf(original.header, original.records));

    // Assess
    expect(again).toEqual(original);
  });
});

describe("SWF records to jobs", () => {
  const config = parseConfig({
    instanceTypes: { n4: { vcpus: 4, memoryMiB: 8192 } },
    queueConfigs: [
      { queueName: "a", expansionNodeConfigs: [{ zone: "z", instanceType: "n4" }] },
      { queueName: "b", expansionNodeConfigs: [{ zone: "z", instanceType: "n4" }] },
    ],
  });

  it("maps submit, run, processors (8 over 5), requested time, memory per processor and queue", () => {
    // Prepare: requested 32 processors (field 8) beats allocated 16; 4096 KB → 4 MiB; queue 2 → b.
    const records = parseSwf(`${FULL_LINE}\n`).records;

    // Act
    const { jobs } = toWorkload(records, config, { queueMap: { "2": "b" }, memPerCpuMiB: 1000 });

    // Assess
    expect(jobs).toEqual([
      {
        id: "7",
        queue: "b",
        submitMs: 100_000,
        runMs: 3_600_000,
        estimateMs: 7_200_000,
        procs: 32,
        memPerTaskMiB: 4,
      },
    ]);
  });

  it("falls back to allocated processors, the run time as estimate, the default memory and the first queue", () => {
    // Prepare: fields 8, 9, 10 unknown; queue 5 is not mapped.
    const records = parseSwf("1 0 -1 10 4 -1 -1 -1 -1 -1 1 -1 -1 -1 5 -1 -1 -1\n").records;

    // Act
    const { jobs } = toWorkload(records, config, { queueMap: {}, memPerCpuMiB: 1000 });

    // Assess
    expect(jobs[0]).toMatchObject({ queue: "a", procs: 4, estimateMs: 10_000, memPerTaskMiB: 1000 });
  });

  it("skips records it cannot replay, counted by reason, and sorts the rest by submit time", () => {
    // Prepare: job 1 no run time, job 2 no processors, jobs 3 and 4 out of order.
    const records = parseSwf(
      [
        "1 0 -1 -1 4 -1 -1 -1 -1 -1 5 -1 -1 -1 0 -1 -1 -1",
        "2 0 -1 10 -1 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1",
        "3 50 -1 10 1 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1",
        "4 20 -1 10 1 -1 -1 -1 -1 -1 1 -1 -1 -1 0 -1 -1 -1",
      ].join("\n"),
    ).records;

    // Act
    const workload = toWorkload(records, config, { queueMap: {}, memPerCpuMiB: 1000 });

    // Assess
    expect(workload.jobs.map((j) => j.id)).toEqual(["4", "3"]);
    expect(workload.skipped).toEqual({ "unknown run time": 1, "unknown processor count": 1 });
  });
});
