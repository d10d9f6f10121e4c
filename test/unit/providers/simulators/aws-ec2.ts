import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandInput,
  DescribeInstanceTypesCommand,
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
export function startEc2Simulator(cloud: FakeCloud): Ec2Simulator {
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
  mock.on(DescribeInstanceTypesCommand).callsFake((input: { InstanceTypes?: string[] }) => ({
    InstanceTypes: (input.InstanceTypes ?? []).flatMap((name) => {
      const info = awsCatalog[name];
      if (info === undefined) return [];
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
