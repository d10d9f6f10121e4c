import {
  type _InstanceType,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  type Filter,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { awsCatalog } from "../../core/catalogs/aws.js";
import type { InstanceCatalog, InstanceTypeInfo } from "../../core/model.js";
import type { CloudInstance, InstanceState } from "../../ports/cloud-provider.js";
import { DEFAULT_IMAGE } from "../../ports/cloud-provider.js";
import { InvalidRequestError } from "../../ports/errors.js";
import { CLUSTER_TAG, QUEUE_TAG, tagsToList } from "../../ports/tags.js";
import type { CloudApi, RunInstancesInput } from "../shared/cloud-api.js";
import { architectureOf, defaultImageParameter } from "./default-image.js";
import { fromEc2Error } from "./errors.js";

export interface Ec2ApiOptions {
  /** A configured client; else one for `region` with the SDK's default credential chain. */
  client?: EC2Client;
  region?: string;
  /** Security groups for the instances' network interface. */
  securityGroupIds?: string[];
  /**
   * The cluster's subnets: a candidate without a subnet goes to the one of these in its zone (without
   * any, EC2 would use the default VPC, where the cluster's security group does not exist).
   */
  subnetIds?: string[];
  /** The node role's instance profile: the only role NowScale may pass (iam:PassRole is scoped to it). */
  instanceProfileArn?: string;
  keyName?: string;
  /** Types instanceTypes() describes. @default the types of the built-in AWS catalog */
  instanceTypes?: string[];
}

const LIVE_STATES = ["pending", "running", "stopping", "stopped"];

/**
 * EC2 through RunInstances (not CreateFleet; docs/providers.md says why), TerminateInstances,
 * DescribeInstances, DescribeInstanceTypeOfferings, DescribeInstanceTypes and DescribeAvailabilityZones.
 */
export class Ec2Api implements CloudApi {
  readonly cloud = "aws";
  readonly maxIdsPerCall = 100;
  /** The Name tag takes 256 characters; 128 gives the same names as on CVM and ECS. */
  readonly maxNameLength = 128;
  readonly client: EC2Client;

  constructor(private readonly options: Ec2ApiOptions = {}) {
    // The shared retry owns backoff and its bounds; the SDK's own retries would multiply them.
    this.client =
      options.client ??
      new EC2Client({ maxAttempts: 1, ...(options.region === undefined ? {} : { region: options.region }) });
  }

  /**
   * The wanted types this region offers, described. DescribeInstanceTypes fails as a whole when one
   * named type does not exist in the region, so the region's offerings are listed first (every page)
   * and only offered types are described, 100 per call, every page.
   */
  async instanceTypes(): Promise<InstanceCatalog> {
    const wanted = this.options.instanceTypes ?? Object.keys(awsCatalog);
    const offered = new Set<string>();
    let offeringsToken: string | undefined;
    do {
      const page = await this.call((c) =>
        c.send(
          new DescribeInstanceTypeOfferingsCommand({
            LocationType: "region",
            MaxResults: 1000,
            ...(offeringsToken === undefined ? {} : { NextToken: offeringsToken }),
          }),
        ),
      );
      for (const o of page.InstanceTypeOfferings ?? [])
        if (o.InstanceType !== undefined) offered.add(o.InstanceType);
      offeringsToken = page.NextToken;
    } while (offeringsToken);
    const names = [...new Set(wanted)].filter((n) => offered.has(n));
    const catalog: Record<string, InstanceTypeInfo> = {};
    for (let start = 0; start < names.length; start += 100) {
      let nextToken: string | undefined;
      do {
        const page = await this.call((c) =>
          c.send(
            new DescribeInstanceTypesCommand({
              InstanceTypes: names.slice(start, start + 100) as _InstanceType[],
              ...(nextToken === undefined ? {} : { NextToken: nextToken }),
            }),
          ),
        );
        for (const t of page.InstanceTypes ?? []) {
          if (t.InstanceType === undefined) continue;
          const price = awsCatalog[t.InstanceType]?.pricePerHour;
          catalog[t.InstanceType] = {
            vcpus: t.VCpuInfo?.DefaultVCpus ?? 0,
            memoryMiB: t.MemoryInfo?.SizeInMiB ?? 0,
            gpus: (t.GpuInfo?.Gpus ?? []).reduce((sum, g) => sum + (g.Count ?? 0), 0),
            ...(price === undefined ? {} : { pricePerHour: price }),
          };
        }
        nextToken = page.NextToken;
      } while (nextToken);
    }
    return catalog;
  }

  /**
   * DescribeAvailabilityZones without AllAvailabilityZones answers the region's zones the account may use
   * (the opted-in Local Zones among them); only those `available` are kept.
   */
  async zones(): Promise<string[]> {
    const out = await this.call((c) => c.send(new DescribeAvailabilityZonesCommand({})));
    return (out.AvailabilityZones ?? []).flatMap((z) =>
      z.ZoneName !== undefined && (z.State === undefined || z.State === "available") ? [z.ZoneName] : [],
    );
  }

  async runInstances(input: RunInstancesInput): Promise<CloudInstance[]> {
    const subnetId = input.candidate.subnetId ?? (await this.subnetIn(input.candidate.zone));
    // The default image: EC2 resolves the public parameter of the type's architecture at launch.
    const imageId =
      input.imageId === DEFAULT_IMAGE
        ? `resolve:ssm:${defaultImageParameter(await this.architecture(input.candidate.instanceType))}`
        : input.imageId;
    const request = this.runRequest({
      ...input,
      imageId,
      ...(subnetId === undefined ? {} : { candidate: { ...input.candidate, subnetId } }),
    });
    const output = await this.call((c) => c.send(new RunInstancesCommand(request)));
    return (output.Instances ?? []).map(toCloudInstance);
  }

  private readonly architectures = new Map<string, "amd64" | "arm64">();

  private async architecture(instanceType: string): Promise<"amd64" | "arm64"> {
    const known = this.architectures.get(instanceType);
    if (known !== undefined) return known;
    const found = await architectureOf(this.client, instanceType);
    this.architectures.set(instanceType, found);
    return found;
  }

  private subnetZones: Promise<Map<string, string>> | undefined;

  /**
   * The cluster's subnet in `zone` (the first, in the order given), read once per adapter. Undefined
   * without cluster subnets; InvalidRequestError when none of them is in the zone.
   */
  private async subnetIn(zone: string): Promise<string | undefined> {
    const ids = this.options.subnetIds ?? [];
    if (ids.length === 0) return undefined;
    this.subnetZones ??= this.call((c) => c.send(new DescribeSubnetsCommand({ SubnetIds: ids })))
      .then((out) => {
        const zones = new Map<string, string>();
        for (const s of out.Subnets ?? [])
          if (s.SubnetId !== undefined && s.AvailabilityZone !== undefined)
            zones.set(s.SubnetId, s.AvailabilityZone);
        return zones;
      })
      .catch((error: unknown) => {
        this.subnetZones = undefined; // a failed read is tried again next launch
        throw error;
      });
    const zones = await this.subnetZones;
    const found = ids.find((id) => zones.get(id) === zone);
    if (found === undefined)
      throw new InvalidRequestError(`the cluster has no subnet in ${zone} (its subnets: ${ids.join(", ")})`);
    return found;
  }

  /** The exact RunInstances request; exported through the class for tests and docs. */
  runRequest(input: RunInstancesInput): RunInstancesCommandInput {
    const { candidate } = input;
    const tags = tagsToList({ Name: input.namePrefix, ...input.tags });
    return {
      ImageId: input.imageId,
      InstanceType: candidate.instanceType as _InstanceType,
      MinCount: input.minCount,
      MaxCount: input.maxCount,
      ClientToken: input.clientToken,
      // With a subnet the zone is the subnet's; naming both is allowed and catches a misconfigured pair.
      Placement: { AvailabilityZone: candidate.zone },
      ...(candidate.subnetId === undefined ? {} : { SubnetId: candidate.subnetId }),
      ...(this.options.securityGroupIds === undefined
        ? {}
        : { SecurityGroupIds: this.options.securityGroupIds }),
      ...(this.options.instanceProfileArn === undefined
        ? {}
        : { IamInstanceProfile: { Arn: this.options.instanceProfileArn } }),
      ...(this.options.keyName === undefined ? {} : { KeyName: this.options.keyName }),
      ...(input.userData === undefined
        ? {}
        : { UserData: Buffer.from(input.userData, "utf8").toString("base64") }),
      // IMDSv2 only; hop limit 1 keeps the credentials away from containers on the node.
      MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1 },
      // Every resource the launch creates carries the tags: the stack's policy authorizes RunInstances on
      // each of them only with nowscale:managed in the request (lib/infra/permissions.ts).
      TagSpecifications: [
        { ResourceType: "instance", Tags: tags },
        { ResourceType: "volume", Tags: tags },
        { ResourceType: "network-interface", Tags: tags },
        ...(candidate.chargeType === "SPOT"
          ? [{ ResourceType: "spot-instances-request" as const, Tags: tags }]
          : []),
      ],
      ...(candidate.chargeType === "SPOT"
        ? {
            InstanceMarketOptions: {
              MarketType: "spot",
              SpotOptions: { SpotInstanceType: "one-time", InstanceInterruptionBehavior: "terminate" },
            },
          }
        : {}),
    };
  }

  async terminateInstances(ids: readonly string[]): Promise<void> {
    await this.call((c) => c.send(new TerminateInstancesCommand({ InstanceIds: [...ids] })));
  }

  /** By the instance-id filter, not InstanceIds: the filter leaves unknown ids out instead of failing. */
  async describeInstances(ids: readonly string[]): Promise<CloudInstance[]> {
    if (ids.length === 0) return [];
    return this.describeAll([{ Name: "instance-id", Values: [...ids] }]);
  }

  async listInstancesByTag(key: string, value: string): Promise<CloudInstance[]> {
    return this.describeAll([
      { Name: `tag:${key}`, Values: [value] },
      { Name: "instance-state-name", Values: LIVE_STATES },
    ]);
  }

  private async describeAll(filters: Filter[]): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    let nextToken: string | undefined;
    do {
      const request: DescribeInstancesCommandInput = {
        Filters: filters,
        MaxResults: 1000,
        ...(nextToken === undefined ? {} : { NextToken: nextToken }),
      };
      const page = await this.call((c) => c.send(new DescribeInstancesCommand(request)));
      for (const reservation of page.Reservations ?? []) {
        out.push(...(reservation.Instances ?? []).map(toCloudInstance));
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return out;
  }

  /** Every SDK call goes through here, so no EC2 error leaves the adapter untyped. */
  private async call<T>(operation: (client: EC2Client) => Promise<T>): Promise<T> {
    try {
      return await operation(this.client);
    } catch (error) {
      throw fromEc2Error(error);
    }
  }
}

const STATES: Record<string, InstanceState> = {
  pending: "PENDING",
  running: "RUNNING",
  stopping: "STOPPING",
  stopped: "STOPPED",
  "shutting-down": "TERMINATING",
  terminated: "TERMINATED",
};

export function toCloudInstance(instance: Instance): CloudInstance {
  const tags: Record<string, string> = {};
  for (const t of instance.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? "";
  const clusterId = tags[CLUSTER_TAG];
  const queue = tags[QUEUE_TAG];
  return {
    id: instance.InstanceId ?? "",
    instanceType: instance.InstanceType ?? "",
    zone: instance.Placement?.AvailabilityZone ?? "",
    chargeType: instance.InstanceLifecycle === "spot" ? "SPOT" : "ON_DEMAND",
    state: STATES[instance.State?.Name ?? ""] ?? "UNKNOWN",
    tags,
    ...(instance.SubnetId === undefined ? {} : { subnetId: instance.SubnetId }),
    ...(instance.PrivateIpAddress === undefined ? {} : { privateIp: instance.PrivateIpAddress }),
    ...(instance.LaunchTime === undefined ? {} : { launchedAt: new Date(instance.LaunchTime).getTime() }),
    ...(clusterId === undefined ? {} : { clusterId }),
    ...(queue === undefined ? {} : { queue }),
  };
}
