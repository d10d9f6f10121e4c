import { randomBytes } from "node:crypto";
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  ListSecretsCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type {
  ClusterResourceRef,
  ClusterResources,
  CreatedNetwork,
  NetworkSpec,
  SecretKind,
} from "../../ports/cluster-resources.js";
import { secretName } from "../../ports/cluster-resources.js";
import { type CloudProviderError, isCloudProviderError } from "../../ports/errors.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG, tagsToList } from "../shared/tags.js";
import { fromEc2Error } from "./errors.js";

export interface AwsClusterResourcesOptions {
  ec2?: EC2Client;
  secrets?: SecretsManagerClient;
  region?: string;
  /** The customer-managed KMS key the secrets are encrypted with (the stack's key). */
  kmsKeyId: string;
}

const SECRET_TAG_KIND = SECRET_KIND_TAG;
const SECRET_TAG_VPC = SECRET_VPC_TAG;

/**
 * ClusterResources on AWS: a VPC with one subnet per zone and a self-referencing security group (EC2),
 * the munge key and the agent's HMAC key in Secrets Manager under the stack's KMS key. Every resource
 * carries `nowscale:cluster` and `nowscale:managed` from its creation call, which the stack's IAM
 * policy requires (aws:RequestTag) and which `list` and the delete permissions (aws:ResourceTag) use.
 */
export class AwsClusterResources implements ClusterResources {
  private readonly ec2: EC2Client;
  private readonly secrets: SecretsManagerClient;

  constructor(private readonly options: AwsClusterResourcesOptions) {
    const region = options.region === undefined ? {} : { region: options.region };
    this.ec2 = options.ec2 ?? new EC2Client(region);
    this.secrets = options.secrets ?? new SecretsManagerClient(region);
  }

  async createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork> {
    const existing = (await this.list(clusterId)).find((r) => r.kind === "network");
    if (existing?.kind === "network") return { vpcId: existing.vpcId, subnetIds: existing.subnetIds };
    const vpc = await this.ec2Call(() =>
      this.ec2.send(
        new CreateVpcCommand({
          CidrBlock: spec.cidr,
          TagSpecifications: [{ ResourceType: "vpc", Tags: tags(clusterId, `nowscale-${clusterId}`) }],
        }),
      ),
    );
    const vpcId = vpc.Vpc?.VpcId;
    if (vpcId === undefined) throw fromEc2Error(new Error("CreateVpc returned no VpcId"));
    const blocks = subnetBlocks(spec.cidr, spec.zones.length);
    const subnetIds: string[] = [];
    for (const [i, zone] of spec.zones.entries()) {
      const subnet = await this.ec2Call(() =>
        this.ec2.send(
          new CreateSubnetCommand({
            VpcId: vpcId,
            AvailabilityZone: zone,
            CidrBlock: blocks[i],
            TagSpecifications: [
              { ResourceType: "subnet", Tags: tags(clusterId, `nowscale-${clusterId}-${zone}`) },
            ],
          }),
        ),
      );
      if (subnet.Subnet?.SubnetId !== undefined) subnetIds.push(subnet.Subnet.SubnetId);
    }
    return { vpcId, subnetIds };
  }

