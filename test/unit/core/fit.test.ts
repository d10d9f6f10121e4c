import { describe, expect, it } from "vitest";
import { RequestIds, type Slice } from "../../../lib/core/fit.js";
import { bestFit, parseConfig, roundSize, slicesOf } from "../../../lib/core/index.js";
import type { JobRequest } from "../../../lib/core/model.js";

function queueWith(types: Record<string, { vcpus: number; memoryMiB: number; gpus?: number }>) {
  const config = parseConfig({
    instanceTypes: types,
    queueConfigs: [
      {
        queueName: "q",
        scaleUpMemRatio: 1,
        expansionNodeConfigs: Object.keys(types).map((instanceType) => ({ zone: "z", instanceType })),
      },
    ],
  });
  const q = config.queues[0];
  if (!q) throw new Error("no queue");
  return q;
}

const GB = 1024;

describe("THPC best fit", () => {
  it("seed example a: 4 CPU / 4 GB picks A (4/16) over B (8/8): CPU first", () => {
    const q = queueWith({ A: { vcpus: 4, memoryMiB: 16 * GB }, B: { vcpus: 8, memoryMiB: 8 * GB } });
    const { slice, units, distinct } = slicesOf(
      { kind: "nodes", nodes: 1, cpusPerNode: 4, memPerNodeMiB: 4 * GB, gpusPerNode: 0 },
      1,
    );
    expect(bestFit(q, slice, units, distinct)?.group.entries[0]?.instanceType).toBe("A");
  });

  it("seed example b: 4 CPU / 4 GB picks B (4/8) over A (4/16): then memory", () => {
    const q = queueWith({ A: { vcpus: 4, memoryMiB: 16 * GB }, B: { vcpus: 4, memoryMiB: 8 * GB } });
    const { slice, units, distinct } = slicesOf(
      { kind: "nodes", nodes: 1, cpusPerNode: 4, memPerNodeMiB: 4 * GB, gpusPerNode: 0 },
      1,
    );
    expect(bestFit(q, slice, units, distinct)?.group.entries[0]?.instanceType).toBe("B");
  });

  it("counts GPUs in the fit and finds nothing when no type has enough", () => {
    const q = queueWith({
      cpu: { vcpus: 8, memoryMiB: 16 * GB },
      gpu: { vcpus: 8, memoryMiB: 32 * GB, gpus: 1 },
    });
    const one = slicesOf({ kind: "nodes", nodes: 1, cpusPerNode: 2, memPerNodeMiB: GB, gpusPerNode: 1 }, 1);
    const two = slicesOf({ kind: "nodes", nodes: 1, cpusPerNode: 2, memPerNodeMiB: GB, gpusPerNode: 2 }, 1);
    expect(bestFit(q, one.slice, one.units, one.distinct)?.group.entries[0]?.instanceType).toBe("gpu");
    expect(bestFit(q, two.slice, two.units, two.distinct)).toBeNull();
  });

  it("inflates memory by scaleUpMemRatio before matching (4 GB is about 3.6 GB usable)", () => {
    const q = queueWith({ small: { vcpus: 4, memoryMiB: 4 * GB }, big: { vcpus: 4, memoryMiB: 8 * GB } });
    const raw = slicesOf(
      { kind: "nodes", nodes: 1, cpusPerNode: 4, memPerNodeMiB: 4 * GB, gpusPerNode: 0 },
      1,
    );
    const inflated = slicesOf(
      { kind: "nodes", nodes: 1, cpusPerNode: 4, memPerNodeMiB: 4 * GB, gpusPerNode: 0 },
      1.1,
    );
    expect(bestFit(q, raw.slice, raw.units, raw.distinct)?.group.entries[0]?.instanceType).toBe("small");
    expect(
      bestFit(q, inflated.slice, inflated.units, inflated.distinct)?.group.entries[0]?.instanceType,
    ).toBe("big");
  });

  it("minimises spare vCPUs over all of a task job's nodes", () => {
    // 12 one-CPU tasks: 8-vCPU nodes need 2 (4 spare), 4-vCPU nodes need 3 (0 spare), 16-vCPU need 1 (4 spare).
    const q = queueWith({
      c8: { vcpus: 8, memoryMiB: 16 * GB },
      c4: { vcpus: 4, memoryMiB: 8 * GB },
      c16: { vcpus: 16, memoryMiB: 32 * GB },
    });
    const { slice, units, distinct } = slicesOf(
      { kind: "tasks", tasks: 12, cpusPerTask: 1, memPerTaskMiB: 0, gpusPerTask: 0 },
      1,
    );
    const fit = bestFit(q, slice, units, distinct);
    expect(fit?.group.entries[0]?.instanceType).toBe("c4");
    expect(fit?.layout).toEqual({ nodes: 3, spareCpus: 0, spareMemMiB: 24 * GB });
  });

  it("a multi-node job needs one node per requested node", () => {
    const q = queueWith({ c8: { vcpus: 8, memoryMiB: 16 * GB } });
    const { slice, units, distinct } = slicesOf(
      { kind: "nodes", nodes: 3, cpusPerNode: 2, memPerNodeMiB: GB, gpusPerNode: 0 },
      1,
    );
    expect(bestFit(q, slice, units, distinct)?.layout).toEqual({
      nodes: 3,
      spareCpus: 18,
      spareMemMiB: 45 * GB,
    });
  });
});

