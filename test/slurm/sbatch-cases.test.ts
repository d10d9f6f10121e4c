import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_VERSION } from "../../agent/version.js";
import { type ConfigInput, type Decision, parseConfig, plan } from "../../lib/core/index.js";
import { type JobGroup, type OkReport, reportToClusterState } from "../../lib/ports/agent-report.js";
import { sleep } from "../../lib/providers/local/netns.js";
import {
  startTestbed,
  stopTestbed,
  type Testbed,
  testbedUnavailableReason,
} from "../../lib/providers/local/slurm-testbed.js";
import { addTestbedNode, removeTestbedNode } from "../../lib/providers/local/testbed-nodes.js";
import { SlurmClient } from "../../scheduler-plugins/slurm/client.js";
import { collectReport } from "../../scheduler-plugins/slurm/collect.js";
import { runCommand } from "../../scheduler-plugins/slurm/exec.js";
import { placementFeatures } from "../../scheduler-plugins/slurm/features.js";
import { placeholderSpecs } from "../../scheduler-plugins/slurm/placeholders.js";

/**
 * Issue 12 on a real Slurm 22.05: each test submits the actual sbatch flags, reads the agent's report
 * (collectReport, the agent's own code), plans on it, and where it matters starts the planned nodes as
 * `slurmd -Z` namespace nodes (GPUs declared by count) to see Slurm run the job on them: Slurm decides.
 * Own bridge, subnet, ports and prefix; run under `flock /tmp/slurm-test.lock npm run test:slurm`.
 */
