import { describe, expect, it } from "vitest";
import { SlurmParseError, SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";
import { arrayRecordId, countArrayTasks } from "../../../scheduler-plugins/slurm/model.js";
import { FIELD_SEPARATOR, parseSqueueFormat } from "../../../scheduler-plugins/slurm/squeue-format.js";
import { parseSqueueJson } from "../../../scheduler-plugins/slurm/squeue-json.js";
import { fixture } from "./fixtures.js";

describe("parseSqueueJson on recorded Slurm 22.05 output", () => {
  const { version, jobs } = parseSqueueJson(fixture("squeue.json"));
  const byId = new Map(jobs.map((j) => [j.id, j]));

  it("reads the version and every job", () => {
    // Prepare / Act: parsed above. Assess:
    expect(version).toBe("22.05.8");
    expect(jobs.map((j) => j.id).sort()).toEqual(["1", "10", "2", "3", "4", "5", "6", "7", "8", "9_0-28"]);
  });

  it("reads a running job with its memory and node", () => {
    expect(byId.get("1")).toMatchObject({
      state: "RUNNING",
      partitions: ["compute"],
      cpus: 2,
      memPerNodeMiB: 1000,
      nodeNames: ["c4-a"],
    });
  });

  it("reads the dependency still to be met and the eligible time", () => {
    expect(byId.get("7")?.dependency).toBe("afterok:1(unfulfilled)");
    expect(byId.get("10")?.eligibleAt).toBeGreaterThan(
      byId.get("10")?.submittedAt ?? Number.POSITIVE_INFINITY,
    );
  });

  it("reads a multi-node job as fixed nodes", () => {
    expect(byId.get("2")).toMatchObject({
      state: "PENDING",
      reason: "PartitionNodeLimit",
      nodeCount: 2,
      nodesFixed: true,
    });
  });

  it("reads --mem-per-cpu and recovers cpus per task, which 22.05 leaves null", () => {
    expect(byId.get("4")).toMatchObject({ tasks: 4, cpusPerTask: 2, memPerCpuMiB: 100, nodesFixed: false });
  });

  it("reads --exclusive, holds, dependencies and begin times with their reasons", () => {
    expect(byId.get("5")?.exclusive).toBe(true);
    expect(byId.get("6")?.reason).toBe("JobHeldUser");
    expect(byId.get("7")?.reason).toBe("Dependency");
    expect(byId.get("10")?.reason).toBe("BeginTime");
  });

  it("counts the pending tasks of a throttled array", () => {
    expect(byId.get("9_0-28")).toMatchObject({ arrayJobId: "9", taskCount: 15, arrayLimit: 3 });
  });

  it("reads the submit time in epoch ms", () => {
    expect(byId.get("1")?.submittedAt).toBe(1795491942000);
  });

  it("says slurmctld is unreachable when the document carries errors, although it lists no jobs", () => {
    // Prepare
    const text = fixture("squeue-unreachable.json");
    // Act / Assess
    expect(() => parseSqueueJson(text)).toThrow(SlurmUnavailableError);
  });

  it("rejects a document without a jobs list", () => {
    expect(() => parseSqueueJson('{"errors": [], "nodes": []}')).toThrow(SlurmParseError);
  });

  it("rejects a job without an id", () => {
    expect(() => parseSqueueJson('{"errors": [], "jobs": [{"job_state": "PENDING"}]}')).toThrow(
      /job_id is missing/,
    );
  });
});

describe("parseSqueueFormat on recorded output", () => {
  const jobs = parseSqueueFormat(fixture("squeue-format.txt"));
  const byId = new Map(jobs.map((j) => [j.id, j]));

  it("reads every job of the same queue as the JSON form", () => {
    const fromJson = parseSqueueJson(fixture("squeue.json")).jobs.map((j) => j.id);
    expect(jobs.map((j) => j.id).sort()).toEqual(fromJson.sort());
  });

  it("reads shapes, reasons, nodes and exclusivity", () => {
    expect(byId.get("1")).toMatchObject({
      state: "RUNNING",
      memPerNodeMiB: 1000,
      nodeNames: ["c4-a"],
      cpus: 2,
    });
    expect(byId.get("2")).toMatchObject({ nodeCount: 2, reason: "PartitionNodeLimit" });
    expect(byId.get("5")?.exclusive).toBe(true);
    expect(byId.get("9_0-28")).toMatchObject({ taskCount: 15, arrayLimit: 3, arrayJobId: "9" });
  });

  it("reads the dependency still to be met", () => {
    expect(byId.get("7")?.dependency).toBe("afterok:1(unfulfilled)");
    expect(byId.get("2")?.dependency).toBe("");
  });

  it("rejects a line with the wrong number of fields", () => {
    expect(() => parseSqueueFormat(`1${FIELD_SEPARATOR}2\n`)).toThrow(SlurmParseError);
  });
});

describe("countArrayTasks", () => {
  it.each([
    ["0-9", 10, undefined],
    ["0-9,20-28:2%3", 15, 3],
    ["5", 1, undefined],
    ["1,3,5-7", 5, undefined],
  ])("%s has %i tasks", (spec, count, limit) => {
    expect(countArrayTasks(spec)).toEqual(limit === undefined ? { count } : { count, limit });
  });

  it("gives undefined for N/A and garbage", () => {
    expect(countArrayTasks("N/A")).toBeUndefined();
    expect(countArrayTasks("9-1")).toBeUndefined();
    expect(countArrayTasks("a-b")).toBeUndefined();
  });
});

describe("arrayRecordId", () => {
  it.each([
    ["9", "0-9,20,22,24,26,28%3", "9_0-28"],
    ["9", "0-99:2", "9_0-99"],
    ["4", "7", "4_7"],
  ])("%s with %s → %s", (arrayJobId, spec, id) => {
    expect(arrayRecordId(arrayJobId, spec)).toBe(id);
  });
});

describe("parseSqueueJson on the 23.02+ form (OpenAPI v0.0.39+)", () => {
  it("unwraps {set, number} values and list states", () => {
    // Prepare: a 22.05 record rewritten the way 23.11 writes numbers, states and sharing.
    const doc = JSON.parse(fixture("squeue.json")) as { jobs: Record<string, unknown>[] };
    const record = doc.jobs.find((j) => j.job_id === 5) as Record<string, unknown>;
    const wrap = (n: unknown) => ({ set: n !== null, infinite: false, number: n ?? 0 });
    for (const key of [
      "node_count",
      "cpus",
      "tasks",
      "memory_per_node",
      "memory_per_cpu",
      "submit_time",
      "cpus_per_task",
    ]) {
      record[key] = wrap(record[key]);
    }
    record.job_state = ["PENDING"];
    record.shared = ["none"];
    // Act
    const [job] = parseSqueueJson(JSON.stringify({ errors: [], jobs: [record] })).jobs;
    // Assess
    expect(job).toMatchObject({
      id: "5",
      state: "PENDING",
      cpus: 8,
      exclusive: true,
      submittedAt: 1795491942000,
    });
    expect(job?.memPerNodeMiB).toBeUndefined();
  });
});