describe("proportional rounds", () => {
  function rounds(total: number, ratio: number, threshold: number): number[] {
    const out: number[] = [];
    let left = total;
    while (left > 0) {
      const n = roundSize(left, ratio, threshold);
      out.push(n);
      left -= n;
    }
    return out;
  }

  it("ratio 50, threshold 0, 100 needed → 50, 25, 13, 6, 3, 2, 1", () => {
    expect(rounds(100, 50, 0)).toEqual([50, 25, 13, 6, 3, 2, 1]);
  });

  it("ratio 50, threshold 20, 100 needed → 50, 25, 13, 12", () => {
    expect(rounds(100, 50, 20)).toEqual([50, 25, 13, 12]);
  });

  it("ratio 100 launches everything at once", () => {
    expect(rounds(37, 100, 0)).toEqual([37]);
  });
});

describe("RequestIds", () => {
  it("gives equal requests one id and every different request its own, packed or not", () => {
    // Prepare: node and task slices of the same numbers, neighbours in every field, and numbers that do
    // not pack into the integer keys (a fraction, 5000 GPUs, huge units) and so take the string fallback.
    const ids = new RequestIds();
    const requests: [Slice, number, boolean][] = [
      [{ cpus: 4, memMiB: 4096, gpus: 0 }, 2, true],
      [{ cpus: 4, memMiB: 4096, gpus: 0 }, 2, false],
      [{ cpus: 4, memMiB: 4096, gpus: 0 }, 3, true],
      [{ cpus: 5, memMiB: 4096, gpus: 0 }, 2, true],
      [{ cpus: 4, memMiB: 4097, gpus: 0 }, 2, true],
      [{ cpus: 4, memMiB: 4096, gpus: 1 }, 2, true],
      [{ cpus: 0, memMiB: 4096, gpus: 0 }, 3, true],
      [{ cpus: 4095, memMiB: 0, gpus: 1023 }, 1, false],
      // Would share packed keys with the next one if the packing took them.
      [{ cpus: 4096, memMiB: 0, gpus: 0 }, 1, false],
      [{ cpus: 0, memMiB: 0, gpus: 0 }, 2, false],
      [{ cpus: 1, memMiB: 0, gpus: 1024 }, 1, false],
      [{ cpus: 1, memMiB: 1, gpus: 0 }, 1, false],
      [{ cpus: 1.5, memMiB: 2048, gpus: 0 }, 1, false],
      [{ cpus: 1, memMiB: 2048, gpus: 5000 }, 1, false],
      [{ cpus: 1, memMiB: 2048, gpus: 0 }, 2 ** 45, false],
    ];

    // Act
    const first = requests.map(([slice, units, distinct]) => ids.id(slice, units, distinct));
    const again = requests.map(([slice, units, distinct]) => ids.id({ ...slice }, units, distinct));

    // Assess
    expect(again).toEqual(first);
    expect(new Set(first).size).toBe(requests.length);
  });
});

describe("RequestIds.of", () => {
  it("gives slicesOf of each request and its id, one shared object for equal requests", () => {
    // Prepare: a node request, a task request of the same numbers, a copy of the first, a memory that
    // the ratio rounds up (1000 × 1.5 = 1500, 1001 × 1.5 = 1501.5 → 1502), and one with GPUs.
    const ids = new RequestIds();
    const nodes: JobRequest = {
      kind: "nodes",
      nodes: 2,
      cpusPerNode: 4,
      memPerNodeMiB: 1000,
      gpusPerNode: 0,
    };
    const tasks: JobRequest = {
      kind: "tasks",
      tasks: 2,
      cpusPerTask: 4,
      memPerTaskMiB: 1000,
      gpusPerTask: 0,
    };
    const odd: JobRequest = { kind: "tasks", tasks: 2, cpusPerTask: 4, memPerTaskMiB: 1001, gpusPerTask: 0 };
    const gpu: JobRequest = { kind: "nodes", nodes: 1, cpusPerNode: 8, memPerNodeMiB: 0, gpusPerNode: 2 };

    // Act
    const [a, b, c, d, e] = [nodes, tasks, { ...nodes }, odd, gpu].map((r) => ids.of(r, 1.5));

    // Assess
    expect(a).toEqual({ id: ids.id(a?.slice as Slice, 2, true), ...slicesOf(nodes, 1.5) });
    expect(a?.slice).toEqual({ cpus: 4, memMiB: 1500, gpus: 0 });
    expect(b).toEqual({ id: ids.id(b?.slice as Slice, 2, false), ...slicesOf(tasks, 1.5) });
    expect(c).toBe(a);
    expect(d?.slice.memMiB).toBe(1502);
    expect(e).toEqual({ id: ids.id({ cpus: 8, memMiB: 0, gpus: 2 }, 1, true), ...slicesOf(gpu, 1.5) });
    expect(new Set([a?.id, b?.id, d?.id, e?.id]).size).toBe(4);
  });
});
