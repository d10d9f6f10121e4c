import { describe, expect, it } from "vitest";
import { parseReport, reportToClusterState } from "../../../lib/ports/agent-report.js";
import type { SlurmJob, SlurmNode } from "../../../scheduler-plugins/slurm/model.js";
import { parseScontrolPartitions, parseSinfoJson } from "../../../scheduler-plugins/slurm/nodes.js";
import { buildReport, nodeStateOf, shapeOf } from "../../../scheduler-plugins/slurm/report.js";
import { parseSqueueJson } from "../../../scheduler-plugins/slurm/squeue-json.js";
import { fixture } from "./fixtures.js";

const NOW = Date.parse("2026-11-24T04:00:00Z");

function recordedReport() {
  return buildReport({
    jobs: parseSqueueJson(fixture("squeue.json")).jobs,
    nodes: parseSinfoJson(fixture("sinfo.json")).nodes,
    partitions: parseScontrolPartitions(fixture("scontrol-partitions.txt")),
    slurmVersion: "22.05.8",
    source: "json",
    agentVersion: "0.1.0",
    now: NOW,
  });
}

/** The input of a report with no jobs, nodes or partitions. */
function reportInput() {
  return {
    jobs: [],
    nodes: [],
    partitions: [],
    slurmVersion: "22.05.8",
    source: "json" as const,
    agentVersion: "x",
    now: NOW,
  };
}

/** A report of these records alone, with no partition defaults. */
function reportOf(jobs: SlurmJob[], nodes: SlurmNode[] = []) {
  return buildReport({
    jobs,
    nodes,
    partitions: [],
    slurmVersion: "22.05.8",
    source: "json",
    agentVersion: "x",
    now: NOW,
  });
}

function job(overrides: Partial<SlurmJob>): SlurmJob {
  return {
    id: "1",
    taskCount: 1,
    partitions: ["compute"],
    state: "PENDING",
    reason: "Resources",
    dependency: "",
    submittedAt: NOW - 60_000,
    nodeCount: 1,
    nodesFixed: false,
    cpus: 1,
    tasks: 1,
    cpusPerTask: 1,
    minCpusPerNode: 1,
    gpusPerNode: 0,
    gpusPerTask: 0,
    gpusPerJob: 0,
    memWholeNode: false,
    features: "",
    exclusive: false,
    nodeNames: [],
    ...overrides,
  };
}

describe("buildReport on the recorded queue", () => {
  const report = recordedReport();
  const group = (id: string) => report.jobs.find((g) => g.jobIds.includes(id));

  it("passes its own schema and maps onto the core's state", () => {
    // Act
    const parsed = parseReport(JSON.parse(JSON.stringify(report)));
    const state = reportToClusterState(report);
    // Assess
    expect(parsed.status).toBe("ok");
    expect(state.jobs.length).toBe(report.jobs.length);
    expect(state.nodes.map((n) => n.name)).toEqual(["c4-a"]);
  });

  it("counts a multi-node job as demand with its node count", () => {
    expect(group("2")).toMatchObject({
      state: "PENDING",
      queue: "compute",
      nodes: 2,
      cpusPerNode: 1,
      count: 1,
    });
  });

  it("turns --mem into per-node memory and --mem-per-cpu into per-task memory", () => {
    expect(group("3")).toMatchObject({ state: "PENDING", nodes: 1, cpusPerNode: 3, memPerNodeMiB: 2000 });
    expect(group("4")).toMatchObject({ state: "PENDING", tasks: 4, cpusPerTask: 2, memPerTaskMiB: 200 });
  });

  it("applies the partition's DefMemPerCPU to a job without a memory request", () => {
    expect(group("8")).toMatchObject({ queue: "gpu", nodes: 1, cpusPerNode: 2, memPerNodeMiB: 2000 });
  });

  it("marks --exclusive", () => {
    expect(group("5")).toMatchObject({ state: "PENDING", exclusive: true, cpusPerNode: 8 });
  });

  it("reports held, dependent and not-yet-eligible jobs as BLOCKED with their reason", () => {
    expect(group("6")).toMatchObject({ state: "BLOCKED", reason: "JobHeldUser" });
    expect(group("7")).toMatchObject({ state: "BLOCKED", reason: "Dependency" });
    expect(group("10")).toMatchObject({ state: "BLOCKED", reason: "BeginTime" });
  });

  it("caps a throttled array at its limit", () => {
    expect(group("9_0-28")).toMatchObject({ state: "PENDING", count: 3, cpusPerNode: 8 });
  });

  it("reports the running job with its node, and the node as MIXED with its placement", () => {
    expect(group("1")).toMatchObject({ state: "RUNNING", nodeNames: ["c4-a"], memPerNodeMiB: 1000 });
    expect(report.nodes[0]).toMatchObject({
      name: "c4-a",
      queue: "compute",
      instanceType: "c5.xlarge",
      zone: "zone-a",
      state: "MIXED",
    });
  });
});

