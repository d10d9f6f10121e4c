import {
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  type EC2Client,
  type Instance,
  type IpPermission,
  type RouteTable,
  type SecurityGroup,
  type Subnet,
} from "@aws-sdk/client-ec2";
import type {
  AttachNetworkCheck,
  AttachNetworkFindings,
  AttachNetworkInput,
  NetworkFinding,
} from "../../ports/attach-network.js";
import { fromEc2Error } from "./errors.js";

/**
 * What EC2's API can tell about compute nodes in the given subnets and security groups reaching an
 * attached master's slurmctld, and slurmctld reaching their slurmd (docs/attach.md). Reads only
 * (DescribeSubnets, DescribeSecurityGroups, DescribeInstances, DescribeRouteTables). Verified:
 *
 * - the subnets and security groups exist, and the groups are in the subnets' VPC (RunInstances needs it);
 * - the master: the instance named (`i-…`), or the one holding slurmctld's address in the subnets' VPC;
 *   the address is one of its private addresses;
 * - routes: the same VPC (the local route), or every compute subnet's route table has a route to the
 *   address through a peering connection or transit gateway;
 * - security groups: one of the master's groups lets TCP slurmctld's port in from a compute group (or a
 *   CIDR holding every compute subnet), and one of the compute groups lets TCP SlurmdPort in from a
 *   master's group (or a CIDR holding its address); the compute groups' egress lets both out.
 *
 * A rule through a prefix list cannot be evaluated here: when it is all there is, the finding goes to
 * `unverified`, not `errors`. Network ACLs, on-premises routes (hybrid `mi-…` masters), firewalls on the
 * hosts and srun's ports are never verified: always listed as the user's to ensure.
 */
export class AwsAttachNetworkCheck implements AttachNetworkCheck {
  constructor(private readonly client: EC2Client) {}

  async check(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    try {
      return await this.run(input);
    } catch (error) {
      throw fromEc2Error(error);
    }
  }

