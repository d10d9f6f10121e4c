import { describe, expect, it } from "vitest";
import type { AttachNetworkInput } from "../../../lib/ports/attach-network.js";
import {
  judgeAttachNetwork,
  portRanges,
  type SeenNetwork,
  type SeenRule,
} from "../../../lib/providers/attach-network-rules.js";

/**
 * The verdicts of the Tencent and Alibaba attach network check (lib/providers/attach-network-rules.ts),
 * from what their adapters read: the rule order each cloud applies, the sources a rule may name, and
 * what is refused versus left to the user. The adapters' calls are exercised against the loopback
 * simulators in test/integration/control/attach-run-command.test.ts.
 */

const INPUT: AttachNetworkInput = {
  region: "ap-guangzhou",
  controllerAddress: "10.0.0.5",
  controllerPort: 6817,
  slurmdPort: 6818,
  masterInstanceId: "ins-master01",
  subnetIds: ["subnet-a", "subnet-b"],
  securityGroupIds: ["sg-compute"],
};

const tcp = (rule: Partial<SeenRule>): SeenRule => ({
  protocol: "tcp",
  fromPort: 6817,
  toPort: 6817,
  accept: true,
  ...rule,
});

function seen(overrides: Partial<SeenNetwork> = {}): SeenNetwork {
  return {
    cloud: "Tencent",
    master: {
      instanceId: "ins-master01",
      vpcId: "vpc-1",
      privateIps: ["10.0.0.5"],
      securityGroupIds: ["sg-master"],
    },
    subnets: [
      { id: "subnet-a", vpcId: "vpc-1", cidr: "10.0.1.0/24" },
      { id: "subnet-b", vpcId: "vpc-1", cidr: "10.0.2.0/24" },
    ],
    groupsFound: [true],
    masterRules: [tcp({ cidr: "10.0.0.0/16" })],
    ruleHint: "add TCP:{port}",
    ...overrides,
  };
}

