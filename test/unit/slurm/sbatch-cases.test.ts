import { describe, expect, it } from "vitest";
import { type ConfigInput, type Decision, parseConfig, plan } from "../../../lib/core/index.js";
import { type JobGroup, reportToClusterState } from "../../../lib/ports/agent-report.js";
import { parseScontrolPartitions } from "../../../scheduler-plugins/slurm/nodes.js";
import { buildReport } from "../../../scheduler-plugins/slurm/report.js";
import { parseSqueueJson } from "../../../scheduler-plugins/slurm/squeue-json.js";
import { fixture } from "./fixtures.js";

/**
 * Issue 12's sbatch cases, as a real Slurm 22.05 reported them (test/slurm/record-sbatch-cases.ts: each job
 * submitted into partitions without nodes, its comment naming the case), replayed through the agent's
 * parsers and report into the planner. Each test holds the right launch for one case.
 */
const raw = JSON.parse(fixture("squeue-sbatch-cases.json")) as {
  jobs: { job_id: number; comment: string; submit_time: number }[];
};
const report = buildReport({
  jobs: parseSqueueJson(fixture("squeue-sbatch-cases.json")).jobs,
  nodes: [],
  partitions: parseScontrolPartitions(fixture("scontrol-partitions-sbatch-cases.txt")),
  slurmVersion: "22.05.8",
  source: "json",
  agentVersion: "test",
  now: Date.now(),
});
const NOW = Math.max(...raw.jobs.map((j) => j.submit_time)) * 1000 + 600_000;

/** The report's group for a case (by the comment the recorder gave its jobs). */
function group(name: string): JobGroup {
  const ids = raw.jobs.filter((j) => j.comment === name).map((j) => String(j.job_id));
  const found = report.jobs.find((g) =>
    g.jobIds.some((id) => ids.includes(id) || ids.includes(id.split("_")[0] ?? "")),
  );
  if (!found) throw new Error(`no group for case ${name}`);
  return found;
}

/** Plans one case alone on one queue. */
function planCase(
  name: string,
  instanceTypes: ConfigInput["instanceTypes"],
  queue: Partial<ConfigInput["queueConfigs"][number]> = {},
  cluster: Partial<ConfigInput> = {},
): Decision {
  const g = group(name);
  const config = parseConfig({
    instanceTypes,
    queueConfigs: [
      {
        queueName: g.queue,
        maxSize: 200,
        expansionNodeConfigs: Object.keys(instanceTypes ?? {}).map((t) => ({ instanceType: t, zone: "z1" })),
        ...queue,
      },
    ],
    ...cluster,
  });
  const state = reportToClusterState({ ...report, jobs: [g] });
  return plan(config, state, NOW);
}

const launched = (d: Decision) => d.launches.map((l) => [l.instanceType, l.count, l.allOrNothing]);

