import * as credentials from "@alicloud/credentials";
import * as ecs from "@alicloud/ecs20140526";
import { $OpenApiUtil } from "@alicloud/openapi-core";
import { alibabaCatalog } from "../../core/catalogs/alibaba.js";
import type { InstanceCatalog } from "../../core/model.js";
import type { CloudInstance, InstanceState } from "../../ports/cloud-provider.js";
import { InvalidRequestError } from "../../ports/errors.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../ports/tags.js";
import type { CloudApi, RunInstancesInput } from "../shared/cloud-api.js";
import { fromEcsError } from "./errors.js";

/**
 * Both SDKs are CommonJS with `exports.default = Class`. Node's ESM loader exposes that as
 * `module.default.default`; bundlers and vitest unwrap one level. Accept either.
 */
export function cjsDefault<T>(namespaceDefault: { default: T } | T): T {
  const inner = (namespaceDefault as { default?: T }).default;
  return inner ?? (namespaceDefault as T);
}
const EcsClient = cjsDefault(ecs.default);
type EcsClient = InstanceType<typeof EcsClient>;
const Credential = cjsDefault(credentials.default);

/** A secret passed in, e.g. read from Secrets Manager under a customer-managed KMS key. */
export interface AlibabaAccessKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

export interface EcsApiOptions {
  /** e.g. "cn-hangzhou". */
  regionId: string;
  /** @default the SDK's default chain (environment, profile file, ECS RAM role, OIDC) */
  credential?: AlibabaAccessKey;
  securityGroupIds?: string[];
  /**
   * The cluster's network, one VSwitch per zone: a candidate without its own VSwitch (subnetId) gets its
   * zone's. Without it, such a candidate lands in the region's default VPC, which many regions and
   * accounts do not have (RunInstances then fails), and which is not the cluster's network anyway.
   */
  vSwitches?: readonly { zoneId: string; vSwitchId: string }[];
  /** RAM role the nodes assume (the ECS counterpart of an instance profile). */
  ramRoleName?: string;
  keyPairName?: string;
  /** Override the API endpoint, e.g. a VPC endpoint or a test server ("127.0.0.1:8080"). */
  endpoint?: string;
  /** @default "https" */
  protocol?: "https" | "http";
  /** @default 30000 */
  readTimeoutMs?: number;
  /** @default the built-in Alibaba catalog (prices vary by region and are left out) */
  catalog?: InstanceCatalog;
  /** A configured client (tests); overrides the connection settings above. */
  client?: EcsClient;
}

const PAGE = 100;

/** ECS 2014-05-26: RunInstances, DeleteInstances, DescribeInstances, DescribeZones. */
export class EcsApi implements CloudApi {
  readonly cloud = "alibaba";
  readonly maxIdsPerCall = 100;
  /** InstanceName takes 2 to 128 characters. */
  readonly maxNameLength = 128;
  readonly client: EcsClient;

  constructor(private readonly options: EcsApiOptions) {
    this.client = options.client ?? new EcsClient(clientConfig(options));
  }

  async instanceTypes(): Promise<InstanceCatalog> {
    return this.options.catalog ?? alibabaCatalog;
  }