  private async run(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    const errors: NetworkFinding[] = [];
    const verified: string[] = [];
    const unverified = [
      "network ACLs of the compute subnets and the master's subnet, and firewalls on the hosts, let slurmctld's port, SlurmdPort and srun's ports through",
    ];
    const subnets = await this.subnets(input.subnetIds, errors);
    const groups = await this.groups(input.securityGroupIds, errors);
    const vpcs = new Set(subnets.map((s) => s.VpcId ?? ""));
    if (vpcs.size > 1) unverified.push(`the compute subnets span several VPCs (${[...vpcs].join(", ")})`);
    groups.forEach((g) => {
      if (vpcs.size === 1 && !vpcs.has(g.VpcId ?? "")) {
        const i = input.securityGroupIds.indexOf(g.GroupId ?? "");
        errors.push({
          path: `network.securityGroupIds[${i}]`,
          message: `${g.GroupId} is in ${g.VpcId}, the compute subnets in ${[...vpcs][0]}`,
        });
      }
    });
    if (errors.length > 0 || subnets.length === 0) return { errors, verified, unverified };
    verified.push(
      `subnets ${input.subnetIds.join(", ")} and security groups ${input.securityGroupIds.join(", ")} exist in ${[...vpcs].join(", ")}`,
    );

    if (input.masterInstanceId?.startsWith("mi-") === true) {
      unverified.push(
        `the master ${input.masterInstanceId} is a hybrid-activated server outside AWS: routes (VPN, Direct Connect) between the compute subnets and ${input.controllerAddress}, both ways, and its firewall`,
      );
      return { errors, verified, unverified };
    }
    const master = await this.master(input, [...vpcs]);
    if (master === undefined) {
      if (input.masterInstanceId !== undefined) {
        errors.push({
          path: "master.instanceId",
          message: `no instance ${input.masterInstanceId} in ${input.region}`,
        });
      } else {
        unverified.push(
          `slurmctld's address ${input.controllerAddress} is no instance of the compute VPC: routes and firewalls between it and the compute subnets, both ways`,
        );
      }
      return { errors, verified, unverified };
    }
    const addresses = (master.NetworkInterfaces ?? []).flatMap((n) =>
      (n.PrivateIpAddresses ?? []).map((a) => a.PrivateIpAddress ?? ""),
    );
    if (!addresses.includes(input.controllerAddress) && master.PrivateIpAddress !== input.controllerAddress) {
      errors.push({
        path: "master.slurmctldAddress",
        message: `${input.controllerAddress} is not an address of the master ${master.InstanceId} (${addresses.join(", ")})`,
      });
      return { errors, verified, unverified };
    }
    verified.push(`slurmctld's address ${input.controllerAddress} is the master ${master.InstanceId}'s`);

    // Routes.
    if (vpcs.has(master.VpcId ?? "")) {
      verified.push(`the master is in the compute VPC ${master.VpcId}: the local route joins them`);
    } else {
      const tables = await this.routeTables([...vpcs][0] ?? "");
      for (const [i, subnet] of subnets.entries()) {
        const table = tableOf(tables, subnet.SubnetId ?? "");
        const route = table?.Routes?.find(
          (r) =>
            r.DestinationCidrBlock !== undefined &&
            (r.VpcPeeringConnectionId !== undefined || r.TransitGatewayId !== undefined) &&
            cidrContains(r.DestinationCidrBlock, `${input.controllerAddress}/32`),
        );
        if (route === undefined) {
          errors.push({
            path: `network.subnetIds[${i}]`,
            message: `${subnet.SubnetId} (in ${subnet.VpcId}) has no route to ${input.controllerAddress} (the master is in ${master.VpcId}): add a peering or transit gateway route`,
          });
        }
      }
      if (errors.length > 0) return { errors, verified, unverified };
      verified.push(
        `every compute subnet routes to ${input.controllerAddress} through a peering or transit gateway`,
      );
      unverified.push(`the master's VPC ${master.VpcId} routes back to the compute subnets`);
    }

    // Security groups, both ways.
    const computeGroups = new Set(input.securityGroupIds);
    const masterGroupIds = (master.SecurityGroups ?? []).map((g) => g.GroupId ?? "");
    const masterGroups = await this.groups(masterGroupIds, []);
    const computeCidrs = subnets.map((s) => s.CidrBlock ?? "");
    const toMaster = best(
      masterGroups
        .flatMap((g) => g.IpPermissions ?? [])
        .map((p) => allows(p, input.controllerPort, computeGroups, computeCidrs)),
    );
    const toNodes = best(
      groups
        .flatMap((g) => g.IpPermissions ?? [])
        .map((p) => allows(p, input.slurmdPort, new Set(masterGroupIds), [`${input.controllerAddress}/32`])),
    );
    const outToMaster = best(
      groups
        .flatMap((g) => g.IpPermissionsEgress ?? [])
        .map((p) =>
          allows(p, input.controllerPort, new Set(masterGroupIds), [`${input.controllerAddress}/32`]),
        ),
    );
    const checks: [string, "yes" | "unknown" | "no", string][] = [
      [
        "network.securityGroupIds",
        toMaster,
        `the master's security groups (${masterGroupIds.join(", ")}) let TCP ${input.controllerPort} (slurmctld) in from the compute security groups or subnets`,
      ],
      [
        "network.securityGroupIds",
        toNodes,
        `the compute security groups let TCP ${input.slurmdPort} (slurmd) in from the master's security groups or address`,
      ],
      [
        "network.securityGroupIds",
        outToMaster,
        `the compute security groups let TCP ${input.controllerPort} out to the master`,
      ],
    ];
    for (const [path, result, sentence] of checks) {
      if (result === "yes") verified.push(sentence);
      else if (result === "unknown") unverified.push(`${sentence} (a prefix list rule: not evaluated)`);
      else errors.push({ path, message: `no rule: ${sentence.replace(/^the /, "make the ")}` });
    }
    return { errors, verified, unverified };
  }

