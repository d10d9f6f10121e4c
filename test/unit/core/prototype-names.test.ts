import { describe, expect, it } from "vitest";
import { ownValue, parseConfig, plan, ValidationError } from "../../../lib/core/index.js";
import { kindOfCode } from "../../../lib/providers/shared/error-codes.js";
import { config, job, minutes, node, queue, state, T0 } from "./builders.js";

/** Names every JavaScript object answers to: as user-chosen names they must be nothing special. */
const MEMBER_NAMES = [
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "prototype",
] as const;

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseConfig(input);
  } catch (error) {
    if (error instanceof ValidationError) return [...error.issues];
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("names that are members of JavaScript objects", () => {
  it.each(MEMBER_NAMES)("refuses the unknown instance type %s, naming the field", (name) => {
    // Prepare: a shipped catalog, which has no such type.
    const input = {
      catalogs: ["aws"],
      queueConfigs: [{ queueName: "compute", expansionNodeConfigs: [{ zone: "z1", instanceType: name }] }],
    };
    // Act
    const issues = issuesOf(input);
    // Assess
    expect(issues).toEqual([
      {
        path: "queueConfigs[0].expansionNodeConfigs[0].instanceType",
        message: expect.stringContaining(`unknown instance type "${name}"`),
      },
    ]);
  });

  it("accepts an instance type named constructor that the config defines, with its own shape", () => {
    // Prepare
    const input = {
      instanceTypes: { constructor: { vcpus: 8, memoryMiB: 16384 } },
      queueConfigs: [
        { queueName: "toString", expansionNodeConfigs: [{ zone: "valueOf", instanceType: "constructor" }] },
      ],
    };
    // Act
    const resolved = parseConfig(input);
    // Assess
    expect(resolved.queues[0]?.entries[0]?.shape).toEqual({ vcpus: 8, memoryMiB: 16384, gpus: 0 });
    expect(resolved.queueByName.get("toString")?.queueName).toBe("toString");
    expect(ownValue(resolved.catalog, "hasOwnProperty")).toBeUndefined();
  });

  it("does not count a reported node of type constructor as supply for a pending job", () => {
    // Prepare: an idle node whose reported type is unknown, and a job that waits for a c4m8.
    const cfg = config({}, [queue({ maxSize: 10 })]);
    const current = state(
      [job({ id: "j1", cpusPerNode: 4, memPerNodeMiB: 4096 })],
      [node("odd-1", { instanceType: "constructor" })],
    );
    // Act
    const decision = plan(cfg, current, T0 + minutes(10));
    // Assess: the job gets its own node (the unknown node is no shape at all, not Object's).
    expect(decision.launches.map((l) => [l.instanceType, l.count])).toEqual([["c4m8", 1]]);
  });

  it("does not take a cloud error code named like an object member for a known code", () => {
    // Prepare
    const table = { exact: { InsufficientInstanceCapacity: "InsufficientCapacity" as const }, prefixes: [] };
    // Act / Assess
    for (const name of MEMBER_NAMES) expect(kindOfCode(name, table)).toBeUndefined();
    expect(kindOfCode("InsufficientInstanceCapacity", table)).toBe("InsufficientCapacity");
  });

  it("ownValue sees own entries only", () => {
    const record: Record<string, number> = { compute: 1, constructor: 2 };
    expect(ownValue(record, "compute")).toBe(1);
    expect(ownValue(record, "constructor")).toBe(2);
    expect(ownValue(record, "toString")).toBeUndefined();
    expect(ownValue(undefined, "compute")).toBeUndefined();
  });
});
