import { Client as VpcClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js";
import { cvm } from "tencentcloud-sdk-nodejs-cvm";
import type {
  AttachNetworkCheck,
  AttachNetworkFindings,
  AttachNetworkInput,
} from "../../ports/attach-network.js";
import { judgeAttachNetwork, portRanges, type SeenRule, type SeenSubnet } from "../attach-network-rules.js";
import { fromTencentError } from "./errors.js";

type CvmClient = InstanceType<typeof cvm.v20170312.Client>;

/** The calls the check makes (the SDK's clients have them). */
export interface TencentAttachNetworkClients {
  cvm: Pick<CvmClient, "DescribeInstances">;
  vpc: Pick<VpcClient, "DescribeSubnets" | "DescribeSecurityGroups" | "DescribeSecurityGroupPolicies">;
}

/** The CVM and VPC clients of a region, with the stack's Tencent key. */
export function tencentAttachNetworkClients(options: {
  region: string;
  credential: { secretId: string; secretKey: string };
  /** One endpoint for every service (tests: the loopback simulator). @default the public ones */
  endpoint?: string;
  protocol?: "https://" | "http://";
}): TencentAttachNetworkClients {
  const config = {
    credential: options.credential,
    region: options.region,
    profile: {
      httpProfile: {
        reqTimeout: 10,
        protocol: options.protocol ?? "https://",
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      },
    },
  };
  return { cvm: new cvm.v20170312.Client(config), vpc: new VpcClient(config) };
}

/**
 * What Tencent's API can tell before a master is attached (docs/attach.md): reads only, CVM
 * DescribeInstances (the master's VPC, private addresses and security groups), VPC DescribeSubnets and
 * DescribeSecurityGroups (the compute subnets and groups exist) and DescribeSecurityGroupPolicies (the
 * master's groups' inbound rules, in their order: the first matching rule decides, as CVM applies them).
 * The verdicts are lib/providers/attach-network-rules.ts'. Rules through address or service templates
 * are not evaluated (reported, not refused).
 */
export class TencentAttachNetworkCheck implements AttachNetworkCheck {
  constructor(private readonly clients: TencentAttachNetworkClients) {}

  async check(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    try {
      return await this.run(input);
    } catch (error) {
      throw fromTencentError("VPC", error);
    }
  }

  private async run(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    const subnets = await Promise.all(input.subnetIds.map((id) => this.subnet(id)));
    const groups =
      input.securityGroupIds.length === 0 ? new Set<string>() : await this.groupIds(input.securityGroupIds);
    const found =
      input.masterInstanceId === undefined
        ? undefined
        : (await this.clients.cvm.DescribeInstances({ InstanceIds: [input.masterInstanceId] }))
            .InstanceSet?.[0];
    const master =
      found === undefined
        ? undefined
        : {
            instanceId: found.InstanceId ?? "",
            vpcId: found.VirtualPrivateCloud?.VpcId ?? "",
            privateIps: found.PrivateIpAddresses ?? [],
            securityGroupIds: found.SecurityGroupIds ?? [],
          };
    const masterRules: SeenRule[] = [];
    for (const groupId of master?.securityGroupIds ?? []) {
      const policies = await this.clients.vpc.DescribeSecurityGroupPolicies({ SecurityGroupId: groupId });
      for (const p of policies.SecurityGroupPolicySet?.Ingress ?? []) {
        const opaque =
          p.AddressTemplate?.AddressId !== undefined ||
          p.AddressTemplate?.AddressGroupId !== undefined ||
          p.ServiceTemplate?.ServiceId !== undefined ||
          p.ServiceTemplate?.ServiceGroupId !== undefined;
        for (const [fromPort, toPort] of portRanges(p.Port))
          masterRules.push({
            protocol: (p.Protocol ?? "").toLowerCase(),
            fromPort,
            toPort,
            accept: (p.Action ?? "").toUpperCase() === "ACCEPT",
            ...(p.CidrBlock ? { cidr: p.CidrBlock } : {}),
            ...(p.SecurityGroupId ? { groupId: p.SecurityGroupId } : {}),
            ...(opaque ? { opaque: true } : {}),
          });
      }
    }
    return judgeAttachNetwork(input, {
      cloud: "Tencent",
      ...(master === undefined ? {} : { master }),
      subnets,
      groupsFound: input.securityGroupIds.map((id) => groups.has(id)),
      masterRules,
      ruleHint:
        "add an inbound rule to one of them: TCP:{port}, ACCEPT, source the compute subnet's CIDR or a compute security group (tccli vpc CreateSecurityGroupPolicies), before any DROP rule that matches",
    });
  }

  /** One subnet: DescribeSubnets refuses the whole call for an unknown id, so each is asked alone. */
  private async subnet(id: string): Promise<SeenSubnet | undefined> {
    try {
      const s = (await this.clients.vpc.DescribeSubnets({ SubnetIds: [id] })).SubnetSet?.[0];
      return s === undefined ? undefined : { id, vpcId: s.VpcId ?? "", cidr: s.CidrBlock ?? "" };
    } catch (error) {
      if (/NotFound/.test((error as { code?: string }).code ?? "")) return undefined;
      throw error;
    }
  }

  private async groupIds(ids: readonly string[]): Promise<Set<string>> {
    const out = await this.clients.vpc.DescribeSecurityGroups({
      Filters: [{ Name: "security-group-id", Values: [...ids] }],
      Limit: "100",
    });
    return new Set((out.SecurityGroupSet ?? []).map((g) => g.SecurityGroupId ?? ""));
  }
}
