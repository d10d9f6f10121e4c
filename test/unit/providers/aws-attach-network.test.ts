import {
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  type IpPermission,
  type SecurityGroup,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import type { AttachNetworkInput } from "../../../lib/ports/attach-network.js";
import { AwsAttachNetworkCheck, cidrContains } from "../../../lib/providers/aws-ec2/attach-network.js";

/**
 * What attach can verify on AWS of compute nodes reaching an attached master's slurmctld (and back):
 * answers of EC2's Describe calls (aws-sdk-client-mock) in, findings naming the request field out.
 */

const ec2 = mockClient(EC2Client);
afterEach(() => ec2.reset());

const INPUT: AttachNetworkInput = {
  region: "us-east-1",
  controllerAddress: "10.0.1.10",
  controllerPort: 6817,
  slurmdPort: 6818,
  subnetIds: ["subnet-c1"],
  securityGroupIds: ["sg-compute"],
};

const tcp = (port: number, from: Partial<IpPermission>): IpPermission => ({
  IpProtocol: "tcp",
  FromPort: port,
  ToPort: port,
  ...from,
});

function world(options: {
  masterVpc?: string;
  masterIngress?: IpPermission[];
  computeIngress?: IpPermission[];
  routes?: { cidr: string; via: "pcx" | "igw" }[];
  masterFound?: boolean;
}) {
  const masterVpc = options.masterVpc ?? "vpc-a";
  const groups: SecurityGroup[] = [
    {
      GroupId: "sg-compute",
      VpcId: "vpc-a",
      IpPermissions: options.computeIngress ?? [tcp(6818, { UserIdGroupPairs: [{ GroupId: "sg-master" }] })],
      IpPermissionsEgress: [{ IpProtocol: "-1", IpRanges: [{ CidrIp: "0.0.0.0/0" }] }],
    },
    {
      GroupId: "sg-master",
      VpcId: masterVpc,
      IpPermissions: options.masterIngress ?? [tcp(6817, { UserIdGroupPairs: [{ GroupId: "sg-compute" }] })],
    },
  ];
  ec2.on(DescribeSubnetsCommand).resolves({
    Subnets: [{ SubnetId: "subnet-c1", VpcId: "vpc-a", CidrBlock: "10.0.2.0/24" }],
  });
  ec2.on(DescribeSecurityGroupsCommand).callsFake((input: { Filters?: { Values?: string[] }[] }) => ({
    SecurityGroups: groups.filter((g) => input.Filters?.[0]?.Values?.includes(g.GroupId ?? "")),
  }));
  ec2.on(DescribeInstancesCommand).resolves({
    Reservations:
      options.masterFound === false
        ? []
        : [
            {
              Instances: [
                {
                  InstanceId: "i-master",
                  VpcId: masterVpc,
                  PrivateIpAddress: "10.0.1.10",
                  State: { Name: "running" },
                  SecurityGroups: [{ GroupId: "sg-master" }],
                  NetworkInterfaces: [{ PrivateIpAddresses: [{ PrivateIpAddress: "10.0.1.10" }] }],
                },
              ],
            },
          ],
  });
  ec2.on(DescribeRouteTablesCommand).resolves({
    RouteTables: [
      {
        Associations: [{ Main: true }],
        Routes: (options.routes ?? []).map((r) => ({
          DestinationCidrBlock: r.cidr,
          ...(r.via === "pcx" ? { VpcPeeringConnectionId: "pcx-1" } : { GatewayId: "igw-1" }),
        })),
      },
    ],
  });
}

const check = (input: Partial<AttachNetworkInput> = {}) =>
  new AwsAttachNetworkCheck(new EC2Client({ region: "us-east-1" })).check({ ...INPUT, ...input });

describe("the attach network check on AWS", () => {
  it("verifies the same VPC and security groups that let slurmctld's port in and SlurmdPort back", async () => {
    // Prepare
    world({});
    // Act
    const found = await check();
    // Assess
    expect(found.errors).toEqual([]);
    expect(found.verified).toEqual([
      "subnets subnet-c1 and security groups sg-compute exist in vpc-a",
      "slurmctld's address 10.0.1.10 is the master i-master's",
      "the master is in the compute VPC vpc-a: the local route joins them",
      "the master's security groups (sg-master) let TCP 6817 (slurmctld) in from the compute security groups or subnets",
      "the compute security groups let TCP 6818 (slurmd) in from the master's security groups or address",
      "the compute security groups let TCP 6817 out to the master",
    ]);
    expect(found.unverified.join(" ")).toContain("network ACLs");
  });

  it("names the security groups when no rule lets slurmctld's port in; a CIDR rule holding the subnets counts", async () => {
    // Prepare
    world({ masterIngress: [tcp(22, { IpRanges: [{ CidrIp: "0.0.0.0/0" }] })] });
    // Act
    const closed = await check();
    world({ masterIngress: [tcp(6817, { IpRanges: [{ CidrIp: "10.0.0.0/16" }] })] });
    const byCidr = await check();
    world({ masterIngress: [tcp(6817, { PrefixListIds: [{ PrefixListId: "pl-1" }] })] });
    const byPrefixList = await check();
    // Assess
    expect(closed.errors).toEqual([
      {
        path: "network.securityGroupIds",
        message:
          "no rule: make the master's security groups (sg-master) let TCP 6817 (slurmctld) in from the compute security groups or subnets",
      },
    ]);
    expect(byCidr.errors).toEqual([]);
    expect(byPrefixList.errors).toEqual([]);
    expect(byPrefixList.unverified.join(" ")).toContain("(a prefix list rule: not evaluated)");
  });

  it("another VPC needs a peering or transit route from every compute subnet; a hybrid master is the user's to route", async () => {
    // Prepare
    world({ masterVpc: "vpc-b", routes: [{ cidr: "10.0.0.0/8", via: "igw" }] });
    // Act
    const noRoute = await check();
    world({ masterVpc: "vpc-b", routes: [{ cidr: "10.0.1.0/24", via: "pcx" }] });
    const peered = await check();
    const hybrid = await check({ masterInstanceId: "mi-0123456789abcdef0" });
    // Assess
    expect(noRoute.errors).toEqual([
      {
        path: "network.subnetIds[0]",
        message:
          "subnet-c1 (in vpc-a) has no route to 10.0.1.10 (the master is in vpc-b): add a peering or transit gateway route",
      },
    ]);
    expect(peered.errors).toEqual([]);
    expect(peered.unverified.join(" ")).toContain("the master's VPC vpc-b routes back");
    expect(hybrid.errors).toEqual([]);
    expect(hybrid.unverified.join(" ")).toContain("hybrid-activated server outside AWS");
    expect(ec2.commandCalls(DescribeInstancesCommand).length).toBe(2);
  });

  it("a master not found by its address is the user's to reach; a named one that does not exist is an error", async () => {
    // Prepare
    world({ masterFound: false });
    // Act
    const byAddress = await check();
    const byId = await check({ masterInstanceId: "i-gone" });
    // Assess
    expect(byAddress.errors).toEqual([]);
    expect(byAddress.unverified.join(" ")).toContain("10.0.1.10 is no instance of the compute VPC");
    expect(byId.errors).toEqual([{ path: "master.instanceId", message: "no instance i-gone in us-east-1" }]);
  });

  it("CIDR containment", () => {
    expect(cidrContains("10.0.0.0/16", "10.0.2.0/24")).toBe(true);
    expect(cidrContains("10.0.2.0/24", "10.0.0.0/16")).toBe(false);
    expect(cidrContains("0.0.0.0/0", "192.168.1.1/32")).toBe(true);
    expect(cidrContains("10.0.1.0/24", "10.0.2.10/32")).toBe(false);
    expect(cidrContains("bogus", "10.0.0.0/8")).toBe(false);
  });
});
