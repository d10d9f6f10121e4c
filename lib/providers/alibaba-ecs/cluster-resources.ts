import { createHash, randomBytes } from "node:crypto";
import * as ecs from "@alicloud/ecs20140526";
import * as kms from "@alicloud/kms20160120";
import * as core from "@alicloud/openapi-core";
import * as teaUtil from "@alicloud/tea-util";
import * as vpc from "@alicloud/vpc20160428";
import { type Clock, systemClock } from "../../ports/clock.js";
import type {
  ClusterResourceRef,
  ClusterResources,
  CreatedNetwork,
  NetworkSpec,
  SecretKind,
} from "../../ports/cluster-resources.js";
import { secretName } from "../../ports/cluster-resources.js";
import { type CloudProviderError, InvalidRequestError, ServiceUnavailableError } from "../../ports/errors.js";
import { CLUSTER_TAG, MANAGED_TAG, SECRET_KIND_TAG, SECRET_VPC_TAG } from "../../ports/tags.js";
import { recordedUserSecretName, USER_SECRET_KIND, userSecretName } from "../../ports/user-secrets.js";
import { subnetBlocks } from "../aws-ec2/cluster-resources.js";
import { type AlibabaAccessKey, cjsDefault, clientConfig } from "./ecs-api.js";
import { fromAlibabaError } from "./errors.js";

const EcsClient = cjsDefault(ecs.default);
type EcsClient = InstanceType<typeof EcsClient>;
const VpcClient = cjsDefault(vpc.default);
type VpcClient = InstanceType<typeof VpcClient>;
const OpenApiClient = cjsDefault(core.default);
type OpenApiClient = InstanceType<typeof OpenApiClient>;

export interface AlibabaClusterResourcesOptions {
  /** e.g. "cn-hangzhou". */
  regionId: string;
  /** @default the SDK's default chain */
  credential?: AlibabaAccessKey;
  /**
   * The KMS key the secrets are encrypted with (Secrets Manager's `EncryptionKeyId`).
   * @default the account's default key for Secrets Manager
   */
  encryptionKeyId?: string;
  /** Overrides of the three services' endpoints, e.g. a test server ("127.0.0.1:8080"). */
  endpoints?: { ecs?: string; vpc?: string; kms?: string };
  /** @default "https" */
  protocol?: "https" | "http";
  /** How long createNetwork waits for a new VPC to become Available. @default 60000 */
  vpcReadyTimeoutMs?: number;
  clock?: Clock;
}

const KMS_VERSION = "2016-01-20";
const PAGE = 50;

/**
 * ClusterResources on Alibaba Cloud: a VPC with one VSwitch per zone (VPC 2016-04-28), a security group
 * whose members reach each other (ECS 2014-05-26), the munge key and the agent's HMAC key in KMS Secrets
 * Manager (KMS 2016-01-20). Every resource carries `nowscale:cluster` and `nowscale:managed` from its
 * creation call: Alibaba's tag keys take a colon (a key may not start with `aliyun` or `acs:`, nor hold
 * `http://`), and DescribeVpcs, DescribeSecurityGroups and ListTagResources filter on such a key as on any.
 *
 * Why Secrets Manager and not user data: a node reads its secrets at boot with its RAM role's STS
 * credentials from the metadata service (100.100.100.200, hardened mode), from KMS's VPC endpoint
 * (kms-vpc.<region>.aliyuncs.com); the values never appear in user data, which anyone allowed to
 * DescribeUserData can read, nor in the workflow's state.
 *
 * No NAT gateway or public address is made: KMS's VPC endpoint, Cloud Assistant and Alibaba's package
 * mirrors (mirrors.cloud.aliyuncs.com) are reached over Alibaba's internal network from any VSwitch.
 */
export class AlibabaClusterResources implements ClusterResources {
  private readonly ecs: EcsClient;
  private readonly vpc: VpcClient;
  private readonly kms: OpenApiClient;
  private readonly clock: Clock;

