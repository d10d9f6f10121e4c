import { describe, expect, it } from "vitest";
import { parseConfig, shapeKey, ValidationError } from "../../../lib/core/index.js";
import { queue, SHAPES } from "./builders.js";

/**
 * The config's documented defaults and ranges (docs/plan.md "Config"), each at its limit and one past
 * it, with the exact message a user sees; and how entries become shape groups. Expected by hand.
 */

function issuesOf(input: unknown): string[] {
  try {
    parseConfig(input);
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  throw new Error("expected a ValidationError");
}
const withCluster = (over: Record<string, unknown>) => ({
  instanceTypes: SHAPES,
  queueConfigs: [queue()],
  ...over,
});
const withQueue = (over: Record<string, unknown>) => ({ instanceTypes: SHAPES, queueConfigs: [queue(over)] });

describe("config: cluster-level defaults and ranges", () => {
  it("fills the documented defaults", () => {
    const c = parseConfig({ instanceTypes: SHAPES, queueConfigs: [queue()] });
    expect({
      bootTimeout: c.bootTimeout,
      reservationTimeout: c.reservationTimeout,
      capacityFallback: c.capacityFallback,
      weighPrice: c.weighPrice,
      catalogs: c.catalogs,
    }).toEqual({
      bootTimeout: 900,
      reservationTimeout: 60,
      capacityFallback: "next-shape",
      weighPrice: true,
      catalogs: [],
    });
  });

  it.each([
    ["expansionBusyTime", 0, 86_400],
    ["shrinkIdleTime", 0, 604_800],
    ["bootTimeout", 60, 86_400],
    ["reservationTimeout", 15, 86_400],
  ])("%s: accepts %i to %i, and names the bound one past either end", (field, min, max) => {
    expect(() => parseConfig(withCluster({ [field]: min }))).not.toThrow();
    expect(() => parseConfig(withCluster({ [field]: max }))).not.toThrow();
    expect(issuesOf(withCluster({ [field]: min - 1 }))).toEqual([`${field}: must be at least ${min}`]);
    expect(issuesOf(withCluster({ [field]: max + 1 }))).toEqual([`${field}: must be at most ${max}`]);
    expect(issuesOf(withCluster({ [field]: min + 0.5 }))).toEqual([`${field}: expected a whole number`]);
    expect(issuesOf(withCluster({ [field]: "1" }))).toEqual([`${field}: expected a number`]);
  });

  it("needs at least one queue and at most 100", () => {
    expect(issuesOf({ instanceTypes: SHAPES, queueConfigs: [] })).toEqual([
      "queueConfigs: configure at least one queue",
    ]);
    const many = Array.from({ length: 101 }, (_, i) => queue({ queueName: `q${i}` }));
    expect(issuesOf({ instanceTypes: SHAPES, queueConfigs: many })).toHaveLength(1);
    const hundred = many.slice(0, 100);
    expect(parseConfig({ instanceTypes: SHAPES, queueConfigs: hundred }).queues).toHaveLength(100);
  });

  it("an instance type: GPUs default to 0; vCPUs, memory, GPUs and price within range", () => {
    const c = parseConfig({
      instanceTypes: { t: { vcpus: 4096, memoryMiB: 64 * 1024 * 1024, pricePerHour: 0 } },
      queueConfigs: [queue({ expansionNodeConfigs: [{ zone: "z", instanceType: "t" }] })],
    });
    expect(c.catalog.t).toEqual({ vcpus: 4096, memoryMiB: 67_108_864, gpus: 0, pricePerHour: 0 });
    const bad = issuesOf({
      instanceTypes: {
        a: { vcpus: 0, memoryMiB: 1 },
        b: { vcpus: 1, memoryMiB: 0, gpus: 65 },
        c: { vcpus: 4097, memoryMiB: 1, pricePerHour: -1 },
      },
      queueConfigs: [queue()],
    });
    expect(bad).toEqual(
      expect.arrayContaining([
        "instanceTypes.a.vcpus: must be at least 1",
        "instanceTypes.b.memoryMiB: must be at least 1",
        "instanceTypes.b.gpus: must be at most 64",
        "instanceTypes.c.vcpus: must be at most 4096",
        "instanceTypes.c.pricePerHour: must be at least 0",
      ]),
    );
  });
});

describe("config: queue ranges", () => {
  it.each([
    ["minSize", 0, 10_000],
    ["maxSize", 0, 10_000],
    ["scaleOutNodeThreshold", 0, 10_000],
    ["scaleOutRatio", 1, 100],
    ["maxNodesPerCycle", 1, 100],
  ])("%s: accepts %i to %i, and names the bound one past either end", (field, min, max) => {
    // maxSize 10000 and desiredIdleNodeCapacity 0 keep minSize's own rule out of the way.
    const q = (value: number) => withQueue({ maxSize: 10_000, [field]: value });
    expect(() => parseConfig(q(min))).not.toThrow();
    expect(() => parseConfig(q(max))).not.toThrow();
    expect(issuesOf(q(min - 1))).toContain(`queueConfigs[0].${field}: must be at least ${min}`);
    expect(issuesOf(q(max + 1))).toContain(`queueConfigs[0].${field}: must be at most ${max}`);
  });

  it("scaleUpMemRatio: 1 to 2", () => {
    expect(parseConfig(withQueue({ scaleUpMemRatio: 2 })).queues[0]?.scaleUpMemRatio).toBe(2);
    expect(issuesOf(withQueue({ scaleUpMemRatio: 2.01 }))).toEqual([
      "queueConfigs[0].scaleUpMemRatio: must be at most 2",
    ]);
    expect(issuesOf(withQueue({ scaleUpMemRatio: 0.99 }))).toEqual([
      "queueConfigs[0].scaleUpMemRatio: must be at least 1",
    ]);
  });

  it("minSize and desiredIdleNodeCapacity may equal maxSize, not exceed it, and the message gives both", () => {
    expect(() =>
      parseConfig(withQueue({ minSize: 4, maxSize: 4, desiredIdleNodeCapacity: 4 })),
    ).not.toThrow();
    expect(issuesOf(withQueue({ minSize: 5, maxSize: 4, desiredIdleNodeCapacity: 6 }))).toEqual([
      "queueConfigs[0].minSize: minSize (5) must not exceed maxSize (4)",
      "queueConfigs[0].desiredIdleNodeCapacity: desiredIdleNodeCapacity (6) must not exceed maxSize (4)",
    ]);
  });

  it("expansionNodeConfigs: 1 to 100 entries", () => {
    expect(issuesOf(withQueue({ expansionNodeConfigs: [] }))).toEqual([
      "queueConfigs[0].expansionNodeConfigs: list at least one {zone, instanceType} entry to launch from",
    ]);
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ zone: `z${i}`, instanceType: "c4m8" }));
    expect(parseConfig(withQueue({ expansionNodeConfigs: entries(100) })).queues[0]?.entries).toHaveLength(
      100,
    );
    expect(issuesOf(withQueue({ expansionNodeConfigs: entries(101) }))).toEqual([
      "queueConfigs[0].expansionNodeConfigs: at most 100 entries",
    ]);
  });

  it("features: at most 32, and the reserved prefixes are named", () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `f${i}`);
    expect(parseConfig(withQueue({ features: names(32) })).queues[0]?.features).toHaveLength(32);
    expect(issuesOf(withQueue({ features: names(33) }))).toEqual([
      "queueConfigs[0].features: at most 32 features",
    ]);
    expect(issuesOf(withQueue({ features: ["q_x", "zone_a"] }))).toEqual([
      `queueConfigs[0].features[0]: "q_" begins NowScale's own features (queue, type, zone): choose another name`,
      `queueConfigs[0].features[1]: "zone_" begins NowScale's own features (queue, type, zone): choose another name`,
    ]);
  });

  it("an entry repeats another only with the same type, zone, charge type and subnet", () => {
    const e = { zone: "z", instanceType: "c4m8" };
    expect(() =>
      parseConfig(
        withQueue({
          expansionNodeConfigs: [
            e,
            { ...e, chargeType: "SPOT" },
            { ...e, subnetId: "s-1" },
            { ...e, subnetId: "s-2" },
          ],
        }),
      ),
    ).not.toThrow();
    expect(issuesOf(withQueue({ expansionNodeConfigs: [e, { ...e, chargeType: "ON_DEMAND" }] }))).toEqual([
      "queueConfigs[0].expansionNodeConfigs[1]: repeats entry 0 (same instanceType, zone, chargeType and subnet): remove one",
    ]);
    expect(issuesOf({ instanceTypes: SHAPES, queueConfigs: [queue(), queue()] })).toEqual([
      'queueConfigs[1].queueName: "compute" is already used by queueConfigs[0]: queue names must be unique',
    ]);
  });
});

