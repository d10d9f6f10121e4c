import { describe, expect, it } from "vitest";
import { plan } from "../../../lib/core/index.js";
import { config, job, minutes, node, queue, state, T0 } from "./builders.js";

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
});
