import { describe, expect, it } from "vitest";
import { parseConfig, ValidationError } from "../../../lib/core/index.js";
import { queue, SHAPES } from "./builders.js";

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseConfig(input);
  } catch (error) {
    if (error instanceof ValidationError) return [...error.issues];
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("config schema", () => {
  it("fills THPC's defaults", () => {
    // Prepare
    const input = {
      instanceTypes: SHAPES,
      queueConfigs: [{ queueName: "q", expansionNodeConfigs: [{ zone: "z", instanceType: "c4m8" }] }],
    };
    // Act
    const config = parseConfig(input);
    // Assess
    expect(config.expansionBusyTime).toBe(120);
    expect(config.shrinkIdleTime).toBe(300);
    expect(config.policy).toBe("thpc");
    const q = config.queues[0];
    expect(q).toMatchObject({
      minSize: 0,
      maxSize: 10,
      enableAutoExpansion: true,
      enableAutoShrink: true,
      desiredIdleNodeCapacity: 0,
      scaleOutRatio: 100,
      scaleOutNodeThreshold: 0,
      maxNodesPerCycle: 100,
      scaleUpMemRatio: 1.1,
    });
    expect(q?.entries[0]).toMatchObject({
      chargeType: "ON_DEMAND",
      index: 0,
      shape: { vcpus: 4, memoryMiB: 8192 },
    });
  });

  it("rejects unknown keys with their full path", () => {
    const issues = issuesOf({
      instanceTypes: SHAPES,
      queueConfigs: [{ ...queue(), scaleoutRatio: 50 }],
      colour: "red",
    });
    const paths = issues.map((i) => i.path);
    expect(paths).toContain("queueConfigs[0].scaleoutRatio");
    expect(paths).toContain("colour");
    expect(issues.find((i) => i.path === "colour")?.message).toMatch(/unknown key/);
  });

  it("names the key a mistyped one probably meant, at any depth, and nothing for a key far from all", () => {
    // Prepare: a missing letter, a wrong case, a typo inside an entry of an array and of a record
    const input = {
      shrinkIdleTme: 60,
      instanceTypes: { ...SHAPES, own: { vcpus: 2, memoryMiB: 4096, pricePerHr: 0.1 } },
      queueConfigs: [
        {
          ...queue(),
          scaleoutRatio: 50,
          expansionNodeConfigs: [{ zone: "z", instanceType: "c4m8", chargetype: "SPOT" }],
        },
      ],
      colour: "red",
    };
    // Act
    const issues = issuesOf(input);
    const message = (path: string) => issues.find((i) => i.path === path)?.message;
    // Assess
    expect(message("shrinkIdleTme")).toBe(
      'unknown key: did you mean "shrinkIdleTime"? (names are camelCase)',
    );
    expect(message("queueConfigs[0].scaleoutRatio")).toContain('did you mean "scaleOutRatio"?');
    expect(message("queueConfigs[0].expansionNodeConfigs[0].chargetype")).toContain(
      'did you mean "chargeType"?',
    );
    expect(message("instanceTypes.own.pricePerHr")).toContain('did you mean "pricePerHour"?');
    expect(message("colour")).toBe("unknown key: remove it or check its spelling (names are camelCase)");
  });

  it("suggests for the first 20 unknown keys only: a body of made-up keys costs no distance tables", () => {
    // Prepare: 25 near misses of shrinkIdleTime
    const input: Record<string, unknown> = { instanceTypes: SHAPES, queueConfigs: [queue()] };
    for (let i = 0; i < 25; i++) input[`shrinkIdleTim${String.fromCharCode(65 + i)}`] = 1;
    // Act
    const issues = issuesOf(input);
    // Assess
    expect(issues).toHaveLength(25);
    expect(issues.slice(0, 20).every((i) => i.message.includes('did you mean "shrinkIdleTime"?'))).toBe(true);
    expect(issues.slice(20).every((i) => i.message.startsWith("unknown key: remove it"))).toBe(true);
  });

  it.each([
    ["scaleOutRatio", 0, "must be at least 1"],
    ["scaleOutRatio", 101, "must be at most 100"],
    ["maxNodesPerCycle", 0, "must be at least 1"],
    ["maxNodesPerCycle", 101, "must be at most 100"],
    ["scaleOutRatio", 50.5, "whole number"],
    ["minSize", -1, "must be at least 0"],
    ["scaleUpMemRatio", 0.9, "must be at least 1"],
  ])("rejects %s = %s outside THPC's range", (field, value, message) => {
    const issues = issuesOf({ instanceTypes: SHAPES, queueConfigs: [queue({ [field]: value })] });
    expect(issues).toContainEqual({
      path: `queueConfigs[0].${field}`,
      message: expect.stringContaining(message),
    });
  });

  it("rejects minSize above maxSize and desiredIdleNodeCapacity above maxSize", () => {
    const issues = issuesOf({
      instanceTypes: SHAPES,
      queueConfigs: [queue({ minSize: 5, maxSize: 4, desiredIdleNodeCapacity: 9 })],
    });
    expect(issues.map((i) => i.path)).toEqual([
      "queueConfigs[0].minSize",
      "queueConfigs[0].desiredIdleNodeCapacity",
    ]);
  });

  it("names an instance type that no catalog has, and the fix", () => {
    const issues = issuesOf({
      instanceTypes: SHAPES,
      queueConfigs: [
        queue({
          expansionNodeConfigs: [
            { zone: "z", instanceType: "c4m8" },
            { zone: "z", instanceType: "x9.huge" },
          ],
        }),
      ],
    });
    expect(issues).toEqual([
      {
        path: "queueConfigs[0].expansionNodeConfigs[1].instanceType",
        message: expect.stringMatching(
          /unknown instance type "x9.huge": add it to instanceTypes or name a catalog/,
        ),
      },
    ]);
  });

  it("resolves types from a shipped catalog", () => {
    const config = parseConfig({
      catalogs: ["aws", "tencent", "alibaba"],
      queueConfigs: [
        queue({
          expansionNodeConfigs: [
            { zone: "us-east-1a", instanceType: "c5.xlarge" },
            { zone: "ap-guangzhou-4", instanceType: "SA2.2XLARGE16" },
            { zone: "cn-hangzhou-h", instanceType: "ecs.c7.2xlarge" },
          ],
        }),
      ],
    });
    expect(config.queues[0]?.entries.map((e) => e.shape.vcpus)).toEqual([4, 8, 8]);
    // The two 8-vCPU/16-GiB types form one fallback group, in index order.
    expect(config.queues[0]?.groups.map((g) => g.entries.map((e) => e.instanceType))).toEqual([
      ["c5.xlarge"],
      ["SA2.2XLARGE16", "ecs.c7.2xlarge"],
    ]);
  });

  it("takes a queue's own features, but not one posing as NowScale's queue, type or zone feature", () => {
    const issues = issuesOf({
      instanceTypes: SHAPES,
      queueConfigs: [queue({ features: ["ib", "type_c4m8", "a,b"] })],
    });
    expect(issues.map((i) => i.path)).toEqual(["queueConfigs[0].features[2]", "queueConfigs[0].features[1]"]);
  });

  it("rejects duplicate queue names and repeated entries", () => {
    const entry = { zone: "z", instanceType: "c4m8" };
    const issues = issuesOf({
      instanceTypes: SHAPES,
      queueConfigs: [queue(), queue({ expansionNodeConfigs: [entry, entry] })],
    });
    expect(issues.map((i) => i.path)).toEqual([
      "queueConfigs[1].expansionNodeConfigs[1]",
      "queueConfigs[1].queueName",
    ]);
  });

  it.each(["a;rm -rf /", "$(id)", "-leading", "a b", "q`x`", "x\nPartitionName=evil", ""])(
    "rejects the hostile queue name %j",
    (name) => {
      const issues = issuesOf({ instanceTypes: SHAPES, queueConfigs: [queue({ queueName: name })] });
      expect(issues).toContainEqual({
        path: "queueConfigs[0].queueName",
        message: expect.stringMatching(/invalid name/),
      });
    },
  );

  it.each(["c5.xlarge;reboot", "$(x)", "a'b"])("rejects the hostile instance type %j", (type) => {
    const issues = issuesOf({
      instanceTypes: { [type]: { vcpus: 1, memoryMiB: 1 } },
      queueConfigs: [queue()],
    });
    expect(issues[0]?.message).toMatch(/invalid identifier/);
  });
});