  private async subnets(ids: readonly string[], errors: NetworkFinding[]): Promise<Subnet[]> {
    if (ids.length === 0) return [];
    const found =
      (
        await this.client.send(
          new DescribeSubnetsCommand({ Filters: [{ Name: "subnet-id", Values: [...ids] }] }),
        )
      ).Subnets ?? [];
    ids.forEach((id, i) => {
      if (!found.some((s) => s.SubnetId === id))
        errors.push({ path: `network.subnetIds[${i}]`, message: `no subnet ${id}` });
    });
    return found;
  }

  private async groups(ids: readonly string[], errors: NetworkFinding[]): Promise<SecurityGroup[]> {
    if (ids.length === 0) return [];
    const found =
      (
        await this.client.send(
          new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-id", Values: [...ids] }] }),
        )
      ).SecurityGroups ?? [];
    ids.forEach((id, i) => {
      if (!found.some((g) => g.GroupId === id))
        errors.push({ path: `network.securityGroupIds[${i}]`, message: `no security group ${id}` });
    });
    return found;
  }

  /** The named instance, or the one holding the address in the compute VPCs. */
  private async master(input: AttachNetworkInput, vpcs: string[]): Promise<Instance | undefined> {
    const filters =
      input.masterInstanceId !== undefined
        ? [{ Name: "instance-id", Values: [input.masterInstanceId] }]
        : [
            { Name: "vpc-id", Values: vpcs },
            { Name: "network-interface.addresses.private-ip-address", Values: [input.controllerAddress] },
          ];
    const out = await this.client.send(new DescribeInstancesCommand({ Filters: filters }));
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .find((i) => i.State?.Name !== "terminated" && i.State?.Name !== "shutting-down");
  }

  private async routeTables(vpcId: string): Promise<RouteTable[]> {
    const out = await this.client.send(
      new DescribeRouteTablesCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }),
    );
    return out.RouteTables ?? [];
  }
}

/** The subnet's own route table, else the VPC's main one. */
function tableOf(tables: RouteTable[], subnetId: string): RouteTable | undefined {
  return (
    tables.find((t) => (t.Associations ?? []).some((a) => a.SubnetId === subnetId)) ??
    tables.find((t) => (t.Associations ?? []).some((a) => a.Main === true))
  );
}

/**
 * Whether one rule lets TCP `port` through from (or to) one of `groups`, or from a CIDR holding every
 * one of `cidrs`: "unknown" when it only names prefix lists, which are not evaluated here.
 */
export function allows(
  rule: IpPermission,
  port: number,
  groups: ReadonlySet<string>,
  cidrs: readonly string[],
): "yes" | "unknown" | "no" {
  const protocol = rule.IpProtocol ?? "";
  const portOk =
    protocol === "-1" ||
    ((protocol === "tcp" || protocol === "6") &&
      (rule.FromPort ?? 0) <= port &&
      port <= (rule.ToPort ?? 65_535));
  if (!portOk) return "no";
  if ((rule.UserIdGroupPairs ?? []).some((p) => p.GroupId !== undefined && groups.has(p.GroupId)))
    return "yes";
  const ranges = (rule.IpRanges ?? []).map((r) => r.CidrIp ?? "");
  if (cidrs.length > 0 && cidrs.every((c) => ranges.some((r) => cidrContains(r, c)))) return "yes";
  return (rule.PrefixListIds ?? []).length > 0 ? "unknown" : "no";
}

function best(results: ("yes" | "unknown" | "no")[]): "yes" | "unknown" | "no" {
  if (results.includes("yes")) return "yes";
  return results.includes("unknown") ? "unknown" : "no";
}

/** True when the IPv4 block `outer` holds all of `inner` (both "a.b.c.d/n"). */
export function cidrContains(outer: string, inner: string): boolean {
  const parse = (cidr: string) => {
    const [ip = "", bits = "32"] = cidr.split("/");
    const octets = ip.split(".").map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
    const n = Number(bits);
    if (!Number.isInteger(n) || n < 0 || n > 32) return undefined;
    return { base: octets.reduce((a, o) => a * 256 + o, 0), bits: n };
  };
  const o = parse(outer);
  const i = parse(inner);
  if (o === undefined || i === undefined || o.bits > i.bits) return false;
  const size = 2 ** (32 - o.bits);
  return Math.floor(o.base / size) === Math.floor(i.base / size);
}
