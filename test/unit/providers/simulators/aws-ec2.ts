import {
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  EC2ServiceException,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { type AwsClientStub, mockClient } from "aws-sdk-client-mock";
import { awsCatalog } from "../../../../lib/core/catalogs/aws.js";
import {
  type FakeCloud,
  FakeCloudFault,
  type FakeInstance,
  type FaultKind,
} from "../../../../lib/providers/fake/index.js";

/** Real EC2 codes, statuses and fault sides for each simulated fault. */
export const EC2_FAULTS: Record<FaultKind, { code: string; status: number; fault: "client" | "server" }> = {
  capacity: { code: "InsufficientInstanceCapacity", status: 500, fault: "server" },
  quota: { code: "VcpuLimitExceeded", status: 400, fault: "client" },
  throttle: { code: "RequestLimitExceeded", status: 503, fault: "client" },
  server: { code: "InternalError", status: 500, fault: "server" },
  invalid: { code: "InvalidParameterValue", status: 400, fault: "client" },
  unauthorized: { code: "UnauthorizedOperation", status: 403, fault: "client" },
  notFound: { code: "InvalidInstanceID.NotFound", status: 400, fault: "client" },
  tokenMismatch: { code: "IdempotentParameterMismatch", status: 400, fault: "client" },
};

export interface Ec2Simulator {
  client: EC2Client;
  mock: AwsClientStub<EC2Client>;
  restore(): void;
}

/**
 * EC2 through aws-sdk-client-mock on the real client: each command is answered from the fake cloud,
 * and failures are thrown as the SDK's own EC2ServiceException with EC2's codes.
 */
export interface Ec2SimulatorOptions {
  /** The types the region offers. @default every type of the built-in AWS catalog */
  offered?: readonly string[];
  /** Offerings per DescribeInstanceTypeOfferings page, to make the adapter page. @default 1000 */
  offeringsPageSize?: number;
  /** Subnet id → zone, for DescribeSubnets. */
  subnets?: Record<string, string>;
  /** Zones DescribeAvailabilityZones lists as `impaired`, beside the fake cloud's zones (`available`). */
  impairedZones?: readonly string[];
}

export function startEc2Simulator(cloud: FakeCloud, options: Ec2SimulatorOptions = {}): Ec2Simulator {
  const offered = options.offered ?? Object.keys(awsCatalog);
  const client = new EC2Client({
    region: "us-east-1",
    credentials: { accessKeyId: "test-access-key-id", secretAccessKey: "test-secret-access-key" },
  });
  const mock = mockClient(client);
  mock.on(RunInstancesCommand).callsFake((input: RunInstancesCommandInput) =>
    answer(() => {
      const tags = Object.fromEntries(
        (input.TagSpecifications?.find((s) => s.ResourceType === "instance")?.Tags ?? [])
          .filter((t) => t.Key !== "Name")
          .map((t) => [t.Key ?? "", t.Value ?? ""]),
      );
      const started = cloud.run({
        instanceType: String(input.InstanceType),
        zone: input.Placement?.AvailabilityZone ?? "",
        chargeType: input.InstanceMarketOptions?.MarketType === "spot" ? "SPOT" : "ON_DEMAND",
        imageId: input.ImageId ?? "",
        minCount: input.MinCount ?? 1,
        maxCount: input.MaxCount ?? 1,
        tags,
        ...(input.ClientToken === undefined ? {} : { clientToken: input.ClientToken }),
        ...(input.SubnetId === undefined ? {} : { subnetId: input.SubnetId }),
        ...nameOf(input),
      });
      return { ReservationId: "r-0123456789abcdef0", Instances: started.map(toEc2Instance) };
    }),
  );
  mock.on(TerminateInstancesCommand).callsFake((input: { InstanceIds?: string[] }) =>
    answer(() => {
      cloud.terminate(input.InstanceIds ?? []);
      return {
        TerminatingInstances: (input.InstanceIds ?? []).map((id) => ({
          InstanceId: id,
          CurrentState: { Code: 32, Name: "shutting-down" },
        })),
      };
    }),
  );
  mock.on(DescribeInstancesCommand).callsFake((input: DescribeInstancesCommandInput) =>
    answer(() => {
      const filters = input.Filters ?? [];
      const byId = filters.find((f) => f.Name === "instance-id");
      const byTag = filters.find((f) => f.Name?.startsWith("tag:"));
      let found: FakeInstance[];
      if (byId !== undefined) found = cloud.describe(byId.Values ?? []);
      else if (byTag !== undefined) found = cloud.list(byTag.Name?.slice(4) ?? "", byTag.Values?.[0] ?? "");
      else throw new Error("simulator: a filter is expected");
      return { Reservations: found.length === 0 ? [] : [{ Instances: found.map(toEc2Instance) }] };
    }),
  );
  mock.on(DescribeSubnetsCommand).callsFake((input: { SubnetIds?: string[] }) => ({
    Subnets: (input.SubnetIds ?? []).map((SubnetId) => {
      const zone = options.subnets?.[SubnetId];
      if (zone === undefined)
        throw new EC2ServiceException({
          name: "InvalidSubnetID.NotFound",
          $fault: "client",
          message: `The subnet ID '${SubnetId}' does not exist`,
          $metadata: { httpStatusCode: 400 },
        });
      return { SubnetId, AvailabilityZone: zone, VpcId: "vpc-0cluster" };
    }),
  }));
  mock.on(DescribeAvailabilityZonesCommand).callsFake(() => ({
    AvailabilityZones: [
      ...cloud.zones().map((ZoneName) => ({ ZoneName, State: "available", ZoneType: "availability-zone" })),
      ...(options.impairedZones ?? []).map((ZoneName) => ({ ZoneName, State: "impaired" })),
    ],
  }));
  mock
    .on(DescribeInstanceTypeOfferingsCommand)
    .callsFake((input: { NextToken?: string; MaxResults?: number }) => {
      const start = Number(input.NextToken ?? 0);
      const size = Math.min(input.MaxResults ?? 1000, options.offeringsPageSize ?? 1000);
      const next = start + size;
      return {
        InstanceTypeOfferings: offered
          .slice(start, next)
          .map((InstanceType) => ({ InstanceType, LocationType: "region", Location: "us-east-1" })),
        ...(next < offered.length ? { NextToken: String(next) } : {}),
      };
    });
  mock.on(DescribeInstanceTypesCommand).callsFake((input: { InstanceTypes?: string[] }) => ({
    InstanceTypes: (input.InstanceTypes ?? []).flatMap((name) => {
      const info = awsCatalog[name];
      // As EC2: one type the region does not know fails the whole call.
      if (info === undefined || !offered.includes(name))
        throw new EC2ServiceException({
          name: "InvalidInstanceType",
          $fault: "client",
          message: `The following supplied instance types do not exist: [${name}]`,
          $metadata: { httpStatusCode: 400 },
        });
      if ((input.InstanceTypes?.length ?? 0) > 100)
        throw new EC2ServiceException({
          name: "InvalidParameterValue",
          $fault: "client",
          message: "at most 100 instance types",
          $metadata: { httpStatusCode: 400 },
        });
      return [
        {
          InstanceType: name,
          VCpuInfo: { DefaultVCpus: info.vcpus },
          MemoryInfo: { SizeInMiB: info.memoryMiB },
          ...(info.gpus > 0 ? { GpuInfo: { Gpus: [{ Count: info.gpus, Name: "T4" }] } } : {}),
        },
      ];
    }),
  }));
  return { client, mock, restore: () => mock.restore() };
}

/** The Name tag, which EC2 consoles show as the instance's name. */
function nameOf(input: RunInstancesCommandInput): { name?: string } {
  const name = input.TagSpecifications?.find((s) => s.ResourceType === "instance")?.Tags?.find(
    (t) => t.Key === "Name",
  )?.Value;
  return name === undefined ? {} : { name };
}

function answer<T>(operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    if (error instanceof FakeCloudFault) {
      const f = EC2_FAULTS[error.kind];
      throw new EC2ServiceException({
        name: f.code,
        $fault: f.fault,
        message: error.message,
        $metadata: { httpStatusCode: f.status, requestId: "00000000-0000-0000-0000-000000000000" },
      });
    }
    throw error;
  }
}

const STATE_NAMES = { PENDING: "pending", RUNNING: "running", TERMINATED: "terminated" } as const;

function toEc2Instance(i: FakeInstance): Instance {
  return {
    InstanceId: i.id,
    InstanceType: i.instanceType as Instance["InstanceType"],
    ImageId: i.imageId,
    Placement: { AvailabilityZone: i.zone },
    State: { Name: STATE_NAMES[i.state] },
    PrivateIpAddress: i.privateIp,
    LaunchTime: new Date(i.launchedAt),
    Tags: [
      { Key: "Name", Value: "nowscale" },
      ...Object.entries(i.tags).map(([Key, Value]) => ({ Key, Value })),
    ],
    ...(i.subnetId === undefined ? {} : { SubnetId: i.subnetId }),
    ...(i.chargeType === "SPOT" ? { InstanceLifecycle: "spot" as const } : {}),
  };
}
