import { randomBytes } from "node:crypto";
import { Client as VpcClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js";
import type {
  SecurityGroupPolicySet,
  Subnet,
  Tag as VpcTag,
} from "tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_models.js";
import type { Credential, DynamicCredential } from "tencentcloud-sdk-nodejs-common";
import { DefaultCredentialProvider } from "tencentcloud-sdk-nodejs-common";
import { ssm } from "tencentcloud-sdk-nodejs-ssm";
import type {
  ClusterResourceRef,
  ClusterResources,
  CreatedNetwork,
  NetworkSpec,
  SecretKind,
} from "../../ports/cluster-resources.js";
import { type CloudProviderError, InvalidRequestError } from "../../ports/errors.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG } from "../../ports/tags.js";
import { recordedUserSecretName } from "../../ports/user-secrets.js";
import { subnetBlocks } from "../shared/subnet-blocks.js";
import { fromTencentError } from "./errors.js";

type SsmClient = InstanceType<typeof ssm.v20190923.Client>;

export interface TencentClusterResourcesOptions {
  /** e.g. "ap-guangzhou". */
  region: string;
  /** As for the CVM provider (lib/providers/tencent-cvm/cvm-api.ts). @default the SDK's default chain */
  credential?: Credential | DynamicCredential;
  /** The KMS key the secrets are encrypted with. @default SSM's own key for the account */
  kmsKeyId?: string;
  /** An API endpoint for every service (a test server, "127.0.0.1:8080"). @default each service's public one */
  endpoint?: string;
  /** @default "https://" */
  protocol?: "https://" | "http://";
}

/** Tencent's name for a cluster's secret: SSM names take letters, digits, '-' and '_' only (no '/'). */
export function tencentSecretName(clusterId: string, kind: SecretKind): string {
  return `nowscale-${clusterId}-${kind}`;
}

/** GetSecretValue wants a version: every secret NowScale makes has this one only. */
export const SECRET_VERSION = "v1";

const PAGE = 100;

/**
 * The cluster's network, security group and secrets on Tencent Cloud (VPC API 2017-03-12, Secrets
 * Manager (SSM) 2019-09-23). Differences from AWS that shape it:
 * - A security group belongs to the region, not to a VPC: it is found by the cluster's tag alone.
 * - The nodes reach Tencent's APIs (SSM, TAT) and mirrors through the internal endpoints
 *   (`*.internal.tencentcloudapi.com`, mirrors.tencentyun.com) without a NAT gateway, so there is nothing
 *   like AWS's interface endpoints to make: `interfaceEndpoints` is ignored.
 * - SSM names a secret by its name (the id the workflow carries) and deletes only a disabled one.
 * Every resource carries `nowscale:cluster` (CVM, VPC and SSM all accept a ':' in a tag key, and filter
 * on it as `tag:nowscale:cluster` or a TagFilter).
 */
export class TencentClusterResources implements ClusterResources {
  readonly vpc: VpcClient;
  readonly ssm: SsmClient;

  constructor(private readonly options: TencentClusterResourcesOptions) {
    const config = {
      credential: options.credential ?? new DefaultCredentialProvider(),
      region: options.region,
      profile: {
        httpProfile: {
          reqTimeout: 30,
          protocol: options.protocol ?? "https://",
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        },
      },
    };
    this.vpc = new VpcClient(config);
    this.ssm = new ssm.v20190923.Client(config);
  }

  async createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork> {
    const blocks = subnetBlocks(spec.cidr, spec.zones.length);
    // A retried step finds the VPC it made (and the subnets it made before failing) by the cluster tag.
    let vpcId = (await this.vpcsOf(clusterId))[0];
    if (vpcId === undefined) {
      const created = await this.call("vpc", () =>
        this.vpc.CreateVpc({
          VpcName: resourceName(clusterId),
          CidrBlock: spec.cidr,
          Tags: vpcTags(clusterId),
        }),
      );
      vpcId = created.Vpc?.VpcId;
      if (vpcId === undefined) throw new InvalidRequestError("VPC CreateVpc answered no VpcId");
    }
    const existing = await this.subnetsOf(vpcId);
    const missing = spec.zones
      .map((zone, i) => ({ zone, block: blocks[i] ?? "" }))
      .filter(({ zone }) => !existing.some((s) => s.Zone === zone));
    if (missing.length > 0) {
      await this.call("vpc", () =>
        this.vpc.CreateSubnets({
          VpcId: vpcId,
          Subnets: missing.map(({ zone, block }) => ({
            CidrBlock: block,
            SubnetName: resourceName(clusterId, zone),
            Zone: zone,
          })),
          Tags: vpcTags(clusterId),
        }),
      );
    }
    const subnets = await this.subnetsOf(vpcId);
    const subnetIds = spec.zones.map((zone) => {
      const id = subnets.find((s) => s.Zone === zone)?.SubnetId;
      if (id === undefined) throw new InvalidRequestError(`VPC ${vpcId} has no subnet in ${zone}`);
      return id;
    });
    return { vpcId, subnetIds };
  }

  async createSecurityGroup(clusterId: string, _vpcId: string): Promise<{ securityGroupId: string }> {
    let securityGroupId = (await this.securityGroupsOf(clusterId))[0];
    if (securityGroupId === undefined) {
      const created = await this.call("vpc", () =>
        this.vpc.CreateSecurityGroup({
          GroupName: resourceName(clusterId),
          GroupDescription: `NowScale cluster ${clusterId}: members only`,
          Tags: vpcTags(clusterId),
        }),
      );
      securityGroupId = created.SecurityGroup?.SecurityGroupId;
      if (securityGroupId === undefined)
        throw new InvalidRequestError("VPC CreateSecurityGroup answered no SecurityGroupId");
    }
    // Members reach each other (slurmctld, slurmd, munge, the agent); nothing else gets in, no public
    // SSH. A group without rules denies egress too, so all egress is allowed (packages, SSM, TAT).
    // ModifySecurityGroupPolicies replaces both directions at once: a retried step writes the same set.
    const id = securityGroupId;
    const policies: SecurityGroupPolicySet = {
      Ingress: [{ Protocol: "ALL", Port: "all", SecurityGroupId: id, Action: "ACCEPT" }],
      Egress: [{ Protocol: "ALL", Port: "all", CidrBlock: "0.0.0.0/0", Action: "ACCEPT" }],
    };
    await this.call("vpc", () =>
      this.vpc.ModifySecurityGroupPolicies({ SecurityGroupId: id, SecurityGroupPolicySet: policies }),
    );
    return { securityGroupId: id };
  }

  async createSecret(
    clusterId: string,
    kind: SecretKind,
    options: { vpcId?: string } = {},
  ): Promise<{ secretId: string; secretName: string }> {
    if (options.vpcId !== undefined) await this.refuseSharedVpc(clusterId, options.vpcId);
    const name = tencentSecretName(clusterId, kind);
    // munge wants 1024 random bytes (SSM takes binary as base64); the agent's key is text (docs/agent.md).
    const value =
      kind === "munge-key"
        ? { SecretBinary: randomBytes(1024).toString("base64") }
        : { SecretString: randomBytes(48).toString("base64") };
    try {
      await this.ssm.CreateSecret({
        SecretName: name,
        VersionId: SECRET_VERSION,
        Description: `NowScale cluster ${clusterId}: ${kind}`,
        ...value,
        ...(this.options.kmsKeyId === undefined ? {} : { KmsKeyId: this.options.kmsKeyId }),
        Tags: secretTags(clusterId, kind, options.vpcId),
      });
    } catch (error) {
      // A retried step: the secret it made is returned as it is (its value is never read back).
      if ((error as { code?: string }).code !== "ResourceInUse.SecretExists")
        throw fromTencentError("SSM", error);
    }
    return { secretId: name, secretName: name };
  }

  async validateNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    // One subnet per call: the API refuses a whole batch for one unknown id, and the error must name it.
    for (const [i, subnetId] of network.subnetIds.entries()) {
      const found = await this.call("vpc", () => this.vpc.DescribeSubnets({ SubnetIds: [subnetId] })).catch(
        (error: CloudProviderError) => {
          if (error.name === "NotFoundError") return undefined;
          throw error;
        },
      );
      const subnet = found?.SubnetSet?.find((s) => s.SubnetId === subnetId);
      if (subnet === undefined)
        throw new InvalidRequestError(`network.subnetIds[${i}]: subnet ${subnetId} does not exist`);
      if (subnet.VpcId !== network.vpcId)
        throw new InvalidRequestError(
          `network.subnetIds[${i}]: subnet ${subnetId} is in ${subnet.VpcId}, not in network.vpcId ${network.vpcId}`,
        );
    }
  }

  async deleteSecret(secretId: string): Promise<void> {
    // SSM deletes a disabled secret only; RecoveryWindowInDays 0 deletes it at once.
    await this.goneIsFine("SSM", () => this.ssm.DisableSecret({ SecretName: secretId }));
    await this.goneIsFine("SSM", () =>
      this.ssm.DeleteSecret({ SecretName: secretId, RecoveryWindowInDays: 0 }),
    );
  }

  async deleteUserSecrets(clusterId: string, recorded: readonly string[] = []): Promise<string[]> {
    // Tagged with the cluster and named as TencentUserSecrets names them (user-secrets.ts), and those the
    // record names (`tencent-ssm:<region>:<name>`): a listing that missed a user just made leaks nothing.
    const nameOf = (cluster: string, user: string) => `nowscale-${cluster}-users-${user}`;
    const prefix = nameOf(clusterId, "");
    const listed = (await this.secretsTagged(CLUSTER_TAG, clusterId)).filter((n) => n.startsWith(prefix));
    const named = recorded.flatMap(
      (id) => recordedUserSecretName(id, clusterId, "tencent-ssm", this.options.region, nameOf) ?? [],
    );
    const names = [...new Set([...listed, ...named])];
    for (const name of names) await this.deleteSecret(name);
    return names;
  }

  async deleteSecurityGroup(securityGroupId: string): Promise<void> {
    await this.goneIsFine("VPC", () => this.vpc.DeleteSecurityGroup({ SecurityGroupId: securityGroupId }));
  }

  async deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    // The subnets in the VPC now (a crashed step may have made one the ledger does not name), then the VPC.
    const present = await this.subnetsOf(network.vpcId).catch((error: CloudProviderError) => {
      if (error.name === "NotFoundError") return [];
      throw error;
    });
    const ids = new Set([...network.subnetIds, ...present.flatMap((s) => s.SubnetId ?? [])]);
    for (const subnetId of ids)
      await this.goneIsFine("VPC", () => this.vpc.DeleteSubnet({ SubnetId: subnetId }));
    await this.goneIsFine("VPC", () => this.vpc.DeleteVpc({ VpcId: network.vpcId }));
  }

  async list(clusterId: string): Promise<ClusterResourceRef[]> {
    const out: ClusterResourceRef[] = [];
    for (const vpcId of await this.vpcsOf(clusterId)) {
      const subnetIds = (await this.subnetsOf(vpcId)).flatMap((s) => s.SubnetId ?? []);
      out.push({ kind: "network", vpcId, subnetIds });
    }
    for (const securityGroupId of await this.securityGroupsOf(clusterId))
      out.push({ kind: "securityGroup", securityGroupId });
    for (const name of await this.secretsTagged(CLUSTER_TAG, clusterId)) {
      const kind = (["munge-key", "agent-hmac-key"] as const).find(
        (k) => tencentSecretName(clusterId, k) === name,
      );
      if (kind !== undefined) out.push({ kind: "secret", secretKind: kind, secretId: name });
    }
    return out;
  }

  /** One VPC holds one cluster: another cluster's secret scoped to the VPC refuses the request. */
  private async refuseSharedVpc(clusterId: string, vpcId: string): Promise<void> {
    const ours = new Set(
      (["munge-key", "agent-hmac-key"] as const).map((k) => tencentSecretName(clusterId, k)),
    );
    const other = (await this.secretsTagged(SECRET_VPC_TAG, vpcId)).find((name) => !ours.has(name));
    if (other !== undefined)
      throw new InvalidRequestError(
        `network.vpcId: ${vpcId} already holds the secrets of another NowScale cluster (${other}); a node ` +
          "reads the secrets of its own VPC's cluster, so one VPC holds one cluster",
      );
  }

  private async vpcsOf(clusterId: string): Promise<string[]> {
    const page = await this.call("vpc", () =>
      this.vpc.DescribeVpcs({ Filters: [tagFilter(clusterId)], Limit: String(PAGE) }),
    );
    return (page.VpcSet ?? []).flatMap((v) => v.VpcId ?? []);
  }

  private async subnetsOf(vpcId: string): Promise<Subnet[]> {
    const page = await this.call("vpc", () =>
      this.vpc.DescribeSubnets({ Filters: [{ Name: "vpc-id", Values: [vpcId] }], Limit: String(PAGE) }),
    );
    return page.SubnetSet ?? [];
  }

  private async securityGroupsOf(clusterId: string): Promise<string[]> {
    const page = await this.call("vpc", () =>
      this.vpc.DescribeSecurityGroups({ Filters: [tagFilter(clusterId)], Limit: String(PAGE) }),
    );
    return (page.SecurityGroupSet ?? []).map((g) => g.SecurityGroupId);
  }

  /** Names of the enabled or disabled secrets carrying the tag (never those pending deletion). */
  private async secretsTagged(key: string, value: string): Promise<string[]> {
    const names: string[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.call("ssm", () =>
        this.ssm.ListSecrets({
          Offset: offset,
          Limit: PAGE,
          TagFilters: [{ TagKey: key, TagValue: [value] }],
        }),
      );
      const batch = page.SecretMetadatas ?? [];
      for (const s of batch)
        if (s.SecretName !== undefined && s.Status !== "PendingDelete") names.push(s.SecretName);
      if (batch.length < PAGE || offset + PAGE >= (page.TotalCount ?? 0)) break;
    }
    return names;
  }

  private async call<T>(service: "vpc" | "ssm", operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw fromTencentError(service === "vpc" ? "VPC" : "SSM", error);
    }
  }

  private async goneIsFine(service: "VPC" | "SSM", operation: () => Promise<unknown>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      const mapped = fromTencentError(service, error);
      if (mapped.name === "NotFoundError") return;
      throw mapped;
    }
  }
}

/** The tags of every secret NowScale makes in SSM: the cluster's, the kind's, and the VPC whose master reads it. */
export function secretTags(
  clusterId: string,
  kind: string,
  vpcId?: string,
): { TagKey: string; TagValue: string }[] {
  return [
    { TagKey: CLUSTER_TAG, TagValue: clusterId },
    { TagKey: MANAGED_TAG, TagValue: "true" },
    { TagKey: SECRET_KIND_TAG, TagValue: kind },
    ...(vpcId === undefined ? [] : [{ TagKey: SECRET_VPC_TAG, TagValue: vpcId }]),
  ];
}

function resourceName(clusterId: string, zone?: string): string {
  // VPC names take 60 characters; the cluster id has up to 63, so the name is cut (the tag is the key).
  return (zone === undefined ? `nowscale-${clusterId}` : `nowscale-${clusterId}-${zone}`).slice(0, 60);
}

function vpcTags(clusterId: string): VpcTag[] {
  return [
    { Key: CLUSTER_TAG, Value: clusterId },
    { Key: MANAGED_TAG, Value: "true" },
  ];
}

function tagFilter(clusterId: string) {
  return { Name: `tag:${CLUSTER_TAG}`, Values: [clusterId] };
}