describe("config: resolution", () => {
  it("groups a queue's entries by shape, in order of each shape's first entry, indices kept", () => {
    const c = parseConfig({
      instanceTypes: { ...SHAPES, twin: { vcpus: 4, memoryMiB: 8192 } },
      queueConfigs: [
        queue({
          expansionNodeConfigs: [
            { zone: "z1", instanceType: "c8m16" },
            { zone: "z1", instanceType: "c4m8", chargeType: "SPOT" },
            { zone: "z2", instanceType: "twin", subnetId: "s-1", imageId: "img-1" },
          ],
        }),
      ],
    });
    const q = c.queues[0];
    expect(
      q?.groups.map((g) => [g.key, g.entries.map((e) => `${e.index}:${e.instanceType}@${e.zone}`)]),
    ).toEqual([
      ["8/16384/0", ["0:c8m16@z1"]],
      ["4/8192/0", ["1:c4m8@z1", "2:twin@z2"]],
    ]);
    expect(q?.entries[2]).toEqual({
      zone: "z2",
      instanceType: "twin",
      chargeType: "ON_DEMAND",
      subnetId: "s-1",
      imageId: "img-1",
      index: 2,
      shape: { vcpus: 4, memoryMiB: 8192, gpus: 0 },
    });
    expect(c.queueByName.get("compute")).toBe(q);
    expect(shapeKey({ vcpus: 4, memoryMiB: 16384, gpus: 1 })).toBe("4/16384/1");
  });

  it("an own instance type overrides a catalog's of the same name", () => {
    const c = parseConfig({
      catalogs: ["aws"],
      instanceTypes: { "c5.xlarge": { vcpus: 2, memoryMiB: 1024 } },
      queueConfigs: [queue({ expansionNodeConfigs: [{ zone: "z", instanceType: "c5.xlarge" }] })],
    });
    expect(c.queues[0]?.entries[0]?.shape).toEqual({ vcpus: 2, memoryMiB: 1024, gpus: 0 });
  });
});