  /** DescribeZones of the region, without the per-zone resource lists (Verbose false). */
  async zones(): Promise<string[]> {
    const out = await this.call((c) =>
      c.describeZones(new ecs.DescribeZonesRequest({ regionId: this.options.regionId, verbose: false })),
    );
    return (out.body?.zones?.zone ?? []).flatMap((z) => (z.zoneId === undefined ? [] : [z.zoneId]));
  }

  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    const request = this.runRequest(input);
    const response = await this.call((c) => c.runInstances(request));
    const { candidate } = input;
    const subnetId = request.vSwitchId;
    // RunInstances answers with ids only; the rest is what was asked for.
    return (response.body?.instanceIdSets?.instanceIdSet ?? []).map((id) => ({
      id,
      instanceType: candidate.instanceType,
      zone: candidate.zone,
      chargeType: candidate.chargeType,
      state: "PENDING" as const,
      tags: { ...input.tags },
      ...(subnetId === undefined ? {} : { subnetId }),
      ...withClusterAndQueue(input.tags),
    }));
  }

  /** The exact RunInstances request. */
  runRequest(input: RunInstancesInput): ecs.RunInstancesRequest {
    const { candidate } = input;
    const vSwitchId = candidate.subnetId ?? this.vSwitchOf(candidate.zone);
    return new ecs.RunInstancesRequest({
      regionId: this.options.regionId,
      zoneId: candidate.zone,
      instanceType: candidate.instanceType,
      imageId: input.imageId,
      amount: input.maxCount,
      minAmount: input.minCount,
      clientToken: input.clientToken,
      instanceName: input.namePrefix,
      instanceChargeType: "PostPaid",
      // SpotAsPriceGo bids the market price, capped at the on-demand price: no price to maintain.
      spotStrategy: candidate.chargeType === "SPOT" ? "SpotAsPriceGo" : "NoSpot",
      // IMDSv2 only (security hardening mode): metadata needs a session token.
      httpEndpoint: "enabled",
      httpTokens: "required",
      tag: Object.entries(input.tags).map(([key, value]) => new ecs.RunInstancesRequestTag({ key, value })),
      ...(vSwitchId === undefined ? {} : { vSwitchId }),
      ...(this.options.securityGroupIds === undefined
        ? {}
        : { securityGroupIds: this.options.securityGroupIds }),
      ...(this.options.ramRoleName === undefined ? {} : { ramRoleName: this.options.ramRoleName }),
      ...(this.options.keyPairName === undefined ? {} : { keyPairName: this.options.keyPairName }),
      ...(input.userData === undefined
        ? {}
        : { userData: Buffer.from(input.userData, "utf8").toString("base64") }),
    });
  }

  /**
   * The cluster network's VSwitch in `zone`; undefined without a cluster network. Throws
   * InvalidRequestError naming the zone when the network has none there: an instance outside the
   * cluster's VPC could not join its security group.
   */
  private vSwitchOf(zone: string): string | undefined {
    const network = this.options.vSwitches;
    if (network === undefined) return undefined;
    const found = network.find((v) => v.zoneId === zone)?.vSwitchId;
    if (found === undefined)
      throw new InvalidRequestError(
        `zone: the cluster's network has no VSwitch in ${zone} (it has ${network.map((v) => v.zoneId).join(", ") || "none"})`,
      );
    return found;
  }

  /** Force: running instances are released without a stop first (they are disposable nodes). */
  async terminateInstances(ids: readonly string[]): Promise<void> {
    await this.call((c) =>
      c.deleteInstances(
        new ecs.DeleteInstancesRequest({
          regionId: this.options.regionId,
          instanceId: [...ids],
          force: true,
        }),
      ),
    );
  }

  async describeInstances(ids: readonly string[]): Promise<CloudInstance[]> {
    if (ids.length === 0) return [];
    return this.describeAll({ instanceIds: JSON.stringify(ids) });
  }

  async listInstancesByTag(key: string, value: string): Promise<CloudInstance[]> {
    return this.describeAll({ tag: [new ecs.DescribeInstancesRequestTag({ key, value })] });
  }

  private async describeAll(filter: Partial<ecs.DescribeInstancesRequest>): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    let nextToken: string | undefined;
    do {
      const request = new ecs.DescribeInstancesRequest({
        regionId: this.options.regionId,
        maxResults: PAGE,
        ...filter,
        ...(nextToken ? { nextToken } : {}),
      });
      const response = await this.call((c) => c.describeInstances(request));
      out.push(...(response.body?.instances?.instance ?? []).map(toCloudInstance));
      nextToken = response.body?.nextToken;
    } while (nextToken);
    return out;
  }

  private async call<T>(operation: (client: EcsClient) => Promise<T>): Promise<T> {
    try {
      return await operation(this.client);
    } catch (error) {
      throw fromEcsError(error);
    }
  }
}

/** The SDK client settings: credential, region, endpoint, protocol and timeouts. */
export function clientConfig(
  options: Pick<EcsApiOptions, "credential" | "regionId" | "endpoint" | "protocol" | "readTimeoutMs">,
): $OpenApiUtil.Config {
  const key = options.credential;
  const credential = new Credential(
    key === undefined
      ? undefined
      : new credentials.Config({
          type: key.securityToken === undefined ? "access_key" : "sts",
          accessKeyId: key.accessKeyId,
          accessKeySecret: key.accessKeySecret,
          ...(key.securityToken === undefined ? {} : { securityToken: key.securityToken }),
        }),
  );
  return new $OpenApiUtil.Config({
    credential,
    regionId: options.regionId,
    protocol: options.protocol ?? "https",
    readTimeout: options.readTimeoutMs ?? 30_000,
    connectTimeout: 5_000,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  });
}

const STATES: Record<string, InstanceState> = {
  Pending: "PENDING",
  Starting: "PENDING",
  Running: "RUNNING",
  Stopping: "STOPPING",
  Stopped: "STOPPED",
};

export function toCloudInstance(instance: ecs.DescribeInstancesResponseBodyInstancesInstance): CloudInstance {
  const tags: Record<string, string> = {};
  for (const t of instance.tags?.tag ?? []) if (t.tagKey !== undefined) tags[t.tagKey] = t.tagValue ?? "";
  const privateIp = instance.vpcAttributes?.privateIpAddress?.ipAddress?.[0];
  const subnetId = instance.vpcAttributes?.vSwitchId;
  // ECS writes "2026-01-01T00:00Z": minutes only, which Date.parse reads.
  const launchedAt = instance.creationTime === undefined ? Number.NaN : Date.parse(instance.creationTime);
  const spot = instance.spotStrategy !== undefined && instance.spotStrategy !== "NoSpot";
  return {
    id: instance.instanceId ?? "",
    instanceType: instance.instanceType ?? "",
    zone: instance.zoneId ?? "",
    chargeType: spot ? "SPOT" : "ON_DEMAND",
    state: STATES[instance.status ?? ""] ?? "UNKNOWN",
    tags,
    ...(subnetId ? { subnetId } : {}),
    ...(privateIp === undefined ? {} : { privateIp }),
    ...(Number.isNaN(launchedAt) ? {} : { launchedAt }),
    ...withClusterAndQueue(tags),
  };
}

function withClusterAndQueue(tags: Readonly<Record<string, string>>): { clusterId?: string; queue?: string } {
  const clusterId = tags[CLUSTER_TAG];
  const queue = tags[QUEUE_TAG];
  return { ...(clusterId === undefined ? {} : { clusterId }), ...(queue === undefined ? {} : { queue }) };
}
