import * as ecs from "@alicloud/ecs20140526";
import * as vpc from "@alicloud/vpc20160428";
import type {
  AttachNetworkCheck,
  AttachNetworkFindings,
  AttachNetworkInput,
} from "../../ports/attach-network.js";
import { judgeAttachNetwork, portRanges, type SeenRule, type SeenSubnet } from "../attach-network-rules.js";
import { type AlibabaAccessKey, cjsDefault, clientConfig } from "./ecs-api.js";
import { fromAlibabaError } from "./errors.js";

const EcsClient = cjsDefault(ecs.default);
const VpcClient = cjsDefault(vpc.default);

/** The calls the check makes (the SDK's clients have them). */
export interface AlibabaAttachNetworkClients {
  ecs: Pick<InstanceType<typeof EcsClient>, "describeInstances" | "describeSecurityGroupAttribute">;
  vpc: Pick<InstanceType<typeof VpcClient>, "describeVSwitches">;
}

/** The ECS and VPC clients of a region, with the stack's Alibaba key. */
export function alibabaAttachNetworkClients(options: {
  regionId: string;
  credential: AlibabaAccessKey;
  /** Tests: the loopback simulator. @default the public endpoints */
  endpoints?: { ecs?: string; vpc?: string };
  protocol?: "https" | "http";
}): AlibabaAttachNetworkClients {
  const base = {
    regionId: options.regionId,
    credential: options.credential,
    readTimeoutMs: 10_000,
    ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
  };
  const at = (endpoint: string | undefined) => (endpoint === undefined ? {} : { endpoint });
  return {
    ecs: new EcsClient(clientConfig({ ...base, ...at(options.endpoints?.ecs) })),
    vpc: new VpcClient(clientConfig({ ...base, ...at(options.endpoints?.vpc) })),
  };
}

/**
 * What Alibaba's API can tell before a master is attached (docs/attach.md): reads only, ECS
 * DescribeInstances (the master's VPC, private addresses and security groups), VPC DescribeVSwitches (the
 * compute VSwitches), ECS DescribeSecurityGroupAttribute (the compute groups exist; the master's groups'
 * inbound rules, by Priority, a Drop before an Accept of the same priority, as ECS applies them, and
 * InnerAccessPolicy: members of one group with Accept reach each other whatever the rules). The verdicts
 * are lib/providers/attach-network-rules.ts'. Rules through prefix lists are not evaluated.
 */
export class AlibabaAttachNetworkCheck implements AttachNetworkCheck {
  constructor(
    private readonly clients: AlibabaAttachNetworkClients,
    private readonly regionId: string,
  ) {}

  async check(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    try {
      return await this.run(input);
    } catch (error) {
      throw fromAlibabaError("ECS", error);
    }
  }

  private async run(input: AttachNetworkInput): Promise<AttachNetworkFindings> {
    const regionId = this.regionId;
    const subnets = await Promise.all(input.subnetIds.map((id) => this.vSwitch(id)));
    const computeGroups = await Promise.all(input.securityGroupIds.map((id) => this.group(id)));
    const found =
      input.masterInstanceId === undefined
        ? undefined
        : (
            await this.clients.ecs.describeInstances(
              new ecs.DescribeInstancesRequest({
                regionId,
                instanceIds: JSON.stringify([input.masterInstanceId]),
              }),
            )
          ).body?.instances?.instance?.[0];
    const master =
      found === undefined
        ? undefined
        : {
            instanceId: found.instanceId ?? "",
            vpcId: found.vpcAttributes?.vpcId ?? "",
            privateIps: found.vpcAttributes?.privateIpAddress?.ipAddress ?? [],
            securityGroupIds: found.securityGroupIds?.securityGroupId ?? [],
          };
    const ranked: (SeenRule & { priority: number })[] = [];
    const openWithin = new Set<string>();
    for (const groupId of master?.securityGroupIds ?? []) {
      const g = await this.group(groupId);
      if (g === undefined) continue;
      if ((g.innerAccessPolicy ?? "").toLowerCase() === "accept") openWithin.add(groupId);
      for (const p of g.permissions?.permission ?? []) {
        if ((p.direction ?? "ingress") !== "ingress") continue;
        for (const [fromPort, toPort] of portRanges(p.portRange))
          ranked.push({
            protocol: (p.ipProtocol ?? "").toLowerCase(),
            fromPort,
            toPort,
            accept: (p.policy ?? "accept").toLowerCase() === "accept",
            priority: Number(p.priority ?? 1),
            ...(p.sourceCidrIp ? { cidr: p.sourceCidrIp } : {}),
            ...(p.sourceGroupId ? { groupId: p.sourceGroupId } : {}),
            ...(p.sourcePrefixListId ? { opaque: true } : {}),
          });
      }
    }
    // Priority 1 is first; at one priority, Drop wins.
    ranked.sort((a, b) => a.priority - b.priority || Number(a.accept) - Number(b.accept));
    return judgeAttachNetwork(input, {
      cloud: "Alibaba",
      ...(master === undefined ? {} : { master }),
      subnets,
      groupsFound: computeGroups.map((g) => g !== undefined),
      masterRules: ranked,
      openWithin,
      ruleHint:
        "add an inbound rule to one of them: TCP {port}/{port}, Accept, source the compute VSwitch's CIDR or a compute security group (aliyun ecs AuthorizeSecurityGroup), at a priority above any Drop rule that matches",
    });
  }

  private async vSwitch(id: string): Promise<SeenSubnet | undefined> {
    const body = (
      await this.clients.vpc.describeVSwitches(
        new vpc.DescribeVSwitchesRequest({ regionId: this.regionId, vSwitchId: id }),
      )
    ).body;
    const s = body?.vSwitches?.vSwitch?.find((v) => v.vSwitchId === id);
    return s === undefined ? undefined : { id, vpcId: s.vpcId ?? "", cidr: s.cidrBlock ?? "" };
  }

  private async group(id: string) {
    try {
      return (
        await this.clients.ecs.describeSecurityGroupAttribute(
          new ecs.DescribeSecurityGroupAttributeRequest({
            regionId: this.regionId,
            securityGroupId: id,
            direction: "ingress",
          }),
        )
      ).body;
    } catch (error) {
      if (fromAlibabaError("ECS", error).kind === "NotFound") return undefined;
      throw error;
    }
  }
}