describe("buildReport grouping", () => {
  it("folds 10,000 identical pending jobs into one group with the oldest submit time", () => {
    // Prepare
    const jobs = Array.from({ length: 10_000 }, (_, i) =>
      job({ id: String(i + 1), submittedAt: NOW - i * 1000 }),
    );
    // Act
    const report = reportOf(jobs);
    // Assess
    expect(report.jobs).toHaveLength(1);
    expect(report.jobs[0]).toMatchObject({
      count: 10_000,
      oldestSubmittedAt: new Date(NOW - 9_999_000).toISOString(),
    });
    expect(report.jobs[0]?.jobIds[0]).toBe("10000");
    expect(report.jobs[0]?.jobIds).toHaveLength(5);
  });

  it("keeps different shapes, features and reasons apart", () => {
    const jobs = [
      job({ id: "1" }),
      job({ id: "2", cpus: 2, minCpusPerNode: 2 }),
      job({ id: "3", features: "ib" }),
      job({ id: "4", reason: "Priority" }),
    ];
    const report = reportOf(jobs);
    expect(report.jobs).toHaveLength(4);
  });

  it("reads NowScale's job notes from Comment or AdminComment, tells a user's comment apart, and groups by them", () => {
    // Prepare
    const note = "nowscale: no instance type of queue compute fits 12 GPUs per node";
    const jobs = [
      job({ id: "1", comment: "", adminComment: "" }),
      job({ id: "2", comment: note, adminComment: "" }),
      job({ id: "3", comment: note, adminComment: "" }),
      job({ id: "4", comment: "project X", adminComment: note }),
      // A user's text that looks like a note but fails the allow-list stays the user's.
      job({ id: "5", comment: "nowscale: \u00e9\nrm -rf", adminComment: "" }),
      job({ id: "6" }),
    ];
    // Act
    const report = reportOf(jobs);
    // Assess
    const byId = (id: string) => report.jobs.find((g) => g.jobIds.includes(id));
    expect(report.jobs.map((g) => g.jobIds)).toEqual([["1", "6"], ["2", "3"], ["4"], ["5"]]);
    expect(byId("1")).not.toHaveProperty("note");
    expect(byId("2")).toMatchObject({ note, noteIn: "comment" });
    expect(byId("2")).not.toHaveProperty("userComment");
    expect(byId("4")).toMatchObject({ note, noteIn: "adminComment", userComment: true });
    expect(byId("5")).toMatchObject({ userComment: true });
    expect(byId("5")).not.toHaveProperty("note");
    expect(parseReport(report)).toEqual(report);
    expect(reportToClusterState(report).jobs.map((j) => j.id)).toEqual(["1", "2", "4", "5"]);
  });

  it("reads comments from squeue --json (recorded on Slurm 22.05: the sbatch cases label jobs with --comment)", () => {
    const jobs = parseSqueueJson(fixture("squeue-sbatch-cases.json")).jobs;
    expect(jobs[0]).toMatchObject({ comment: "gpus-per-job", adminComment: "" });
    expect(reportOf(jobs.slice(0, 1)).jobs[0]).toMatchObject({ userComment: true });
  });

  it("counts BadConstraints and ReqNodeNotAvail as demand: Slurm says so while no fitting node is up", () => {
    const report = reportOf([
      job({ id: "1", reason: "BadConstraints" }),
      job({ id: "2", reason: "ReqNodeNotAvail" }),
      job({ id: "3", reason: "JobHeldUser" }),
    ]);
    expect(report.jobs.map((g) => [g.jobIds[0], g.state])).toEqual([
      ["1", "PENDING"],
      ["2", "PENDING"],
      ["3", "BLOCKED"],
    ]);
  });

  it("lists FUTURE nodes (placeholders) with the unmanaged ones: never capacity", () => {
    const features = ["q_compute", "type_c5.xlarge", "zone_a"];
    const node = (name: string, state: string): SlurmNode => ({
      name,
      state,
      flags: [],
      cpus: 4,
      cpusAllocated: 0,
      memoryMiB: 8000,
      memoryAllocatedMiB: 0,
      gpus: 0,
      features,
      partitions: ["compute"],
      reason: "",
    });
    const report = reportOf([], [node("ph-c5", "FUTURE"), node("c5-1", "IDLE")]);
    expect(report.unmanagedNodes).toEqual(["ph-c5"]);
    expect(report.nodes.map((n) => n.name)).toEqual(["c5-1"]);
  });

  it("hands the constraint and the whole-node claim to the core", () => {
    const report = reportOf([job({ id: "5", features: "[ib*2&gpu*1]", exclusive: true, nodeCount: 3 })]);
    const state = reportToClusterState(report);
    expect(state.jobs).toEqual([
      expect.objectContaining({ id: "5", constraint: "[ib*2&gpu*1]", wholeNode: true }),
    ]);
  });

  it("blocks a job with an unmet dependency or a future begin time whatever reason Slurm shows", () => {
    const jobs = [
      job({ id: "1", reason: "PartitionConfig", dependency: "afterok:5(unfulfilled)" }),
      job({ id: "2", reason: "PartitionConfig", eligibleAt: NOW + 3_600_000 }),
      job({ id: "3", reason: "PartitionConfig", eligibleAt: NOW - 1000 }),
    ];
    const report = reportOf(jobs);
    expect(report.jobs.map((g) => [g.jobIds[0], g.state, g.reason])).toEqual([
      ["1", "BLOCKED", "Dependency"],
      ["2", "BLOCKED", "BeginTime"],
      ["3", "PENDING", "PartitionConfig"],
    ]);
  });

  it("leaves out a job whose partition fails the allow-list, and says so", () => {
    const jobs = [job({ id: "1", partitions: ["bad_name;rm"] })];
    const report = reportOf(jobs);
    expect(report.jobs).toHaveLength(0);
    expect(report.ignored.jobs).toBe(1);
    expect(report.ignored.examples[0]).toMatch(/not a valid queue name/);
  });

  it("carries the master's partitions with their state and the default one; a hostile name left out and told", () => {
    // Prepare
    const partitions = [
      ...parseScontrolPartitions(fixture("scontrol-partitions.txt")),
      { name: "bad;rm", state: "UP" },
      { name: "old", state: "down-ish" },
    ];
    // Act
    const report = buildReport({ ...reportInput(), partitions });
    const parsed = parseReport(JSON.parse(JSON.stringify(report)));
    // Assess
    expect(report.partitions).toEqual([
      { name: "compute", state: "UP", default: true },
      { name: "gpu", state: "UP", default: false },
      { name: "old", state: "UNKNOWN", default: false },
    ]);
    expect(report.ignored.examples).toContain('partition "bad;rm": not a valid queue name');
    expect(parsed.status).toBe("ok");
  });

  it("lists nodes without NowScale's features as unmanaged", () => {
    const node = parseSinfoJson(fixture("sinfo.json")).nodes[0];
    if (!node) throw new Error("fixture has a node");
    const report = reportOf([], [{ ...node, features: ["fast"] }]);
    expect(report.nodes).toEqual([]);
    expect(report.unmanagedNodes).toEqual(["c4-a"]);
  });
});