describe("issue 12 sbatch cases, from real Slurm output to the launch", () => {
  it("--gpus=12 on 4-GPU nodes: 3 nodes, all-or-nothing (was: 1 node of 12 GPUs, skipped)", () => {
    // Act
    const decision = planCase("gpus-per-job", { g4: { vcpus: 16, memoryMiB: 65536, gpus: 4 } });
    // Assess
    expect(group("gpus-per-job")).toMatchObject({ tasks: 12, gpusPerTask: 1, cpusPerTask: 1 });
    expect(launched(decision)).toEqual([["g4", 3, true]]);
    expect(decision.skipped).toEqual([]);
  });

  it("-n 6 --gpus-per-task=2 on 4-GPU nodes: 3 nodes, all-or-nothing", () => {
    const decision = planCase("gpus-per-task", { g4: { vcpus: 16, memoryMiB: 65536, gpus: 4 } });
    expect(group("gpus-per-task")).toMatchObject({ tasks: 6, gpusPerTask: 2 });
    expect(launched(decision)).toEqual([["g4", 3, true]]);
  });

  it("--gpus=2 --cpus-per-gpu=4 asks for 8 CPUs: the 2-vCPU GPU type cannot serve it", () => {
    // Prepare: read as 1 CPU per GPU, the 2-vCPU type would fit both GPUs on one node.
    const types = {
      g2c2: { vcpus: 2, memoryMiB: 16384, gpus: 2 },
      g2c8: { vcpus: 8, memoryMiB: 32768, gpus: 2 },
    };
    // Act
    const decision = planCase("cpus-per-gpu", types);
    // Assess
    expect(group("cpus-per-gpu")).toMatchObject({ tasks: 2, cpusPerTask: 4, gpusPerTask: 1 });
    expect(launched(decision)).toEqual([["g2c8", 1, false]]);
  });

  it("--gpus-per-node=1 --mem-per-gpu=48G on [16 GiB, 61 GiB] 1-GPU types: the 61 GiB type", () => {
    const decision = planCase("mem-per-gpu", {
      g1m16: { vcpus: 4, memoryMiB: 16384, gpus: 1 },
      g1m61: { vcpus: 8, memoryMiB: 62464, gpus: 1 },
    });
    expect(group("mem-per-gpu")).toMatchObject({ nodes: 1, gpusPerNode: 1, memPerNodeMiB: 49152 });
    expect(launched(decision)).toEqual([["g1m61", 1, false]]);
  });

  it("six --exclusive one-core jobs under packed: 6 nodes in the first round (was: 2, 2, 1, 1)", () => {
    const decision = planCase("exclusive", { c4m8: { vcpus: 4, memoryMiB: 8192 } }, {}, { policy: "packed" });
    expect(group("exclusive")).toMatchObject({ count: 6, exclusive: true, wholeNode: true });
    expect(launched(decision)).toEqual([["c4m8", 6, false]]);
  });

  it("--mem=0, and no memory in a partition without DefMemPerCPU, take whole nodes; a default does not", () => {
    expect(group("mem-zero")).toMatchObject({ wholeNode: true, memPerNodeMiB: 0 });
    expect(group("no-memory-no-default")).toMatchObject({ wholeNode: true, memPerNodeMiB: 0 });
    expect(group("no-memory-default").wholeNode).toBeUndefined();
    expect(group("no-memory-default")).toMatchObject({ memPerNodeMiB: 1000 });
    // Under packed, two whole-node jobs never share a node.
    const types = { c4m8: { vcpus: 4, memoryMiB: 8192 } };
    expect(launched(planCase("mem-zero", types, {}, { policy: "packed" }))).toEqual([["c4m8", 1, false]]);
  });

  it("-c 2 --mem=2G under thpc on [8-vCPU CPU type, 4-vCPU 1-GPU type]: the CPU type", () => {
    const types = {
      c8m16: { vcpus: 8, memoryMiB: 16384 },
      g4m16: { vcpus: 4, memoryMiB: 16384, gpus: 1 },
    };
    expect(launched(planCase("cpu-only", types))).toEqual([["c8m16", 1, false]]);
    expect(launched(planCase("cpu-only", types, {}, { policy: "packed" }))).toEqual([["c8m16", 1, false]]);
  });

  it("120 one-CPU array tasks on 72-vCPU nodes: thpc launches 100 and accounts for the 20 deferred copies", () => {
    // Prepare
    const types = { c72: { vcpus: 72, memoryMiB: 147456 } };
    // Act
    const thpc = planCase("one-cpu-array", types);
    const packed = planCase("one-cpu-array", types, {}, { policy: "packed" });
    // Assess: THPC's one node per job against packed's 2.
    expect(group("one-cpu-array")).toMatchObject({ count: 120 });
    expect(launched(thpc)).toEqual([["c72", 100, false]]);
    expect(thpc.skipped).toEqual([expect.objectContaining({ code: "CYCLE_CAP_REACHED", copies: 20 })]);
    expect(launched(packed)).toEqual([["c72", 2, false]]);
    expect(packed.skipped).toEqual([]);
  });
});
