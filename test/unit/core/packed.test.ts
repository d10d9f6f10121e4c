import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, iso, job, minutes, node, queue, SHAPES, state, T0 } from "./builders.js";

const NOW = T0 + minutes(10);
const total = (d: ReturnType<typeof plan>) => d.launches.reduce((n, l) => n + l.count, 0);

describe("packed policy", () => {
  it("places several small jobs on one node where thpc gives each its own", () => {
    // Four 1-CPU jobs; one 4-vCPU type.
    const jobs = [1, 2, 3, 4].map((i) => job({ id: `s${i}`, cpusPerNode: 1, memPerNodeMiB: 1024 }));
    const thpc = plan(config(), state(jobs), NOW);
    const packed = plan(config({ policy: "packed" }), state(jobs), NOW);
    expect(total(thpc)).toBe(4);
    expect(total(packed)).toBe(1);
    expect(packed.launches[0]?.jobs).toEqual(["s1", "s2", "s3", "s4"]);
  });

  it("fills the free room of idle and launching nodes before launching", () => {
    const jobs = [
      job({ id: "a", cpusPerNode: 2 }),
      job({ id: "b", cpusPerNode: 2 }),
      job({ id: "c", cpusPerNode: 2 }),
    ];
    const decision = plan(
      config({ policy: "packed" }),
      state(jobs, [node("l1", { state: "LAUNCHING" })]),
      NOW,
    );
    expect(total(decision)).toBe(1);
    expect(decision.launches[0]?.jobs).toEqual(["c"]);
  });

  it("weighs price: picks the type with the lowest price per used vCPU", () => {
    // 16 one-CPU tasks. c16m32 costs 0.8 (0.05/vCPU), c4m8 0.2 (0.05/vCPU), c8m16 0.4: tie on price → larger.
    // Make the big one cheaper per vCPU with an explicit catalog.
    const cfg = config(
      {
        policy: "packed",
        instanceTypes: {
          small: { vcpus: 4, memoryMiB: 8192, pricePerHour: 0.2 },
          big: { vcpus: 16, memoryMiB: 32768, pricePerHour: 0.64 },
        },
      },
      [
        queue({
          expansionNodeConfigs: [
            { zone: "z", instanceType: "small" },
            { zone: "z", instanceType: "big" },
          ],
        }),
      ],
    );
    const decision = plan(
      cfg,
      state([
        job({
          id: "t",
          nodes: undefined,
          cpusPerNode: undefined,
          memPerNodeMiB: undefined,
          gpusPerNode: undefined,
          tasks: 16,
          cpusPerTask: 1,
          memPerTaskMiB: 512,
        }),
      ]),
      NOW,
    );
    expect(decision.launches.map((l) => [l.instanceType, l.count])).toEqual([["big", 1]]);
  });

  it("without prices, picks the type that leaves the fewest spare vCPUs for the remaining demand", () => {
    const cfg = config(
      {
        policy: "packed",
        instanceTypes: { small: { vcpus: 4, memoryMiB: 8192 }, big: { vcpus: 16, memoryMiB: 32768 } },
      },
      [
        queue({
          expansionNodeConfigs: [
            { zone: "z", instanceType: "big" },
            { zone: "z", instanceType: "small" },
          ],
        }),
      ],
    );
    const decision = plan(cfg, state([job({ id: "x", cpusPerNode: 3, memPerNodeMiB: 1024 })]), NOW);
    expect(decision.launches.map((l) => l.instanceType)).toEqual(["small"]);
  });

  it("puts each node of a multi-node job on a different node", () => {
    const decision = plan(
      config({ policy: "packed" }),
      state([job({ id: "mpi", nodes: 3, cpusPerNode: 1, memPerNodeMiB: 512 })]),
      NOW,
    );
    expect(total(decision)).toBe(3);
  });

  it("applies the same rounds and caps as thpc", () => {
    const cfg = config({ policy: "packed" }, [queue({ scaleOutRatio: 50, maxSize: 6 })]);
    const jobs = Array.from({ length: 10 }, (_, i) => job({ id: `j${i}` }));
    const decision = plan(cfg, state(jobs), NOW);
    // 10 four-CPU jobs need 10 nodes, maxSize 6 admits 6, a 50 % round launches 3.
    expect(total(decision)).toBe(3);
    expect(decision.skipped.filter((s) => s.code === "QUEUE_AT_MAX_SIZE")).toHaveLength(4);
    expect(decision.skipped.filter((s) => s.code === "DEFERRED_BY_SCALE_OUT_RATIO")).toHaveLength(3);
  });

  it("a 32-task job beside a 1-task job: one 32-vCPU node and one 2-vCPU node, as thpc", () => {
    // Prepare: 2- to 32-vCPU types at the same price per vCPU. Sizing by the whole queue's 33 CPUs
    //   would pick 17 two-vCPU nodes (the cheapest way to hold 33 CPUs); each job's own best fit is
    //   one 32-vCPU node and one 2-vCPU node.
    const types = ["c2m4", "c4m8", "c8m16", "c16m32", "c32m64"];
    const cfg = config(
      {
        policy: "packed",
        instanceTypes: { ...SHAPES, c32m64: { vcpus: 32, memoryMiB: 65536, gpus: 0, pricePerHour: 1.6 } },
      },
      [queue({ expansionNodeConfigs: types.map((instanceType) => ({ zone: "z1", instanceType })) })],
    );
    const tasks = (id: string, n: number) =>
      job({
        id,
        nodes: undefined,
        cpusPerNode: undefined,
        memPerNodeMiB: undefined,
        gpusPerNode: undefined,
        tasks: n,
        cpusPerTask: 1,
        memPerTaskMiB: 1024,
      });
    const jobs = [tasks("big", 32), tasks("one", 1)];

    // Act
    const packed = plan(cfg, state(jobs), NOW);
    const thpc = plan({ ...cfg, policy: "thpc" }, state(jobs), NOW);

    // Assess
    expect(packed.launches.map((l) => [l.instanceType, l.count])).toEqual([
      ["c32m64", 1],
      ["c2m4", 1],
    ]);
    expect(total(packed)).toBe(total(thpc));
  });

  it("never launches more instances, or a dearer set, than thpc for the same demand", () => {
    // Prepare: mixed shapes, seeded: one-node jobs of 1-16 CPUs and task jobs of 1-70 tasks, with a
    //   few idle nodes of random types whose holes packing may spread jobs over.
    const types = Object.keys(SHAPES).filter((t) => !t.startsWith("g"));
    const cfg = config({ policy: "packed" }, [
      queue({ expansionNodeConfigs: types.map((instanceType) => ({ zone: "z1", instanceType })) }),
    ]);
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const jobs = Array.from({ length: 1 + rand(12) }, (_, i) =>
        rand(2) === 0
          ? job({ id: `n${i}`, cpusPerNode: 1 + rand(16), memPerNodeMiB: 512 * (1 + rand(8)) })
          : job({
              id: `t${i}`,
              nodes: undefined,
              cpusPerNode: undefined,
              memPerNodeMiB: undefined,
              gpusPerNode: undefined,
              tasks: 1 + rand(70),
              cpusPerTask: 1,
              memPerTaskMiB: 1024,
            }),
      );
      const nodes = Array.from({ length: rand(4) }, (_, i) =>
        node(`idle${i}`, { state: "IDLE", instanceType: types[rand(types.length)] as string }),
      );

      // Act
      const packed = plan(cfg, state(jobs, nodes), NOW);
      const thpc = plan({ ...cfg, policy: "thpc" }, state(jobs, nodes), NOW);

      // Assess
      const price = (d: ReturnType<typeof plan>) =>
        d.launches.reduce(
          (sum, l) => sum + l.count * (SHAPES[l.instanceType as keyof typeof SHAPES]?.pricePerHour ?? 0),
          0,
        );
      expect(total(packed)).toBeLessThanOrEqual(total(thpc));
      expect(price(packed)).toBeLessThanOrEqual(price(thpc) + 1e-9);
    }
  });

  it("a task job's full nodes are one run: the node after them, with the free vCPUs, is the one a later job shares", () => {
    // Prepare: 10 one-CPU tasks on c4m8 (4 vCPUs): two full nodes and a third with 2 tasks; a 2-CPU job
    //   fits the third node's free vCPUs. Cycle caps of 2 and 3 nodes tell where that job starts.
    const tasks = job({
      id: "t",
      nodes: undefined,
      cpusPerNode: undefined,
      memPerNodeMiB: undefined,
      gpusPerNode: undefined,
      tasks: 10,
      cpusPerTask: 1,
      memPerTaskMiB: 1024,
    });
    const jobs = [tasks, job({ id: "s", cpusPerNode: 2, memPerNodeMiB: 2048, submittedAt: iso(T0 + 1000) })];
    const capped = (maxNodesPerCycle: number) =>
      plan(config({ policy: "packed" }, [queue({ maxNodesPerCycle })]), state(jobs), NOW);

    // Act
    const two = capped(2);
    const three = capped(3);

    // Assess: three nodes in all; with two launched, s (on the third) waits; with three, nothing does.
    expect(total(three)).toBe(3);
    expect(three.launches.flatMap((l) => l.jobs).sort()).toEqual(["s", "t"]);
    expect(three.skipped.filter((s) => s.code === "CYCLE_CAP_REACHED")).toEqual([]);
    expect(total(two)).toBe(2);
    expect(two.skipped.filter((s) => s.code === "CYCLE_CAP_REACHED")).toEqual([
      expect.objectContaining({ job: "s" }),
    ]);
  });

  it("jobs of one request, one constrained to every entry's type, each keep their own existing nodes", () => {
    // Prepare: an idle c8m16 left from an earlier entry list; the queue launches c4m8 only. c, the
    //   older job, asks -C type_c4m8 (every entry meets it, so its view is the queue's whole view) and
    //   may not use the c8m16; p, the same request without a constraint, may, and x (1 CPU) shares it
    //   with p: one node in all where thpc (and a packing that gave p c's choice) needs two.
    const jobs = [
      job({ id: "c", cpusPerNode: 4, memPerNodeMiB: 4096, constraint: "type_c4m8" }),
      job({ id: "p", cpusPerNode: 4, memPerNodeMiB: 4096, submittedAt: iso(T0 + 1000) }),
      job({ id: "x", cpusPerNode: 1, memPerNodeMiB: 1024, submittedAt: iso(T0 + 2000) }),
    ];
    const idle = node("old1", { instanceType: "c8m16", idleSince: iso(NOW - 30_000) });

    // Act
    const decision = plan(config({ policy: "packed" }), state(jobs, [idle]), NOW);

    // Assess
    expect(decision.launches.map((l) => [l.instanceType, l.count, l.jobs])).toEqual([["c4m8", 1, ["c"]]]);
    for (const id of ["p", "x"])
      expect(decision.skipped).toContainEqual(
        expect.objectContaining({ job: id, code: "COVERED_BY_EXISTING_NODES" }),
      );
  });

  describe("existing nodes and the rest of a job (thpc's rules)", () => {
    // One queue of c4m8 (4 vCPUs, 0.2/h) and c16m32 (16 vCPUs, 0.8/h); one-CPU tasks of 512 MiB.
    const cfg = () =>
      config({ policy: "packed" }, [
        queue({
          expansionNodeConfigs: [
            { zone: "z1", instanceType: "c4m8" },
            { zone: "z1", instanceType: "c16m32" },
          ],
        }),
      ]);
    const tasks = (id: string, n: number) =>
      job({
        id,
        nodes: undefined,
        cpusPerNode: undefined,
        memPerNodeMiB: undefined,
        gpusPerNode: undefined,
        tasks: n,
        cpusPerTask: 1,
        memPerTaskMiB: 512,
      });

    it("leaves an idle node alone when using it saves no new node", () => {
      // Prepare: 14 tasks; alone they need one c16m32. An idle c4m8, idle past shrinkIdleTime, would take
      //   4 of them, but the other 10 still need one c16m32: the idle node saves nothing.
      const jobs = [tasks("j", 14)];
      const nodes = [node("idle4", { idleSince: iso(NOW - minutes(10)) })];

      // Act
      const decision = plan(cfg(), state(jobs, nodes), NOW);

      // Assess: one c16m32 for the job, and the idle node is not reserved for it, so it shrinks.
      expect(decision.launches.map((l) => [l.instanceType, l.count, l.jobs])).toEqual([["c16m32", 1, ["j"]]]);
      expect(decision.shrinks).toEqual([expect.objectContaining({ node: "idle4", action: "drain" })]);
    });
  });
});