describe("shapeOf", () => {
  it("splits --gpus over the job's nodes", () => {
    expect(shapeOf(job({ nodeCount: 2, nodesFixed: true, cpus: 2, gpusPerJob: 4 }), undefined)).toMatchObject(
      { nodes: 2, gpusPerNode: 2 },
    );
  });

  it("uses GPUs per node from GRES", () => {
    expect(shapeOf(job({ gpusPerNode: 2 }), undefined)).toMatchObject({ nodes: 1, gpusPerNode: 2 });
  });
});

describe("nodeStateOf", () => {
  it.each([
    ["IDLE", [], 0, "IDLE"],
    ["MIXED", [], 2, "MIXED"],
    ["ALLOCATED", [], 4, "ALLOCATED"],
    ["IDLE", ["DRAIN"], 0, "DRAINED"],
    ["MIXED", ["DRAIN"], 2, "DRAINING"],
    // NOT_RESPONDING alone: Slurm sets it after every RESUME; DOWN after SlurmdTimeout, the safety net meanwhile.
    ["IDLE", ["NOT_RESPONDING"], 0, "IDLE"],
    // Not capacity now: covers demand only within bootTimeout of its launch (issue 12, class 6).
    ["ALLOCATED", ["NOT_RESPONDING"], 4, "ALLOCATED"],
    ["IDLE", ["POWERED_DOWN"], 0, "NOT_READY"],
    ["UNKNOWN", [], 0, "NOT_READY"],
    ["DOWN", ["NOT_RESPONDING"], 0, "DOWN"],
    ["IDLE", ["FAIL"], 0, "DOWN"],
    ["DOWN", ["DRAIN"], 0, "DOWN"],
    ["IDLE", ["POWERING_UP"], 0, "NOT_READY"],
    ["IDLE", ["COMPLETING"], 0, "MIXED"],
  ] as const)("%s+%j with %i CPUs allocated → %s", (state, flags, cpusAllocated, expected) => {
    expect(nodeStateOf({ state, flags: [...flags], cpusAllocated })).toBe(expected);
  });
});
