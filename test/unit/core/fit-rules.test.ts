import { describe, expect, it } from "vitest";
import {
  bestFit,
  compareLayouts,
  describeSlice,
  layoutOn,
  type Slice,
  slicesOf,
  slicesPerNode,
} from "../../../lib/core/fit.js";
import { parseConfig } from "../../../lib/core/index.js";
import { countSuffix, jobSkip } from "../../../lib/core/plan-terms.js";
import { CopyStarts, listNames } from "../../../lib/core/policy.js";
import { roundSize } from "../../../lib/core/rounds.js";

/**
 * The arithmetic under THPC's matching and rounds, checked at its edges: what fits a node (each of CPU,
 * memory and GPUs exactly at the limit), how many tasks share one, THPC's order of layouts, the ceiling
 * in the round size, and the bookkeeping of where each copy of a job starts. Expected values by hand.
 */

const slice = (cpus: number, memMiB: number, gpus = 0): Slice => ({ cpus, memMiB, gpus });
const shape = (vcpus: number, memoryMiB: number, gpus = 0) => ({ vcpus, memoryMiB, gpus });

function queueOf(types: Record<string, { vcpus: number; memoryMiB: number; gpus?: number }>) {
  const q = parseConfig({
    instanceTypes: types,
    queueConfigs: [
      {
        queueName: "q",
        scaleUpMemRatio: 1,
        expansionNodeConfigs: Object.keys(types).map((instanceType) => ({ zone: "z", instanceType })),
      },
    ],
  }).queues[0];
  if (!q) throw new Error("no queue");
  return q;
}
const chosen = (fit: ReturnType<typeof bestFit>) => fit?.group.entries[0]?.instanceType;

describe("slicesOf", () => {
  it("a node job is one distinct slice per node; its memory is inflated by scaleUpMemRatio and rounded up", () => {
    // 4096 × 1.1 = 4505.6 → 4506 MiB.
    expect(
      slicesOf({ kind: "nodes", nodes: 3, cpusPerNode: 2, memPerNodeMiB: 4096, gpusPerNode: 1 }, 1.1),
    ).toEqual({ slice: slice(2, 4506, 1), units: 3, distinct: true });
  });

  it("a task job is one shareable slice per task", () => {
    expect(
      slicesOf({ kind: "tasks", tasks: 5, cpusPerTask: 1, memPerTaskMiB: 1000, gpusPerTask: 2 }, 1.5),
    ).toEqual({ slice: slice(1, 1500, 2), units: 5, distinct: false });
  });
});

describe("slicesPerNode: what fits one node", () => {
  it("a node slice fits when each of CPUs, memory and GPUs is at most the shape's (equal fits)", () => {
    const s = shape(4, 8192, 1);
    expect(slicesPerNode(slice(4, 8192, 1), s, true)).toBe(1);
    expect(slicesPerNode(slice(5, 8192, 1), s, true)).toBe(0);
    expect(slicesPerNode(slice(4, 8193, 1), s, true)).toBe(0);
    expect(slicesPerNode(slice(4, 8192, 2), s, true)).toBe(0);
  });

  it("tasks per node: the least of CPUs, memory and GPUs allow", () => {
    // 8 vCPU / 16384 MiB / 4 GPU. One-CPU tasks: by CPU 8.
    const s = shape(8, 16384, 4);
    expect(slicesPerNode(slice(1, 0, 0), s, false)).toBe(8);
    expect(slicesPerNode(slice(3, 0, 0), s, false)).toBe(2); // floor(8 / 3)
    expect(slicesPerNode(slice(1, 5000, 0), s, false)).toBe(3); // floor(16384 / 5000)
    expect(slicesPerNode(slice(1, 1024, 3), s, false)).toBe(1); // floor(4 / 3)
    expect(slicesPerNode(slice(2, 2048, 1), s, false)).toBe(4); // CPU 4, memory 8, GPU 4
  });

  it("tasks without GPUs fit a shape without GPUs", () => {
    expect(slicesPerNode(slice(2, 1024, 0), shape(4, 8192, 0), false)).toBe(2);
  });
});

