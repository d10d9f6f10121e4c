import { DescribeAvailabilityZonesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2";
import { EcsApi } from "../../../lib/providers/alibaba-ecs/index.js";
import { Ec2Api } from "../../../lib/providers/aws-ec2/index.js";
import { FakeClock, FakeCloud, FakeProvider, type FakeRunInput } from "../../../lib/providers/fake/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import { CvmApi } from "../../../lib/providers/tencent-cvm/index.js";
import type { ContractHarness } from "./provider-contract.js";
import { startEcsSimulator, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET } from "./simulators/alibaba-ecs.js";
import { startEc2Simulator } from "./simulators/aws-ec2.js";
import { startCvmSimulator, TEST_SECRET_ID, TEST_SECRET_KEY } from "./simulators/tencent-cvm.js";

/** Deterministic jitter: half of each backoff window. */
const halfJitter = () => 0.5;

export async function fakeHarness(): Promise<ContractHarness> {
  const clock = new FakeClock();
  const provider = new FakeProvider({ clock, random: halfJitter });
  const cloud = provider.fakeCloud;
  return {
    provider,
    cloud,
    clock,
    candidates: [
      { instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" },
      { instanceType: "c6i.xlarge", zone: "us-east-1b", chargeType: "ON_DEMAND" },
    ],
    imageId: "ami-0123456789abcdef0",
    missingId: "i-0000dead",
    wireLaunchCalls: () => cloud.callsOf("run").length,
    zones: ["us-east-1a", "us-east-1b", "us-east-1c"],
    wireZoneCalls: () => cloud.callsOf("zones").length,
    launchInputs: () => runInputs(cloud),
    close: async () => {},
  };
}

export async function awsHarness(): Promise<ContractHarness> {
  const clock = new FakeClock();
  const cloud = new FakeCloud({ idPrefix: "i-0", clock, launchState: "PENDING" });
  const sim = startEc2Simulator(cloud);
  const api = new Ec2Api({ client: sim.client, securityGroupIds: ["sg-0123456789abcdef0"] });
  return {
    provider: new ManagedProvider(api, { clock, random: halfJitter }),
    cloud,
    clock,
    candidates: [
      { instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND", subnetId: "subnet-0aaaa" },
      { instanceType: "c6i.xlarge", zone: "us-east-1b", chargeType: "ON_DEMAND", subnetId: "subnet-0bbbb" },
    ],
    imageId: "ami-0123456789abcdef0",
    missingId: "i-0ffffffffffffffff",
    wireLaunchCalls: () => sim.mock.commandCalls(RunInstancesCommand).length,
    zones: ["us-east-1a", "us-east-1b", "us-east-1c"],
    wireZoneCalls: () => sim.mock.commandCalls(DescribeAvailabilityZonesCommand).length,
    launchInputs: () => runInputs(cloud),
    close: async () => sim.restore(),
  };
}

export async function tencentHarness(): Promise<ContractHarness> {
  const clock = new FakeClock();
  const cloud = new FakeCloud({
    idPrefix: "ins-",
    clock,
    launchState: "PENDING",
    zones: ["ap-guangzhou-6", "ap-guangzhou-3", "ap-guangzhou-7"],
  });
  const sim = await startCvmSimulator(cloud);
  const api = new CvmApi({
    region: "ap-guangzhou",
    credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
    endpoint: sim.endpoint,
    protocol: "http://",
    vpcId: "vpc-test0001",
    securityGroupIds: ["sg-test0001"],
    // The confirmation of an all-or-nothing launch waits on this clock: CVM's instances start PENDING.
    clock,
  });
  return {
    provider: new ManagedProvider(api, { clock, random: halfJitter }),
    cloud,
    clock,
    candidates: [
      {
        instanceType: "SA2.LARGE8",
        zone: "ap-guangzhou-3",
        chargeType: "ON_DEMAND",
        subnetId: "subnet-test0003",
      },
      {
        instanceType: "S5.LARGE8",
        zone: "ap-guangzhou-6",
        chargeType: "ON_DEMAND",
        subnetId: "subnet-test0006",
      },
    ],
    imageId: "img-test0001",
    missingId: "ins-deadbeef",
    wireLaunchCalls: () => sim.callsOf("RunInstances").length,
    zones: ["ap-guangzhou-3", "ap-guangzhou-6", "ap-guangzhou-7"],
    wireZoneCalls: () => sim.callsOf("DescribeZones").length,
    launchInputs: () => runInputs(cloud),
    close: () => sim.close(),
  };
}

export async function alibabaHarness(): Promise<ContractHarness> {
  const clock = new FakeClock();
  const cloud = new FakeCloud({
    idPrefix: "i-bp",
    clock,
    launchState: "PENDING",
    zones: ["cn-hangzhou-i", "cn-hangzhou-h", "cn-hangzhou-j"],
  });
  const sim = await startEcsSimulator(cloud);
  const api = new EcsApi({
    regionId: "cn-hangzhou",
    credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
    endpoint: sim.endpoint,
    protocol: "http",
    securityGroupIds: ["sg-test0001"],
  });
  return {
    provider: new ManagedProvider(api, { clock, random: halfJitter }),
    cloud,
    clock,
    candidates: [
      {
        instanceType: "ecs.c7.xlarge",
        zone: "cn-hangzhou-h",
        chargeType: "ON_DEMAND",
        subnetId: "vsw-test000h",
      },
      {
        instanceType: "ecs.g7.xlarge",
        zone: "cn-hangzhou-i",
        chargeType: "ON_DEMAND",
        subnetId: "vsw-test000i",
      },
    ],
    imageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
    missingId: "i-bpdeadbeef",
    wireLaunchCalls: () => sim.callsOf("RunInstances").length,
    zones: ["cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"],
    wireZoneCalls: () => sim.callsOf("DescribeZones").length,
    launchInputs: () => runInputs(cloud),
    close: () => sim.close(),
  };
}

function runInputs(cloud: FakeCloud): FakeRunInput[] {
  return cloud.callsOf("run").map((c) => c.input as FakeRunInput);
}