  constructor(private readonly options: AlibabaClusterResourcesOptions) {
    const base = {
      regionId: options.regionId,
      ...(options.credential === undefined ? {} : { credential: options.credential }),
      ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
    };
    const at = (endpoint: string | undefined) => (endpoint === undefined ? {} : { endpoint });
    this.ecs = new EcsClient(clientConfig({ ...base, ...at(options.endpoints?.ecs) }));
    this.vpc = new VpcClient(clientConfig({ ...base, ...at(options.endpoints?.vpc) }));
    // KMS's own SDK (1.x) signs with the old RPC signature; the generic client signs ACS3 like the others,
    // and the requests are still built from that SDK's models, so their field names are the API's.
    this.kms = new OpenApiClient(
      clientConfig({ ...base, endpoint: options.endpoints?.kms ?? `kms.${options.regionId}.aliyuncs.com` }),
    );
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The cluster's VPC and one VSwitch per zone, each found by tag (or by zone in the VPC) before it is
   * made, and each creation carrying a ClientToken derived from the cluster, so a retried step finishes
   * the network instead of making a second one. A new VPC is Pending for a few seconds: the VSwitches
   * wait for it (ServiceUnavailableError after `vpcReadyTimeoutMs`, which the workflow retries).
   */
  async createNetwork(clusterId: string, spec: NetworkSpec): Promise<CreatedNetwork> {
    const existing = (await this.vpcsTagged(clusterId))[0]?.vpcId;
    const vpcId =
      existing ??
      (
        await this.vpcCall((c) =>
          c.createVpc(
            new vpc.CreateVpcRequest({
              regionId: this.options.regionId,
              cidrBlock: spec.cidr,
              vpcName: `nowscale-${clusterId}`,
              description: `NowScale cluster ${clusterId}`,
              clientToken: token("vpc", clusterId),
              tag: tagList(clusterId).map((t) => new vpc.CreateVpcRequestTag(t)),
            }),
          ),
        )
      ).body?.vpcId;
    if (vpcId === undefined) throw fromAlibabaError("VPC", new Error("CreateVpc returned no VpcId"));
    await this.waitAvailable(vpcId);
    const switches = await this.vSwitches(vpcId);
    const blocks = subnetBlocks(spec.cidr, spec.zones.length);
    const subnetIds: string[] = [];
    for (const [i, zone] of spec.zones.entries()) {
      const found = switches.find((s) => s.zoneId === zone)?.vSwitchId;
      const made =
        found ??
        (
          await this.vpcCall((c) =>
            c.createVSwitch(
              new vpc.CreateVSwitchRequest({
                regionId: this.options.regionId,
                vpcId,
                zoneId: zone,
                cidrBlock: blocks[i],
                vSwitchName: `nowscale-${clusterId}-${zone}`,
                clientToken: token(`vsw:${zone}`, clusterId),
                tag: tagList(clusterId).map((t) => new vpc.CreateVSwitchRequestTag(t)),
              }),
            ),
          )
        ).body?.vSwitchId;
      if (made === undefined) throw fromAlibabaError("VPC", new Error("CreateVSwitch returned no VSwitchId"));
      subnetIds.push(made);
    }
    return { vpcId, subnetIds };
  }

  /**
   * The user's own network: every VSwitch exists and is in the VPC. Nothing else is asked of it, since
   * the nodes reach KMS, Cloud Assistant and the package mirrors over Alibaba's internal network from any
   * VSwitch (the master's agent bundle, when it is fetched from outside Alibaba Cloud, needs a NAT gateway
   * or a public address: the user's to provide). Throws InvalidRequestError naming network.subnetIds[i].
   */
  async validateNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    const switches = await this.vSwitches(network.vpcId);
    for (const [i, id] of network.subnetIds.entries()) {
      if (!switches.some((s) => s.vSwitchId === id))
        throw new InvalidRequestError(
          `network.subnetIds[${i}]: VSwitch ${id} does not exist in ${network.vpcId}`,
        );
    }
  }

  /**
   * A security group of type normal in the VPC, with one rule: everything from the group itself. ECS
   * groups let every outbound call through and nothing in but their rules: no public SSH.
   */
  async createSecurityGroup(clusterId: string, vpcId: string): Promise<{ securityGroupId: string }> {
    const found = (await this.groupsTagged(clusterId, vpcId))[0];
    const securityGroupId =
      found ??
      (
        await this.ecsCall((c) =>
          c.createSecurityGroup(
            new ecs.CreateSecurityGroupRequest({
              regionId: this.options.regionId,
              vpcId,
              securityGroupName: `nowscale-${clusterId}`,
              description: `NowScale cluster ${clusterId}: members only`,
              securityGroupType: "normal",
              clientToken: token(`sg:${vpcId}`, clusterId),
              tag: tagList(clusterId).map((t) => new ecs.CreateSecurityGroupRequestTag(t)),
            }),
          ),
        )
      ).body?.securityGroupId;
    if (securityGroupId === undefined)
      throw fromAlibabaError("ECS", new Error("CreateSecurityGroup returned no SecurityGroupId"));
    // Members reach each other (slurmctld, slurmd, munge, the agent); an existing rule is accepted again.
    await this.ecsCall((c) =>
      c.authorizeSecurityGroup(
        new ecs.AuthorizeSecurityGroupRequest({
          regionId: this.options.regionId,
          securityGroupId,
          permissions: [
            new ecs.AuthorizeSecurityGroupRequestPermissions({
              ipProtocol: "ALL",
              portRange: "-1/-1",
              sourceGroupId: securityGroupId,
              policy: "accept",
              description: "NowScale: cluster members",
            }),
          ],
        }),
      ),
    );
    return { securityGroupId };
  }