describe("layoutOn and compareLayouts", () => {
  it("lays units on fresh nodes and sums what is left over all of them", () => {
    // 10 one-CPU 1024 MiB tasks on 4 / 8192: 4 per node → 3 nodes; 12 − 10 = 2 vCPU, 24576 − 10240 MiB.
    expect(layoutOn(slice(1, 1024), 10, false, shape(4, 8192))).toEqual({
      nodes: 3,
      spareCpus: 2,
      spareMemMiB: 14336,
    });
    expect(layoutOn(slice(8, 1024), 1, true, shape(4, 8192))).toBeNull();
  });

  it("orders layouts by spare vCPUs, then spare memory, then nodes", () => {
    const a = { nodes: 2, spareCpus: 1, spareMemMiB: 100 };
    expect(compareLayouts(a, { nodes: 1, spareCpus: 2, spareMemMiB: 0 })).toBeLessThan(0);
    expect(compareLayouts(a, { nodes: 1, spareCpus: 1, spareMemMiB: 200 })).toBeLessThan(0);
    expect(compareLayouts(a, { nodes: 3, spareCpus: 1, spareMemMiB: 100 })).toBeLessThan(0);
    expect(compareLayouts(a, { nodes: 1, spareCpus: 1, spareMemMiB: 100 })).toBeGreaterThan(0);
    expect(compareLayouts(a, { ...a })).toBe(0);
  });
});

describe("bestFit: THPC's choice of shape", () => {
  it("on a full tie keeps the shape listed first", () => {
    // THPC weighs vCPUs and memory only: one GPU and two GPUs of the same 4 vCPU / 8192 MiB tie for a
    // one-GPU job, and the entry listed first wins, whichever it is.
    const oneFirst = queueOf({ g1: shape(4, 8192, 1), g2: shape(4, 8192, 2) });
    const twoFirst = queueOf({ g2: shape(4, 8192, 2), g1: shape(4, 8192, 1) });
    expect(chosen(bestFit(oneFirst, slice(2, 1024, 1), 1, true))).toBe("g1");
    expect(chosen(bestFit(twoFirst, slice(2, 1024, 1), 1, true))).toBe("g2");
    // The same tie for a CPU job that only GPU shapes fit.
    expect(chosen(bestFit(twoFirst, slice(2, 1024), 1, true))).toBe("g2");
    // Types of one shape are one group: its entries in list order.
    const same = queueOf({ p: shape(4, 8192), r: shape(4, 8192) });
    expect(same.groups).toHaveLength(1);
    expect(bestFit(same, slice(1, 1), 1, true)?.group.entries.map((e) => e.instanceType)).toEqual(["p", "r"]);
  });

  it("a CPU job avoids a GPU shape that fits better, and takes one only when nothing else fits", () => {
    // g: 4 vCPU / 16384 / 1 GPU spares 2 vCPU; c: 8 vCPU / 16384 spares 6: c all the same.
    const q = queueOf({ g: shape(4, 16384, 1), c: shape(8, 16384) });
    expect(chosen(bestFit(q, slice(2, 2048), 1, true))).toBe("c");
    // A 9-CPU job fits neither.
    expect(bestFit(q, slice(9, 1024), 1, true)).toBeNull();
    const gpuOnlyFits = queueOf({ g: shape(16, 65536, 1), c: shape(8, 16384) });
    expect(chosen(bestFit(gpuOnlyFits, slice(12, 1024), 1, true))).toBe("g");
  });

  it("among GPU shapes a CPU job takes the best fitting one", () => {
    const q = queueOf({ g16: shape(16, 65536, 1), g8: shape(8, 32768, 1), c4: shape(4, 8192) });
    // 6 CPU: c4 does not fit; g8 spares 2 vCPU, g16 spares 10: g8.
    expect(chosen(bestFit(q, slice(6, 1024), 1, true))).toBe("g8");
  });

  it("a GPU job chooses among the shapes with enough GPUs by spare vCPUs", () => {
    const q = queueOf({ g2: shape(16, 65536, 2), g1: shape(8, 32768, 1), c: shape(4, 8192) });
    expect(chosen(bestFit(q, slice(4, 1024, 1), 1, true))).toBe("g1");
    expect(chosen(bestFit(q, slice(4, 1024, 2), 1, true))).toBe("g2");
  });
});

describe("describeSlice", () => {
  it("names GPUs only when the slice has some", () => {
    expect(describeSlice(slice(2, 1024))).toBe("2 CPU, 1024 MiB");
    expect(describeSlice(slice(2, 1024, 3))).toBe("2 CPU, 1024 MiB, 3 GPU");
  });
});

describe("roundSize: THPC's proportional rounds", () => {
  it("launches all the needed nodes at or below the threshold, a share above it", () => {
    // The design brief: N > threshold → ceil(N × ratio / 100), else N.
    expect(roundSize(20, 50, 20)).toBe(20);
    expect(roundSize(21, 50, 20)).toBe(11); // ceil(10.5)
    expect(roundSize(19, 50, 20)).toBe(19);
  });

  it("rounds the share up: one node at the smallest ratio, an exact share unchanged", () => {
    expect(roundSize(1, 1, 0)).toBe(1); // ceil(0.01)
    expect(roundSize(99, 1, 0)).toBe(1); // ceil(0.99)
    expect(roundSize(101, 1, 0)).toBe(2); // ceil(1.01)
    expect(roundSize(200, 50, 0)).toBe(100);
    expect(roundSize(3, 100, 0)).toBe(3);
  });

  it("needs nothing for nothing, and never a negative round", () => {
    expect(roundSize(-3, 50, 0)).toBe(0);
    expect(roundSize(0, 50, 0)).toBe(0);
    expect(roundSize(0, 50, 10)).toBe(0);
  });
});

