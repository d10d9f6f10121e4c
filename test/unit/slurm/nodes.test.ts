import { describe, expect, it } from "vitest";
import { SlurmParseError, SlurmUnavailableError } from "../../../scheduler-plugins/slurm/errors.js";
import { expandHostlist } from "../../../scheduler-plugins/slurm/hostlist.js";
import { parseKeyValueLine } from "../../../scheduler-plugins/slurm/keyvalue.js";
import {
  parseScontrolNodes,
  parseScontrolPartitions,
  parseSinfoJson,
} from "../../../scheduler-plugins/slurm/nodes.js";
import { gpusIn, parseMemMiB } from "../../../scheduler-plugins/slurm/units.js";
import { fixture } from "./fixtures.js";

describe("node readers on recorded output", () => {
  it("sinfo --json reads an idle dynamic node with its features, sizes and idle time", () => {
    // Act
    const { nodes, version } = parseSinfoJson(fixture("sinfo.json"));
    // Assess
    expect(version).toBe("22.05.8");
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({
      name: "c4-a",
      cpus: 4,
      cpusAllocated: 2,
      memoryMiB: 8000,
      memoryAllocatedMiB: 1000,
      features: ["q_compute", "type_c5.xlarge", "zone_zone-a"],
      partitions: ["compute"],
    });
    expect(nodes[0]?.flags).toContain("DYNAMIC_NORM");
  });

  it("sinfo --json and scontrol show node agree on a draining node", () => {
    const [fromJson] = parseSinfoJson(fixture("sinfo-draining.json")).nodes;
    const [fromText] = parseScontrolNodes(fixture("scontrol-nodes-draining.txt"));
    expect(fromJson?.state).toBe("MIXED");
    expect(fromJson?.flags).toContain("DRAIN");
    expect(fromText?.state).toBe("MIXED");
    expect(fromText?.flags).toContain("DRAIN");
    expect(fromText?.reason).toBe("nowscale: idle 300 s");
    expect(fromJson?.reason).toBe("nowscale: idle 300 s");
    expect(fromText?.features).toEqual(fromJson?.features);
    expect(fromText?.memoryAllocatedMiB).toBe(fromJson?.memoryAllocatedMiB);
  });

  it("sinfo --json reports an unreachable controller as such", () => {
    const text = JSON.stringify({ errors: [{ error: "Unspecified error", errno: -1 }], nodes: [] });
    expect(() => parseSinfoJson(text)).toThrow(SlurmUnavailableError);
  });

  it("scontrol show partition reads memory defaults, the state and which one is the default", () => {
    const partitions = parseScontrolPartitions(fixture("scontrol-partitions.txt"));
    expect(partitions).toEqual([
      { name: "compute", state: "UP", isDefault: true },
      { name: "gpu", defMemPerCpuMiB: 1000, state: "UP", isDefault: false },
    ]);
  });

  it("scontrol show node rejects a record without a state", () => {
    expect(() => parseScontrolNodes("NodeName=a CPUTot=4\n")).toThrow(SlurmParseError);
  });

  it("scontrol show node marks a not-responding node", () => {
    const [node] = parseScontrolNodes("NodeName=a State=IDLE* CPUTot=4 Features=x\n");
    expect(node?.flags).toContain("NOT_RESPONDING");
    expect(node?.state).toBe("IDLE");
  });
});

describe("small readers", () => {
  it("parseKeyValueLine keeps values with spaces and a reason containing '='", () => {
    const r = parseKeyValueLine("NodeName=a OS=Linux 6.1 #1 SMP State=IDLE Reason=bad x=y [root@t]");
    expect(r.get("OS")).toBe("Linux 6.1 #1 SMP");
    expect(r.get("State")).toBe("IDLE");
    expect(r.get("Reason")).toBe("bad x=y [root@t]");
  });

  it.each([
    ["c4-a", ["c4-a"]],
    ["node[01-03,7]", ["node01", "node02", "node03", "node7"]],
    ["a[1-2]-x,b", ["a1-x", "a2-x", "b"]],
    ["", []],
  ])("expandHostlist(%s)", (expr, names) => {
    expect(expandHostlist(expr)).toEqual(names);
  });

  it("expandHostlist refuses unbalanced brackets and huge ranges", () => {
    expect(() => expandHostlist("a[1-2")).toThrow(SlurmParseError);
    expect(() => expandHostlist("a[1-99999999]")).toThrow(SlurmParseError);
  });

  it.each([
    ["gres:gpu:2", 2],
    ["gres/gpu:a100:4", 4],
    ["gpu:2(S:0-1),gres:mps:100", 2],
    ["gpu", 1],
    ["", 0],
  ])("gpusIn(%s) = %i", (list, gpus) => {
    expect(gpusIn(list)).toBe(gpus);
  });

  it.each([
    ["2000M", 2000],
    ["4G", 4096],
    ["512", 512],
    ["UNLIMITED", undefined],
  ])("parseMemMiB(%s)", (text, mib) => {
    expect(parseMemMiB(text)).toBe(mib);
  });
});