  /**
   * The secret in KMS Secrets Manager, named `nowscale/<cluster>/<kind>` (its id is its name: KMS
   * addresses secrets by name), with a fresh random value: the munge key as 1024 binary bytes, the agent's
   * key as text. Tagged with the cluster, the kind and the VPC, which the nodes' RAM policy matches.
   */
  async createSecret(
    clusterId: string,
    kind: SecretKind,
    options: { vpcId?: string } = {},
  ): Promise<{ secretId: string; secretName: string }> {
    const name = secretName(clusterId, kind);
    const found = await this.kmsCall("DescribeSecret", new kms.DescribeSecretRequest({ secretName: name }), {
      notFound: true,
    });
    if (found !== undefined) return { secretId: name, secretName: name };
    if (options.vpcId !== undefined) await this.refuseSharedVpc(clusterId, options.vpcId);
    const value =
      kind === "munge-key"
        ? { secretData: randomBytes(1024).toString("base64"), secretDataType: "binary" }
        : { secretData: randomBytes(48).toString("base64"), secretDataType: "text" };
    const tags = {
      [CLUSTER_TAG]: clusterId,
      [MANAGED_TAG]: "true",
      [SECRET_KIND_TAG]: kind,
      ...(options.vpcId === undefined ? {} : { [SECRET_VPC_TAG]: options.vpcId }),
    };
    await this.kmsCall(
      "CreateSecret",
      new kms.CreateSecretRequest({
        secretName: name,
        versionId: "v1",
        description: `NowScale ${kind} of cluster ${clusterId}`,
        ...value,
        ...(this.options.encryptionKeyId === undefined
          ? {}
          : { encryptionKeyId: this.options.encryptionKeyId }),
        tags: JSON.stringify(Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue }))),
      }),
    );
    return { secretId: name, secretName: name };
  }

  /** One cluster per VPC, as on AWS: another cluster's secret scoped to the VPC refuses the second. */
  private async refuseSharedVpc(clusterId: string, vpcId: string): Promise<void> {
    for (const s of await this.secrets()) {
      const other = s.tags.get(CLUSTER_TAG);
      if (s.tags.get(SECRET_VPC_TAG) !== vpcId || other === undefined || other === clusterId) continue;
      throw new InvalidRequestError(
        `network.vpcId: ${vpcId} already holds NowScale cluster ${other}; a node reads the secrets of ` +
          "its own VPC's cluster, so two clusters in one VPC could read each other's munge key: choose " +
          `another VPC (or let NowScale create one with network.cidr), or delete cluster ${other} first`,
      );
    }
  }

  async deleteSecret(secretId: string): Promise<void> {
    await this.kmsCall(
      "DeleteSecret",
      new kms.DeleteSecretRequest({ secretName: secretId, forceDeleteWithoutRecovery: "true" }),
      { notFound: true },
    );
  }

  async deleteUserSecrets(clusterId: string, recorded: readonly string[] = []): Promise<string[]> {
    // Tagged with the cluster and the kind AlibabaUserSecrets gives them (user-secrets.ts), and those the
    // record names (`alibaba-kms:<region>:<name>`): a listing that missed a user just made leaks nothing.
    const listed = (await this.secrets())
      .filter(
        (s) => s.tags.get(CLUSTER_TAG) === clusterId && s.tags.get(SECRET_KIND_TAG) === USER_SECRET_KIND,
      )
      .map((s) => s.name);
    const named = recorded.flatMap(
      (id) =>
        recordedUserSecretName(id, clusterId, "alibaba-kms", this.options.regionId, userSecretName) ?? [],
    );
    const names = [...new Set([...listed, ...named])];
    for (const name of names) await this.deleteSecret(name);
    return names;
  }

  async deleteSecurityGroup(securityGroupId: string): Promise<void> {
    await this.goneIsFine("ECS", () =>
      this.ecs.deleteSecurityGroup(
        new ecs.DeleteSecurityGroupRequest({ regionId: this.options.regionId, securityGroupId }),
      ),
    );
  }

  /**
   * The VSwitches (every one in the VPC, so what a crashed attempt made goes too), then the VPC. A
   * VSwitch whose instances are still being released, or a VPC whose VSwitches are still going, answers
   * DependencyViolation: ServiceUnavailableError, which the workflow waits for and retries.
   */
  async deleteNetwork(network: { vpcId: string; subnetIds: readonly string[] }): Promise<void> {
    let switches: { vSwitchId: string }[] = [];
    try {
      switches = await this.vSwitches(network.vpcId);
    } catch (error) {
      if ((error as CloudProviderError).kind !== "NotFound") throw error;
    }
    const ids = new Set([...network.subnetIds, ...switches.map((s) => s.vSwitchId)]);
    for (const vSwitchId of ids)
      await this.goneIsFine("VPC", () =>
        this.vpc.deleteVSwitch(new vpc.DeleteVSwitchRequest({ regionId: this.options.regionId, vSwitchId })),
      );
    await this.goneIsFine("VPC", () =>
      this.vpc.deleteVpc(new vpc.DeleteVpcRequest({ regionId: this.options.regionId, vpcId: network.vpcId })),
    );
  }

  async list(clusterId: string): Promise<ClusterResourceRef[]> {
    const refs: ClusterResourceRef[] = [];
    for (const { vpcId } of await this.vpcsTagged(clusterId)) {
      const switches = await this.vSwitches(vpcId);
      refs.push({ kind: "network", vpcId, subnetIds: switches.map((s) => s.vSwitchId) });
    }
    for (const securityGroupId of await this.groupsTagged(clusterId))
      refs.push({ kind: "securityGroup", securityGroupId });
    for (const s of await this.secrets()) {
      const kind = s.tags.get(SECRET_KIND_TAG);
      if (s.tags.get(CLUSTER_TAG) !== clusterId || (kind !== "munge-key" && kind !== "agent-hmac-key"))
        continue;
      refs.push({ kind: "secret", secretKind: kind, secretId: s.name });
    }
    return refs;
  }

  private async vpcsTagged(clusterId: string): Promise<{ vpcId: string; status: string }[]> {
    const out: { vpcId: string; status: string }[] = [];
    for (let page = 1; ; page++) {
      const body = (
        await this.vpcCall((c) =>
          c.describeVpcs(
            new vpc.DescribeVpcsRequest({
              regionId: this.options.regionId,
              tag: [new vpc.DescribeVpcsRequestTag({ key: CLUSTER_TAG, value: clusterId })],
              pageNumber: page,
              pageSize: PAGE,
            }),
          ),
        )
      ).body;
      for (const v of body?.vpcs?.vpc ?? [])
        if (v.vpcId !== undefined) out.push({ vpcId: v.vpcId, status: v.status ?? "" });
      if (page * PAGE >= (body?.totalCount ?? 0)) return out;
    }
  }

  private async waitAvailable(vpcId: string): Promise<void> {
    const deadline = this.clock.now() + (this.options.vpcReadyTimeoutMs ?? 60_000);
    for (;;) {
      const body = (
        await this.vpcCall((c) =>
          c.describeVpcs(new vpc.DescribeVpcsRequest({ regionId: this.options.regionId, vpcId })),
        )
      ).body;
      const status = body?.vpcs?.vpc?.[0]?.status;
      if (status === "Available") return;
      if (this.clock.now() >= deadline)
        throw new ServiceUnavailableError(`VPC ${vpcId} is still ${status ?? "not listed"}`);
      await this.clock.sleep(2_000);
    }
  }

  /**
   * Every VSwitch of a VPC with its zone (DescribeVSwitches, paged): the control plane gives a cluster's
   * compute launches their zone's VSwitch from it. Throws CloudProviderError.
   */
  async vSwitches(vpcId: string): Promise<{ vSwitchId: string; zoneId: string }[]> {
    const out: { vSwitchId: string; zoneId: string }[] = [];
    for (let page = 1; ; page++) {
      const body = (
        await this.vpcCall((c) =>
          c.describeVSwitches(
            new vpc.DescribeVSwitchesRequest({
              regionId: this.options.regionId,
              vpcId,
              pageNumber: page,
              pageSize: PAGE,
            }),
          ),
        )
      ).body;
      for (const s of body?.vSwitches?.vSwitch ?? [])
        if (s.vSwitchId !== undefined) out.push({ vSwitchId: s.vSwitchId, zoneId: s.zoneId ?? "" });
      if (page * PAGE >= (body?.totalCount ?? 0)) return out;
    }
  }

  private async groupsTagged(clusterId: string, vpcId?: string): Promise<string[]> {
    const out: string[] = [];
    let nextToken: string | undefined;
    do {
      const body = (
        await this.ecsCall((c) =>
          c.describeSecurityGroups(
            new ecs.DescribeSecurityGroupsRequest({
              regionId: this.options.regionId,
              tag: [new ecs.DescribeSecurityGroupsRequestTag({ key: CLUSTER_TAG, value: clusterId })],
              maxResults: PAGE,
              ...(vpcId === undefined ? {} : { vpcId }),
              ...(nextToken ? { nextToken } : {}),
            }),
          ),
        )
      ).body;
      for (const g of body?.securityGroups?.securityGroup ?? [])
        if (g.securityGroupId !== undefined) out.push(g.securityGroupId);
      nextToken = body?.nextToken;
    } while (nextToken);
    return out;
  }

  /**
   * Every secret with its tags, every page. ListSecrets of this SDK's model has no tag filter (the API's
   * `Filters` came later), so the tags are matched here; a region holds few secrets.
   */
  private async secrets(): Promise<{ name: string; tags: Map<string, string> }[]> {
    const out: { name: string; tags: Map<string, string> }[] = [];
    for (let page = 1; ; page++) {
      const body = (await this.kmsCall(
        "ListSecrets",
        new kms.ListSecretsRequest({ fetchTags: "true", pageNumber: page, pageSize: PAGE }),
      )) as KmsListSecrets;
      for (const s of body.SecretList?.Secret ?? []) {
        if (s.SecretName === undefined) continue;
        const tags = new Map((s.Tags?.Tag ?? []).map((t) => [t.TagKey ?? "", t.TagValue ?? ""] as const));
        out.push({ name: s.SecretName, tags });
      }
      if (page * PAGE >= (body.TotalCount ?? 0)) return out;
    }
  }

  /**
   * One KMS call through the generic client: the request model's own map is the query (its names are
   * the API's), the answer is the JSON body. With `notFound`, a missing secret answers undefined. Also
   * the users' secrets' calls (user-secrets.ts). A CloudProviderError when KMS refuses or fails.
   */
  async kmsCall(
    action: string,
    request: { toMap(): Record<string, unknown> },
    options: { notFound?: boolean } = {},
  ): Promise<Record<string, unknown> | undefined> {
    const params = new core.$OpenApiUtil.Params({
      action,
      version: KMS_VERSION,
      protocol: "HTTPS",
      pathname: "/",
      method: "POST",
      authType: "AK",
      style: "RPC",
      reqBodyType: "formData",
      bodyType: "json",
    });
    const query = core.OpenApiUtil.query(request.toMap());
    try {
      const answer = await this.kms.callApi(
        params,
        new core.$OpenApiUtil.OpenApiRequest({ query }),
        new teaUtil.RuntimeOptions({}) as unknown as Parameters<OpenApiClient["callApi"]>[2],
      );
      return (answer.body ?? {}) as Record<string, unknown>;
    } catch (error) {
      const mapped = fromAlibabaError("KMS", error);
      if (options.notFound === true && mapped.kind === "NotFound") return undefined;
      throw mapped;
    }
  }

  private async ecsCall<T>(call: (client: EcsClient) => Promise<T>): Promise<T> {
    try {
      return await call(this.ecs);
    } catch (error) {
      throw fromAlibabaError("ECS", error);
    }
  }

  private async vpcCall<T>(call: (client: VpcClient) => Promise<T>): Promise<T> {
    try {
      return await call(this.vpc);
    } catch (error) {
      throw fromAlibabaError("VPC", error);
    }
  }

  /** Deleting what is already gone succeeds. */
  private async goneIsFine(service: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      const mapped = fromAlibabaError(service, error);
      if (mapped.kind !== "NotFound") throw mapped;
    }
  }
}

interface KmsListSecrets {
  TotalCount?: number;
  SecretList?: {
    Secret?: { SecretName?: string; Tags?: { Tag?: { TagKey?: string; TagValue?: string }[] } }[];
  };
}

function tagList(clusterId: string): { key: string; value: string }[] {
  return [
    { key: CLUSTER_TAG, value: clusterId },
    { key: MANAGED_TAG, value: "true" },
  ];
}

/** A ClientToken (at most 64 ASCII characters) fixed per cluster and purpose: a retried create is one. */
function token(purpose: string, clusterId: string): string {
  return createHash("sha256").update(`nowscale:${purpose}:${clusterId}`).digest("hex").slice(0, 40);
}
