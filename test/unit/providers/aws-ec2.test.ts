import {
  DescribeInstancesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceTypesCommand,
  DescribeSubnetsCommand,
  EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { awsCatalog } from "../../../lib/core/catalogs/aws.js";
import {
  InsufficientCapacityError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  ServiceUnavailableError,
  ThrottledError,
  UnauthorizedError,
} from "../../../lib/ports/errors.js";
import { launchToken } from "../../../lib/ports/launch-token.js";
import { Ec2Api, fromEc2Error } from "../../../lib/providers/aws-ec2/index.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import { type Ec2Simulator, startEc2Simulator } from "./simulators/aws-ec2.js";

describe("AWS EC2 adapter", () => {
  let cloud: FakeCloud;
  let sim: Ec2Simulator;
  let provider: ManagedProvider;

  beforeEach(() => {
    const clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "i-0", clock });
    sim = startEc2Simulator(cloud);
    const api = new Ec2Api({
      client: sim.client,
      securityGroupIds: ["sg-0123456789abcdef0"],
      instanceProfileArn: "arn:aws:iam::123456789012:instance-profile/nowscale-node",
      instanceTypes: ["c5.xlarge", "g4dn.xlarge"],
    });
    provider = new ManagedProvider(api, { clock, random: () => 0.5 });
  });

  afterEach(() => sim.restore());

  it("sends RunInstances with the token, tags at creation, IMDSv2 required and MinCount = MaxCount = count", async () => {
    // Prepare
    const candidate = {
      instanceType: "c5.xlarge",
      zone: "us-east-1a",
      chargeType: "ON_DEMAND" as const,
      subnetId: "subnet-0aaaa",
    };

    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "mpi",
      round: "cycle-42.0",
      candidates: [candidate],
      count: 4,
      allOrNothing: true,
      imageId: "ami-0123456789abcdef0",
      userData: "#!/bin/sh\necho hi\n",
      tags: { project: "cfd" },
    });

    // Assess
    const calls = sim.mock.commandCalls(RunInstancesCommand);
    expect(calls).toHaveLength(1);
    const tags = [
      { Key: "Name", Value: "nowscale-hpc1-mpi" },
      { Key: "project", Value: "cfd" },
      { Key: "nowscale:cluster", Value: "hpc1" },
      { Key: "nowscale:queue", Value: "mpi" },
      { Key: "nowscale:managed", Value: "true" },
    ];
    expect(calls[0]?.args[0].input).toEqual({
      ImageId: "ami-0123456789abcdef0",
      InstanceType: "c5.xlarge",
      MinCount: 4,
      MaxCount: 4,
      ClientToken: launchToken("hpc1", "cycle-42.0", candidate),
      Placement: { AvailabilityZone: "us-east-1a" },
      SubnetId: "subnet-0aaaa",
      SecurityGroupIds: ["sg-0123456789abcdef0"],
      IamInstanceProfile: { Arn: "arn:aws:iam::123456789012:instance-profile/nowscale-node" },
      UserData: Buffer.from("#!/bin/sh\necho hi\n").toString("base64"),
      MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1 },
      // Every resource the launch makes is tagged: IAM authorizes RunInstances on each with the tag.
      TagSpecifications: [
        { ResourceType: "instance", Tags: tags },
        { ResourceType: "volume", Tags: tags },
        { ResourceType: "network-interface", Tags: tags },
      ],
    });
  });

  it("asks for a one-time spot instance with MinCount 1 on a best-effort spot candidate", async () => {
    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "batch",
      round: "r1",
      candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1b", chargeType: "SPOT" }],
      count: 3,
      allOrNothing: false,
      imageId: "ami-0123456789abcdef0",
    });

    // Assess
    const input = sim.mock.commandCalls(RunInstancesCommand)[0]?.args[0].input;
    expect(input?.MinCount).toBe(1);
    expect(input?.MaxCount).toBe(3);
    expect(input?.InstanceMarketOptions).toEqual({
      MarketType: "spot",
      SpotOptions: { SpotInstanceType: "one-time", InstanceInterruptionBehavior: "terminate" },
    });
    expect(input?.SubnetId).toBeUndefined();
    expect(input?.MetadataOptions?.HttpTokens).toBe("required");
    expect(input?.TagSpecifications?.map((s) => s.ResourceType)).toEqual([
      "instance",
      "volume",
      "network-interface",
      "spot-instances-request",
    ]);
  });

  it("puts a candidate without a subnet in the cluster's subnet of its zone, and refuses a zone the cluster has none in", async () => {
    // Prepare
    sim.restore();
    sim = startEc2Simulator(cloud, { subnets: { "subnet-0a": "us-east-1a", "subnet-0b": "us-east-1b" } });
    const api = new Ec2Api({ client: sim.client, subnetIds: ["subnet-0a", "subnet-0b"] });
    const p = new ManagedProvider(api, { clock: new FakeClock(), random: () => 0.5 });
    const launch = (zone: string, round: string) =>
      p.launch({
        clusterId: "hpc1",
        queue: "q",
        round,
        candidates: [{ instanceType: "c5.xlarge", zone, chargeType: "ON_DEMAND" }],
        count: 1,
        allOrNothing: false,
        imageId: "ami-0123456789abcdef0",
      });

    // Act
    const inB = await launch("us-east-1b", "r1");
    const inC = await launch("us-east-1c", "r2");

    // Assess
    expect(inB.failures).toEqual([]);
    const runs = sim.mock.commandCalls(RunInstancesCommand).map((c) => c.args[0].input);
    expect(runs.map((r) => r.SubnetId)).toEqual(["subnet-0b"]);
    expect(inC.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
    expect(inC.failures[0]?.error.message).toMatch(/no subnet in us-east-1c/);
    // The subnets' zones are read once per adapter.
    expect(sim.mock.commandCalls(DescribeSubnetsCommand)).toHaveLength(1);
  });

  it("terminates by id and lists by the cluster tag and live states", async () => {
    // Prepare
    const { instances } = await provider.launch({
      clusterId: "hpc1",
      queue: "q",
      round: "r1",
      candidates: [{ instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: false,
      imageId: "ami-0123456789abcdef0",
    });

    // Act
    await provider.list("hpc1");
    await provider.terminate(instances.map((i) => i.id));

    // Assess
    expect(sim.mock.commandCalls(DescribeInstancesCommand)[0]?.args[0].input).toEqual({
      Filters: [
        { Name: "tag:nowscale:cluster", Values: ["hpc1"] },
        { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped"] },
      ],
      MaxResults: 1000,
    });
    expect(sim.mock.commandCalls(TerminateInstancesCommand)[0]?.args[0].input).toEqual({
      InstanceIds: instances.map((i) => i.id),
    });
  });

  it("reads instance types from DescribeInstanceTypes with the catalog's price", async () => {
    // Act
    const catalog = await provider.instanceTypes();

    // Assess
    expect(sim.mock.commandCalls(DescribeInstanceTypesCommand)[0]?.args[0].input).toEqual({
      InstanceTypes: ["c5.xlarge", "g4dn.xlarge"],
    });
    expect(catalog).toEqual({
      "c5.xlarge": { vcpus: 4, memoryMiB: 8192, gpus: 0, pricePerHour: 0.17 },
      "g4dn.xlarge": { vcpus: 4, memoryMiB: 16384, gpus: 1, pricePerHour: 0.526 },
    });
  });

  it("describes only the types the region offers (read over every offerings page), 100 per call", async () => {
    // Prepare: a region that offers all but one catalog type, listed two per page
    sim.restore();
    const all = Object.keys(awsCatalog);
    const notOffered = all[all.length - 1] ?? "";
    sim = startEc2Simulator(cloud, { offered: all.filter((n) => n !== notOffered), offeringsPageSize: 2 });
    const api = new Ec2Api({
      client: sim.client,
      instanceTypes: ["c5.xlarge", "x9.nonexistent", notOffered, ...all.slice(0, 150)],
    });

    // Act
    const catalog = await new ManagedProvider(api, {
      clock: new FakeClock(),
      random: () => 0.5,
    }).instanceTypes();

    // Assess
    expect(catalog["c5.xlarge"]).toEqual({ vcpus: 4, memoryMiB: 8192, gpus: 0, pricePerHour: 0.17 });
    expect(Object.keys(catalog)).not.toContain("x9.nonexistent");
    expect(Object.keys(catalog)).not.toContain(notOffered);
    expect(Object.keys(catalog).length).toBe(new Set(all.slice(0, 150).filter((n) => n !== notOffered)).size);
    const describes = sim.mock
      .commandCalls(DescribeInstanceTypesCommand)
      .map((c) => c.args[0].input.InstanceTypes ?? []);
    for (const d of describes) expect(d.length).toBeLessThanOrEqual(100);
    expect(sim.mock.commandCalls(DescribeInstanceTypeOfferingsCommand).length).toBe(
      Math.ceil((all.length - 1) / 2),
    );
  });

  it.each([
    ["InsufficientInstanceCapacity", "server", 500, InsufficientCapacityError],
    ["InsufficientFreeAddressesInSubnet", "client", 400, InsufficientCapacityError],
    ["Unsupported", "client", 400, InsufficientCapacityError],
    ["VcpuLimitExceeded", "client", 400, QuotaExceededError],
    ["InstanceLimitExceeded", "client", 400, QuotaExceededError],
    ["MaxSpotInstanceCountExceeded", "client", 400, QuotaExceededError],
    ["RequestLimitExceeded", "client", 503, ThrottledError],
    ["InternalError", "server", 500, ServiceUnavailableError],
    ["SomethingNew", "server", 503, ServiceUnavailableError],
    ["InvalidInstanceID.NotFound", "client", 400, NotFoundError],
    ["UnauthorizedOperation", "client", 403, UnauthorizedError],
    ["AuthFailure", "client", 401, UnauthorizedError],
    ["IdempotentParameterMismatch", "client", 400, InvalidRequestError],
    ["InvalidAMIID.NotFound", "client", 400, InvalidRequestError],
  ] as const)("maps %s onto its typed error and keeps the code as cause", (code, fault, status, type) => {
    // Prepare
    const sdkError = new EC2ServiceException({
      name: code,
      $fault: fault,
      message: `the message for ${code}`,
      $metadata: { httpStatusCode: status, requestId: "req-1" },
    });

    // Act
    const mapped = fromEc2Error(sdkError);

    // Assess
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.name).toBe(type.name);
    expect(mapped.cause).toEqual({
      code,
      message: `the message for ${code}`,
      httpStatus: status,
      requestId: "req-1",
    });
  });

  it("maps a transport failure (no status) to a retryable error", () => {
    // Act
    const mapped = fromEc2Error(
      Object.assign(new Error("socket hang up"), { name: "Error", code: "ECONNRESET" }),
    );

    // Assess
    expect(mapped).toBeInstanceOf(ServiceUnavailableError);
    expect(mapped.retryable).toBe(true);
  });
});