describe("judgeAttachNetwork", () => {
  it("verifies a master in the compute VPC whose group admits slurmctld's port from the subnets, and records the VPC", () => {
    // Act
    const found = judgeAttachNetwork(INPUT, seen());
    // Assess
    expect(found.errors).toEqual([]);
    expect(found.vpcId).toBe("vpc-1");
    expect(found.verified.join("\n")).toContain("the master is in the compute VPC vpc-1");
    expect(found.verified.join("\n")).toContain("let TCP 6817 (slurmctld) in");
    expect(found.unverified.join("\n")).toContain("SlurmdPort");
  });

  it("admits from a compute security group; a CIDR that holds only one subnet refuses the other, named by its field", () => {
    // Act
    const byGroup = judgeAttachNetwork(INPUT, seen({ masterRules: [tcp({ groupId: "sg-compute" })] }));
    const partial = judgeAttachNetwork(INPUT, seen({ masterRules: [tcp({ cidr: "10.0.1.0/24" })] }));
    // Assess
    expect(byGroup.errors).toEqual([]);
    expect(partial.errors).toEqual([
      {
        path: "master.instanceId",
        message: expect.stringContaining("from network.subnetIds[1] subnet-b (10.0.2.0/24): add TCP:6817"),
      },
    ]);
  });

  it("the first matching rule decides: a DROP before the ACCEPT refuses, after it does not; other ports and protocols never admit", () => {
    // Prepare
    const drop = tcp({ cidr: "0.0.0.0/0", accept: false });
    const accept = tcp({ cidr: "10.0.0.0/16" });
    // Act
    const dropFirst = judgeAttachNetwork(INPUT, seen({ masterRules: [drop, accept] }));
    const acceptFirst = judgeAttachNetwork(INPUT, seen({ masterRules: [accept, drop] }));
    const elsewhere = judgeAttachNetwork(
      INPUT,
      seen({
        masterRules: [
          tcp({ fromPort: 22, toPort: 22, cidr: "0.0.0.0/0" }),
          tcp({ protocol: "udp", cidr: "0.0.0.0/0" }),
        ],
      }),
    );
    const all = judgeAttachNetwork(
      INPUT,
      seen({ masterRules: [tcp({ protocol: "all", fromPort: 0, toPort: 65_535, cidr: "10.0.0.0/8" })] }),
    );
    // Assess
    expect(dropFirst.errors.map((e) => e.path)).toEqual(["master.instanceId"]);
    expect(acceptFirst.errors).toEqual([]);
    expect(elsewhere.errors.map((e) => e.path)).toEqual(["master.instanceId"]);
    expect(all.errors).toEqual([]);
  });

  it("a DROP covering part of a subnet, before an ACCEPT of the whole, refuses it: the nodes in that part never reach slurmctld", () => {
    // Prepare: the drop holds a /26 of subnet-a (10.0.1.0/24); the accept holds both subnets.
    const dropPart = tcp({ cidr: "10.0.1.0/26", accept: false });
    const accept = tcp({ cidr: "0.0.0.0/0" });
    // Act
    const found = judgeAttachNetwork(INPUT, seen({ masterRules: [dropPart, accept] }));
    // Assess
    expect(found.errors).toEqual([
      {
        path: "master.instanceId",
        message: expect.stringContaining("from network.subnetIds[0] subnet-a (10.0.1.0/24)"),
      },
    ]);
    expect(found.verified.join("\n")).not.toContain("let TCP 6817");
  });

  it("a template or prefix-list rule is not evaluated: reported as the user's, not refused", () => {
    // Act
    const found = judgeAttachNetwork(INPUT, seen({ masterRules: [tcp({ opaque: true })] }));
    // Assess
    expect(found.errors).toEqual([]);
    expect(found.unverified.join("\n")).toContain("a template rule, not evaluated");
  });

  it("a group shared by the master and the computes, open within (Alibaba's InnerAccessPolicy Accept), admits without a rule", () => {
    // Prepare
    const master = {
      instanceId: "i-m",
      vpcId: "vpc-1",
      privateIps: ["10.0.0.5"],
      securityGroupIds: ["sg-compute"],
    };
    // Act
    const open = judgeAttachNetwork(
      INPUT,
      seen({ master, masterRules: [], openWithin: new Set(["sg-compute"]) }),
    );
    const closed = judgeAttachNetwork(INPUT, seen({ master, masterRules: [] }));
    // Assess
    expect(open.errors).toEqual([]);
    expect(closed.errors.map((e) => e.path)).toEqual(["master.instanceId"]);
  });

  it("refuses unknown subnets and groups, an address the master does not hold, subnets in several VPCs; another VPC than the master's is the user's route", () => {
    // Act
    const missing = judgeAttachNetwork(
      {
        ...INPUT,
        subnetPaths: ["network.subnetIds[0]", "autoscaling.queueConfigs[0].expansionNodeConfigs[0].subnetId"],
      },
      seen({
        subnets: [{ id: "subnet-a", vpcId: "vpc-1", cidr: "10.0.1.0/24" }, undefined],
        groupsFound: [false],
      }),
    );
    const address = judgeAttachNetwork({ ...INPUT, controllerAddress: "10.0.0.9" }, seen());
    const split = judgeAttachNetwork(
      INPUT,
      seen({
        subnets: [
          { id: "subnet-a", vpcId: "vpc-1", cidr: "10.0.1.0/24" },
          { id: "subnet-b", vpcId: "vpc-2", cidr: "10.0.2.0/24" },
        ],
      }),
    );
    const peered = judgeAttachNetwork(
      INPUT,
      seen({
        master: {
          instanceId: "ins-master01",
          vpcId: "vpc-0",
          privateIps: ["10.0.0.5"],
          securityGroupIds: [],
        },
        masterRules: [],
      }),
    );
    const { master: _none, ...withoutMaster } = seen();
    const noMaster = judgeAttachNetwork(INPUT, withoutMaster);
    // Assess
    expect(missing.errors.map((e) => e.path)).toEqual([
      "autoscaling.queueConfigs[0].expansionNodeConfigs[0].subnetId",
      "network.securityGroupIds[0]",
    ]);
    expect(address.errors).toEqual([
      { path: "master.slurmctldAddress", message: expect.stringContaining("it has 10.0.0.5") },
    ]);
    expect(split.errors.map((e) => e.path)).toContain("network.subnetIds");
    expect(split.vpcId).toBeUndefined();
    expect(peered.unverified.join("\n")).toContain("a route between the master's VPC vpc-0");
    expect(peered.errors.map((e) => e.path)).toEqual(["master.instanceId"]);
    expect(noMaster.errors).toEqual([
      { path: "master.instanceId", message: "no Tencent instance ins-master01 in ap-guangzhou" },
    ]);
  });

  it("reads each cloud's port notation", () => {
    // Act / Assess
    expect(portRanges("ALL")).toEqual([[0, 65_535]]);
    expect(portRanges("-1/-1")).toEqual([[0, 65_535]]);
    expect(portRanges("6817")).toEqual([[6817, 6817]]);
    expect(portRanges("6800-6900")).toEqual([[6800, 6900]]);
    expect(portRanges("6817/6818")).toEqual([[6817, 6818]]);
    expect(portRanges("22,6817")).toEqual([
      [22, 22],
      [6817, 6817],
    ]);
    expect(portRanges("x")).toEqual([]);
  });
});