  async createSecurityGroup(clusterId: string, vpcId: string): Promise<{ securityGroupId: string }> {
    const existing = (await this.list(clusterId)).find((r) => r.kind === "securityGroup");
    if (existing?.kind === "securityGroup") return { securityGroupId: existing.securityGroupId };
    const group = await this.ec2Call(() =>
      this.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: `nowscale-${clusterId}`,
          Description: `NowScale cluster ${clusterId}: members only`,
          VpcId: vpcId,
          TagSpecifications: [
            { ResourceType: "security-group", Tags: tags(clusterId, `nowscale-${clusterId}`) },
          ],
        }),
      ),
    );
    const securityGroupId = group.GroupId;
    if (securityGroupId === undefined)
      throw fromEc2Error(new Error("CreateSecurityGroup returned no GroupId"));
    // Members reach each other (slurmctld, slurmd, munge, the agent); nothing else gets in, no public SSH.
    await this.ec2Call(() =>
      this.ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: securityGroupId,
          IpPermissions: [{ IpProtocol: "-1", UserIdGroupPairs: [{ GroupId: securityGroupId }] }],
        }),
      ),
    );
    return { securityGroupId };
  }

  async createSecret(
    clusterId: string,
    kind: SecretKind,
    options: { vpcId?: string } = {},
  ): Promise<{ secretId: string; secretName: string }> {
    const name = secretName(clusterId, kind);
    try {
      const found = await this.secrets.send(new DescribeSecretCommand({ SecretId: name }));
      if (found.ARN !== undefined && found.DeletedDate === undefined)
        return { secretId: found.ARN, secretName: name };
    } catch (error) {
      if ((error as { name?: string }).name !== "ResourceNotFoundException") throw fromSecretsError(error);
    }
    // munge wants 1024 random bytes; the agent's key is text of at least 32 bytes (docs/agent.md).
    const value =
      kind === "munge-key"
        ? { SecretBinary: randomBytes(1024) }
        : { SecretString: randomBytes(48).toString("base64") };
    try {
      const created = await this.secrets.send(
        new CreateSecretCommand({
          Name: name,
          Description: `NowScale ${kind} of cluster ${clusterId}`,
          KmsKeyId: this.options.kmsKeyId,
          ...value,
          // The node roles read a secret only by its kind and from its cluster's VPC (lib/infra/node-role.ts).
          Tags: tagsToList({
            ...baseTags(clusterId),
            [SECRET_TAG_KIND]: kind,
            ...(options.vpcId === undefined ? {} : { [SECRET_TAG_VPC]: options.vpcId }),
          }),
        }),
      );
      if (created.ARN === undefined) throw new Error("CreateSecret returned no ARN");
      return { secretId: created.ARN, secretName: name };
    } catch (error) {
      throw fromSecretsError(error);
    }
  }

  async deleteSecret(secretId: string): Promise<void> {
    try {
      await this.secrets.send(
        new DeleteSecretCommand({ SecretId: secretId, ForceDeleteWithoutRecovery: true }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === "ResourceNotFoundException") return;
      throw fromSecretsError(error);
    }
  }

  async deleteSecurityGroup(securityGroupId: string): Promise<void> {
    await this.goneIsFine(() => this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: securityGroupId })));
  }

  async deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    for (const subnetId of network.subnetIds) {
      await this.goneIsFine(() => this.ec2.send(new DeleteSubnetCommand({ SubnetId: subnetId })));
    }
    await this.goneIsFine(() => this.ec2.send(new DeleteVpcCommand({ VpcId: network.vpcId })));
  }

  async list(clusterId: string): Promise<ClusterResourceRef[]> {
    const filter = [{ Name: `tag:${CLUSTER_TAG}`, Values: [clusterId] }];
    const refs: ClusterResourceRef[] = [];
    const vpcs = await this.ec2Call(() => this.ec2.send(new DescribeVpcsCommand({ Filters: filter })));
    for (const vpc of vpcs.Vpcs ?? []) {
      if (vpc.VpcId === undefined) continue;
      const subnets = await this.ec2Call(() =>
        this.ec2.send(
          new DescribeSubnetsCommand({
            Filters: [...filter, { Name: "vpc-id", Values: [vpc.VpcId as string] }],
          }),
        ),
      );
      refs.push({
        kind: "network",
        vpcId: vpc.VpcId,
        subnetIds: (subnets.Subnets ?? []).flatMap((s) => (s.SubnetId === undefined ? [] : [s.SubnetId])),
      });
    }
    const groups = await this.ec2Call(() =>
      this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: filter })),
    );
    for (const g of groups.SecurityGroups ?? []) {
      if (g.GroupId !== undefined) refs.push({ kind: "securityGroup", securityGroupId: g.GroupId });
    }
    let nextToken: string | undefined;
    do {
      const page = await this.secretsCall(() =>
        this.secrets.send(
          new ListSecretsCommand({
            Filters: [
              { Key: "tag-key", Values: [CLUSTER_TAG] },
              { Key: "tag-value", Values: [clusterId] },
            ],
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
        ),
      );
      for (const s of page.SecretList ?? []) {
        const ownTag = s.Tags?.find((t) => t.Key === CLUSTER_TAG)?.Value;
        const kind = s.Tags?.find((t) => t.Key === SECRET_TAG_KIND)?.Value;
        // The filters match key and value separately: check the pair, and the kind we wrote.
        if (ownTag !== clusterId || s.ARN === undefined) continue;
        if (kind !== "munge-key" && kind !== "agent-hmac-key") continue;
        refs.push({ kind: "secret", secretKind: kind, secretId: s.ARN });
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return refs;
  }

  private async ec2Call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromEc2Error(error);
    }
  }

  private async secretsCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromSecretsError(error);
    }
  }

  /** Deleting what is already gone succeeds (`Invalid…ID.NotFound`, `InvalidGroup.NotFound`). */
  private async goneIsFine(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      const mapped = fromEc2Error(error);
      if (mapped.cause?.code.endsWith(".NotFound")) return;
      throw mapped;
    }
  }
}

function baseTags(clusterId: string): Record<string, string> {
  return { [CLUSTER_TAG]: clusterId, [MANAGED_TAG]: "true" };
}

function tags(clusterId: string, name: string) {
  return tagsToList({ Name: name, ...baseTags(clusterId) });
}

/** Secrets Manager's codes share EC2's throttling and auth names; the rest is the request's fault. */
function fromSecretsError(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  return fromEc2Error(error);
}

/**
 * `count` equal blocks carved from the VPC's block in order: 4 more prefix bits (16 subnets) for up to
 * 16 zones, e.g. 10.42.0.0/16 → 10.42.0.0/20, 10.42.16.0/20, ...
 */
export function subnetBlocks(cidr: string, count: number): string[] {
  const [address, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  const base = (address ?? "").split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  const subnetBits = bits + 4;
  const size = 2 ** (32 - subnetBits);
  return Array.from({ length: count }, (_, i) => {
    const start = base + i * size;
    const octets = [24, 16, 8, 0].map((shift) => Math.floor(start / 2 ** shift) % 256);
    return `${octets.join(".")}/${subnetBits}`;
  });
}