describe("issue 12 sbatch cases on a real Slurm", () => {
  const prefix = "nssb-";
  let tb: Testbed;
  let nextAddress = 10;

  const slurm = async (file: string, args: string[]) => {
    const r = await runCommand(file, args, { env: tb.env, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const sbatch = (args: string[]) => slurm("sbatch", ["--parsable", "--output=/dev/null", ...args]);
  /** sbatch's error for a job Slurm refuses at submit, or "" when it is accepted. */
  const refusal = async (args: string[]) => {
    const r = await runCommand("sbatch", ["--parsable", "--output=/dev/null", ...args], { env: tb.env });
    return r.code === 0 ? "" : r.stderr.trim();
  };
  const report = async (): Promise<OkReport> => {
    const r = await collectReport(new SlurmClient({ env: tb.env }), AGENT_VERSION);
    if (r.status !== "ok") throw new Error(`expected an ok report, got ${JSON.stringify(r)}`);
    return r;
  };
  const group = (r: OkReport, id: string): JobGroup => {
    const g = r.jobs.find((j) => j.jobIds.some((x) => x === id || x.startsWith(`${id}_`)));
    if (!g) throw new Error(`job ${id} is not in the report`);
    return g;
  };
  /** Plans the report's groups of these jobs alone, on one queue of these types. */
  const planFor = (
    r: OkReport,
    ids: string[],
    queueName: string,
    types: NonNullable<ConfigInput["instanceTypes"]>,
    extra: { features?: string[]; zone?: string; policy?: "thpc" | "packed" } = {},
  ): Decision => {
    const config = parseConfig({
      expansionBusyTime: 0,
      policy: extra.policy ?? "thpc",
      instanceTypes: types,
      queueConfigs: [
        {
          queueName,
          maxSize: 50,
          features: extra.features ?? [],
          expansionNodeConfigs: Object.keys(types).map((t) => ({
            instanceType: t,
            zone: extra.zone ?? "zone-a",
          })),
        },
      ],
    });
    const jobs = ids.map((id) => group(r, id));
    return plan(config, reportToClusterState({ ...r, jobs: [...new Set(jobs)] }), Date.now());
  };
  /** Starts the node a launch asked for, with the type's shape as the bootstrap would declare it. */
  const startNode = async (
    name: string,
    queue: string,
    type: string,
    shape: { vcpus: number; memoryMiB: number; gpus?: number },
    queueFeatures: string[] = [],
  ) => {
    started.push(name);
    await addTestbedNode(tb, {
      name,
      address: `192.168.247.${nextAddress++}`,
      cpus: shape.vcpus,
      // What the bootstrap declares: the spec ÷ scaleUpMemRatio (1.1 by default).
      realMemoryMiB: Math.floor(shape.memoryMiB / 1.1),
      gpus: shape.gpus ?? 0,
      features: placementFeatures({ queue, instanceType: type, zone: "zone-a" }, queueFeatures),
    });
  };
  const until = async <T>(
    what: string,
    probe: () => Promise<T | undefined>,
    timeoutMs = 60_000,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value !== undefined) return value;
      await sleep(500);
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  /**
   * The nodes Slurm runs this one job on (the report groups running jobs, so ask squeue). Slurm's
   * periodic pass can take a minute to start a job it once found BadConstraints.
   */
  const runningOn = (id: string) =>
    until(
      `job ${id} to run`,
      async () => {
        const [state, nodes] = (await slurm("squeue", ["--noheader", "--jobs", id, "--format=%T %N"])).split(
          " ",
        );
        if (state !== "RUNNING" || nodes === undefined) return undefined;
        return slurm("scontrol", ["show", "hostnames", nodes]).then((t) => t.split("\n"));
      },
      120_000,
    );
  const started: string[] = [];
  /** Cancels every job and, once Slurm has let them all go, removes the nodes (deleting a busy one fails). */
  afterEach(async () => {
    await slurm("scancel", ["--user=root"]);
    await until("every job to be gone", async () =>
      (await slurm("squeue", ["--noheader", "--format=%i"])) === "" ? true : undefined,
    );
    for (const n of started.splice(0)) await removeTestbedNode(tb, n);
  }, 120_000);

  beforeAll(async () => {
    const unavailable = testbedUnavailableReason();
    if (unavailable !== undefined) throw new Error(`the real-Slurm suite cannot run here: ${unavailable}`);
    tb = await startTestbed({
      stateDir: await mkdtemp(join(tmpdir(), "nowscale-sbatch-cases-")),
      clusterName: "sbatchcases",
      queues: [
        { name: "compute" },
        { name: "gpu", defMemPerCpuMiB: 1000 },
        { name: "mixed", defMemPerCpuMiB: 1000 },
      ],
      network: { bridge: "nssb-br", hostAddress: "192.168.247.1" },
      netnsPrefix: prefix,
      slurmctldPort: 7317,
      slurmdPort: 7318,
    });
  }, 180_000);

  afterAll(async () => {
    if (tb !== undefined) await stopTestbed(tb);
  }, 180_000);

  it("--gpus=12 into an empty queue: 3 four-GPU nodes all-or-nothing, and Slurm runs it on them", async () => {
    // Prepare
    const g4 = { vcpus: 8, memoryMiB: 16384, gpus: 4 };
    const id = await sbatch(["-p", "gpu", "--gpus=12", "--wrap", "sleep 300"]);
    // Act
    const r = await report();
    const decision = planFor(r, [id], "gpu", { g4 });
    // Assess: the report, the launch, then Slurm's verdict on the launched nodes.
    expect(group(r, id)).toMatchObject({
      state: "PENDING",
      reason: "PartitionConfig",
      tasks: 12,
      gpusPerTask: 1,
    });
    expect(decision.launches.map((l) => [l.instanceType, l.count, l.allOrNothing])).toEqual([
      ["g4", 3, true],
    ]);
    for (const n of ["g4-1", "g4-2", "g4-3"]) await startNode(n, "gpu", "g4", g4);
    expect((await runningOn(id)).sort()).toEqual(["g4-1", "g4-2", "g4-3"]);
  });

  it("--gpus-per-node=1 --mem-per-gpu=48G on [16 GiB, 61 GiB] 1-GPU types: the 61 GiB type, where it runs", async () => {
    const types = {
      g1m16: { vcpus: 4, memoryMiB: 16384, gpus: 1 },
      g1m61: { vcpus: 8, memoryMiB: 62464, gpus: 1 },
    };
    const id = await sbatch(["-p", "gpu", "--gpus-per-node=1", "--mem-per-gpu=48G", "--wrap", "sleep 300"]);
    const r = await report();
    const decision = planFor(r, [id], "gpu", types);
    expect(group(r, id)).toMatchObject({ nodes: 1, gpusPerNode: 1, memPerNodeMiB: 49152 });
    expect(decision.launches.map((l) => [l.instanceType, l.count])).toEqual([["g1m61", 1]]);
    await startNode("g1m61-1", "gpu", "g1m61", types.g1m61);
    expect(await runningOn(id)).toEqual(["g1m61-1"]);
  });

  it("--gpus-per-task and --cpus-per-gpu: GPUs per task, and CPUs per GPU counted", async () => {
    const perTask = await sbatch(["-p", "gpu", "-n", "6", "--gpus-per-task=2", "--wrap", "true"]);
    const perGpu = await sbatch(["-p", "gpu", "--gpus=2", "--cpus-per-gpu=4", "--wrap", "true"]);
    const r = await report();
    expect(group(r, perTask)).toMatchObject({ tasks: 6, gpusPerTask: 2 });
    expect(group(r, perGpu)).toMatchObject({ tasks: 2, cpusPerTask: 4, gpusPerTask: 1 });
    const g4 = { vcpus: 16, memoryMiB: 65536, gpus: 4 };
    expect(planFor(r, [perTask], "gpu", { g4 }).launches.map((l) => [l.count, l.allOrNothing])).toEqual([
      [3, true],
    ]);
    const narrow = {
      g2c2: { vcpus: 2, memoryMiB: 16384, gpus: 2 },
      g2c8: { vcpus: 8, memoryMiB: 32768, gpus: 2 },
    };
    expect(planFor(r, [perGpu], "gpu", narrow).launches.map((l) => l.instanceType)).toEqual(["g2c8"]);
  });

  it("--exclusive and --mem=0 under packed: one node each, and no two share a node in Slurm either", async () => {
    // Prepare: four exclusive one-core jobs and two --mem=0 ones.
    const exclusive: string[] = [];
    for (let i = 0; i < 4; i++)
      exclusive.push(await sbatch(["-p", "compute", "--exclusive", "-c", "1", "--wrap", "sleep 300"]));
    const memZero = [
      await sbatch(["-p", "gpu", "--mem=0", "-c", "1", "--wrap", "sleep 300"]),
      await sbatch(["-p", "gpu", "--mem=0", "-c", "1", "--wrap", "sleep 300"]),
    ];
    // Act
    const r = await report();
    const c4 = { c4m8: { vcpus: 4, memoryMiB: 8192 } };
    // Assess
    expect(group(r, exclusive[0] as string)).toMatchObject({ count: 4, exclusive: true, wholeNode: true });
    expect(group(r, memZero[0] as string)).toMatchObject({ count: 2, wholeNode: true, memPerNodeMiB: 0 });
    expect(planFor(r, exclusive, "compute", c4, { policy: "packed" }).launches.map((l) => l.count)).toEqual([
      4,
    ]);
    expect(planFor(r, memZero, "gpu", c4, { policy: "packed" }).launches.map((l) => l.count)).toEqual([2]);
    // Slurm agrees: two exclusive jobs on two nodes, never together on one.
    await startNode("ex-1", "compute", "c4m8", c4.c4m8);
    await startNode("ex-2", "compute", "c4m8", c4.c4m8);
    const first = await runningOn(exclusive[0] as string);
    const second = await runningOn(exclusive[1] as string);
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect(first).not.toEqual(second);
  });

  it("-c 2 --mem=2G under thpc on [8-vCPU CPU type, 4-vCPU 1-GPU type]: the CPU type", async () => {
    const id = await sbatch(["-p", "mixed", "-c", "2", "--mem=2G", "--wrap", "true"]);
    const r = await report();
    const types = { c8m16: { vcpus: 8, memoryMiB: 16384 }, g4m16: { vcpus: 4, memoryMiB: 16384, gpus: 1 } };
    expect(group(r, id)).toMatchObject({ nodes: 1, cpusPerNode: 2, memPerNodeMiB: 2048, gpusPerNode: 0 });
    expect(planFor(r, [id], "mixed", types).launches.map((l) => l.instanceType)).toEqual(["c8m16"]);
  });

  it("-C with AND, OR and node counts, in a queue where only a CPU node is up: only satisfying types", async () => {
    // Prepare: Slurm refuses a feature no node advertises, and GPUs where only CPU nodes are up.
    expect(await refusal(["-p", "mixed", "-C", "bigmem", "--wrap", "true"])).toMatch(
      /Invalid feature specification/,
    );
    await startNode("cpu-1", "mixed", "c2m4", { vcpus: 2, memoryMiB: 4096 }, ["ib"]);
    expect(await refusal(["-p", "mixed", "--gpus=1", "--wrap", "true"])).toMatch(
      /Requested node configuration is not available/,
    );
    // Keep the one node busy, so the constraint jobs pend.
    const busy = await sbatch(["-p", "mixed", "--exclusive", "--wrap", "sleep 300"]);
    await runningOn(busy);
    const and = await sbatch(["-p", "mixed", "-c", "1", "--mem=100", "-C", "ib&type_c2m4", "--wrap", "true"]);
    const or = await sbatch([
      "-p",
      "mixed",
      "-c",
      "1",
      "--mem=100",
      "-C",
      "type_c2m4|zone_zone-a",
      "--wrap",
      "true",
    ]);
    const counts = await sbatch([
      "-p",
      "mixed",
      "-N",
      "2",
      "--mem=100",
      "-C",
      "[type_c2m4*1&ib*1]",
      "--wrap",
      "true",
    ]);
    // Act
    const r = await report();
    // The queue launches c2m4 (the type the node has) or c8m16, both with the queue feature ib; best fit
    // without a constraint would be c1m2.
    const types = {
      c1m2: { vcpus: 1, memoryMiB: 2048 },
      c2m4: { vcpus: 2, memoryMiB: 4096 },
      c8m16: { vcpus: 8, memoryMiB: 16384 },
    };
    const launchedTypes = (id: string) =>
      planFor(r, [id], "mixed", types, { features: ["ib"] }).launches.map((l) => [l.instanceType, l.count]);
    // Assess
    expect(group(r, and)).toMatchObject({ state: "PENDING", features: "ib&type_c2m4" });
    expect(launchedTypes(and)).toEqual([["c2m4", 1]]);
    expect(launchedTypes(or)).toEqual([["c1m2", 1]]);
    expect(launchedTypes(counts)).toEqual([
      ["c2m4", 1],
      ["c1m2", 1],
    ]);
    const unsatisfied = planFor(r, [and], "mixed", { c1m2: types.c1m2 }, { features: ["ib"] });
    expect(unsatisfied.launches).toEqual([]);
    expect(unsatisfied.skipped.filter((s) => "job" in s)).toEqual([
      expect.objectContaining({ code: "CONSTRAINT_UNSATISFIABLE" }),
    ]);
  });

  it("arrays, --ntasks-per-node, --cpus-per-task, and held and dependent jobs", async () => {
    const array = await sbatch(["-p", "compute", "--array=0-9", "-c", "1", "--mem=100", "--wrap", "true"]);
    const perNode = await sbatch([
      "-p",
      "compute",
      "-N",
      "2",
      "--ntasks-per-node=2",
      "--mem=100",
      "--wrap",
      "true",
    ]);
    const perTask = await sbatch([
      "-p",
      "compute",
      "-n",
      "4",
      "-c",
      "2",
      "--mem-per-cpu=100",
      "--wrap",
      "true",
    ]);
    const held = await sbatch(["-p", "compute", "-H", "-c", "1", "--wrap", "true"]);
    const dependent = await sbatch([
      "-p",
      "compute",
      `--dependency=afterok:${held}`,
      "-c",
      "1",
      "--wrap",
      "true",
    ]);
    const r = await report();
    expect(group(r, array)).toMatchObject({ state: "PENDING", count: 10, nodes: 1, cpusPerNode: 1 });
    expect(group(r, perNode)).toMatchObject({ nodes: 2, cpusPerNode: 2, memPerNodeMiB: 100 });
    expect(group(r, perTask)).toMatchObject({ tasks: 4, cpusPerTask: 2, memPerTaskMiB: 200 });
    expect(group(r, held)).toMatchObject({ state: "BLOCKED", reason: "JobHeldUser" });
    expect(group(r, dependent)).toMatchObject({ state: "BLOCKED", reason: "Dependency" });
    const c4 = { c4m8: { vcpus: 4, memoryMiB: 8192 } };
    const d = planFor(r, [array, perNode, perTask, held, dependent], "compute", c4);
    expect(d.launches.map((l) => [l.jobs, l.count, l.allOrNothing])).toEqual([
      [group(r, array).jobIds, 10, false],
      [[perNode], 2, true],
      [[perTask], 2, true],
    ]);
    expect(d.skipped.filter((s) => "job" in s && s.code === "BLOCKED")).toHaveLength(2);
  });

  it("the safety net: an idle node Slurm will not use for a job NowScale misread stops covering it", async () => {
    // Prepare: the catalog says g1big has 61 GiB, but the node that comes up has 16 GiB. The job pends in
    //   the empty queue first (Slurm would refuse it at submit with only the small node up).
    const id = await sbatch(["-p", "gpu", "--gpus-per-node=1", "--mem-per-gpu=48G", "--wrap", "sleep 120"]);
    await startNode("liar-1", "gpu", "g1big", { vcpus: 8, memoryMiB: 16384, gpus: 1 });
    await sleep(3000);
    // Act: plan as the scaler would two minutes on, with the job still pending beside the idle node.
    const r = await report();
    const catalog = { g1big: { vcpus: 8, memoryMiB: 62464, gpus: 1 } };
    const config = parseConfig({
      expansionBusyTime: 0,
      instanceTypes: catalog,
      queueConfigs: [{ queueName: "gpu", expansionNodeConfigs: [{ instanceType: "g1big", zone: "zone-a" }] }],
    });
    const decision = plan(config, reportToClusterState(r), Date.now() + 120_000);
    // Assess: Slurm keeps it pending; the node no longer covers it, nothing more of that type is launched.
    const g = group(r, id);
    // Slurm: BadConstraints (no node in the partition can run it now), which is demand, not a block.
    expect(g).toMatchObject({ state: "PENDING", reason: "BadConstraints" });
    expect(r.nodes.find((n) => n.name === "liar-1")).toMatchObject({ state: "IDLE", instanceType: "g1big" });
    expect(decision.mismatches).toEqual([
      expect.objectContaining({ node: "liar-1", job: id, slurmReason: g.reason }),
    ]);
    expect(decision.launches).toEqual([]);
    expect(decision.skipped).toContainEqual(
      expect.objectContaining({ job: id, code: "NOT_STARTED_BY_SLURM" }),
    );
    expect(decision.skipped).not.toContainEqual(
      expect.objectContaining({ node: "liar-1", code: "RESERVED_FOR_PENDING_JOB" }),
    );
    // And BadConstraints is not final: once a fitting node joins, Slurm runs the job there.
    await startNode("g1m61-2", "gpu", "g1m61", { vcpus: 8, memoryMiB: 62464, gpus: 1 });
    expect(await runningOn(id)).toEqual(["g1m61-2"]);
  });

  it("placeholder FUTURE nodes per queue × type: Slurm accepts -C and GPU jobs before any node exists", async () => {
    // Prepare: queue "mixed" launches a CPU type and a GPU type, with the queue feature ib.
    const config = parseConfig({
      expansionBusyTime: 0,
      instanceTypes: { c4m8: { vcpus: 4, memoryMiB: 8192 }, g4m16: { vcpus: 4, memoryMiB: 16384, gpus: 2 } },
      queueConfigs: [
        {
          queueName: "mixed",
          features: ["ib"],
          expansionNodeConfigs: [
            { instanceType: "c4m8", zone: "zone-a" },
            { instanceType: "g4m16", zone: "zone-a" },
            { instanceType: "g4m16", zone: "zone-b" },
          ],
        },
      ],
    });
    const client = new SlurmClient({ env: tb.env });
    expect(await refusal(["-p", "mixed", "-C", "type_g4m16", "--wrap", "true"])).toMatch(/Invalid feature/);
    // Act: create the placeholders (twice: creating one that exists is fine), then submit.
    for (const spec of placeholderSpecs(config)) {
      await client.createPlaceholder(spec);
      await client.createPlaceholder(spec);
    }
    const typed = await sbatch(["-p", "mixed", "-C", "type_g4m16&zone_zone-b", "--wrap", "sleep 60"]);
    const gpu = await sbatch(["-p", "mixed", "--gpus=1", "--wrap", "true"]);
    const ib = await sbatch(["-p", "mixed", "-C", "ib", "-c", "2", "--mem=1G", "--wrap", "true"]);
    // Slurm does not size-check against FUTURE nodes: a job no type fits is accepted too, and NowScale
    //   skips it as NO_FITTING_SHAPE (the reason is in the decision and a JOB_NOT_SERVED event).
    const huge = await sbatch(["-p", "mixed", "-c", "64", "--wrap", "true"]);
    // Assess: every job pends as demand; the placeholders are no capacity; the plan launches the types.
    const r = await report();
    for (const id of [typed, gpu, ib])
      expect(group(r, id)).toMatchObject({ state: "PENDING", reason: "ReqNodeNotAvail" });
    // sinfo does not list FUTURE nodes at all; scontrol does with --future.
    expect(r.nodes).toEqual([]);
    expect(r.unmanagedNodes).toEqual([]);
    for (const p of placeholderSpecs(config)) {
      expect(await slurm("scontrol", ["--future", "--oneliner", "show", "node", p.name])).toMatch(
        /State=FUTURE/,
      );
    }
    const decision = plan(config, reportToClusterState(r), Date.now());
    expect(decision.skipped).toContainEqual(expect.objectContaining({ job: huge, code: "NO_FITTING_SHAPE" }));
    expect(
      decision.launches.map((l) => [l.jobs, l.candidates.map((c) => `${c.instanceType}@${c.zone}`)]),
    ).toEqual(
      expect.arrayContaining([
        [[typed], ["g4m16@zone-b"]],
        [[gpu], ["g4m16@zone-a", "g4m16@zone-b"]],
        [[ib], ["c4m8@zone-a"]],
      ]),
    );
    // A node of the type joins: Slurm runs the constraint job there at its next pass.
    await addTestbedNode(tb, {
      name: "g4-zb",
      address: `192.168.247.${nextAddress++}`,
      cpus: 4,
      realMemoryMiB: Math.floor(16384 / 1.1),
      gpus: 2,
      features: placementFeatures({ queue: "mixed", instanceType: "g4m16", zone: "zone-b" }, ["ib"]),
    });
    started.push("g4-zb");
    expect(await runningOn(typed)).toEqual(["g4-zb"]);
    for (const spec of placeholderSpecs(config)) await client.deleteNode(spec.name);
  });
});