describe("CopyStarts: where each copy of a job starts among the new nodes", () => {
  it("a run with a fixed stride: size, first, the positions below a limit and the copies beyond", () => {
    // Copies of a 2-node job at positions 4, 6, 8, 10.
    const starts = new CopyStarts();
    for (const p of [4, 6, 8, 10]) starts.add(p);
    const below: [number, number][] = [];
    starts.forEachBelow(9, (p, n) => below.push([p, n]));
    expect(starts.size).toBe(4);
    expect(starts.first).toBe(4);
    expect(below).toEqual([
      [4, 1],
      [6, 1],
      [8, 1],
    ]);
    expect(starts.atOrAbove(9)).toBe(1);
    expect(starts.atOrAbove(8)).toBe(2);
    expect(starts.atOrAbove(4)).toBe(4);
    expect(starts.atOrAbove(0)).toBe(4);
    expect(starts.atOrAbove(11)).toBe(0);
  });

  it("a break in the stride starts a new run, and later runs keep their own stride", () => {
    // 0, 1, 2 (stride 1); 10, 13, 16 (stride 3); 30.
    const starts = new CopyStarts();
    for (const p of [0, 1, 2, 10, 13, 16, 30]) starts.add(p);
    const all: [number, number][] = [];
    starts.forEachBelow(100, (p, n) => all.push([p, n]));
    expect(all).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
      [10, 1],
      [13, 1],
      [16, 1],
      [30, 1],
    ]);
    expect(starts.size).toBe(7);
    expect(starts.first).toBe(0);
    expect(starts.atOrAbove(2)).toBe(5);
    expect(starts.atOrAbove(11)).toBe(3);
    expect(starts.atOrAbove(14)).toBe(2);
    expect(starts.atOrAbove(31)).toBe(0);
  });

  it("copies that start on one node (packed) are counted there together", () => {
    // Three copies on new node 5, two on new node 7.
    const starts = new CopyStarts();
    for (const p of [5, 5, 5, 7, 7]) starts.add(p);
    const below: [number, number][] = [];
    starts.forEachBelow(7, (p, n) => below.push([p, n]));
    expect(starts.size).toBe(5);
    expect(below.reduce((n, [, c]) => n + c, 0)).toBe(3);
    expect(below.every(([p]) => p === 5)).toBe(true);
    expect(starts.atOrAbove(6)).toBe(2);
    expect(starts.atOrAbove(5)).toBe(5);
  });

  it("a later position below the run's start opens a new run, and first is the smallest", () => {
    const starts = new CopyStarts();
    for (const p of [8, 3, 4]) starts.add(p);
    expect(starts.first).toBe(3);
    expect(starts.size).toBe(3);
    expect(starts.atOrAbove(5)).toBe(1);
    const below: number[] = [];
    starts.forEachBelow(5, (p) => below.push(p));
    expect(below.sort()).toEqual([3, 4]);
  });

  it("an empty one has no copies and starts nowhere", () => {
    const starts = new CopyStarts();
    let calls = 0;
    starts.forEachBelow(10, () => calls++);
    expect([starts.size, starts.first, starts.atOrAbove(0), calls]).toEqual([
      0,
      Number.POSITIVE_INFINITY,
      0,
      0,
    ]);
  });
});

describe("skip texts", () => {
  it("lists at most five names, then how many more", () => {
    expect(listNames(["a", "b", "c", "d", "e"])).toBe("a, b, c, d, e");
    expect(listNames(["a", "b", "c", "d", "e", "f", "g"])).toBe("a, b, c, d, e and 2 more");
  });

  it("a job skip names its copies, and says so in its reason when there are several", () => {
    const job = {
      id: "17",
      queue: "q",
      state: "PENDING" as const,
      submittedAt: 0,
      count: 4,
      request: { kind: "nodes" as const, nodes: 1, cpusPerNode: 1, memPerNodeMiB: 0, gpusPerNode: 0 },
    };
    expect(jobSkip(job, "BLOCKED", "held")).toEqual({
      job: "17",
      queue: "q",
      code: "BLOCKED",
      reason: "held (4 identical jobs)",
      copies: 4,
    });
    expect(jobSkip(job, "BLOCKED", "held", 1)).toMatchObject({ reason: "held", copies: 1 });
    expect(countSuffix(1)).toBe("");
  });
});
