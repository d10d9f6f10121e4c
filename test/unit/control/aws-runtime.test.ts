import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { CloudAssistantAgentChannel } from "../../../lib/agent-channels/cloud-assistant.js";
import { HttpAgentChannel } from "../../../lib/agent-channels/http.js";
import { SsmAgentChannel } from "../../../lib/agent-channels/ssm.js";
import { TatAgentChannel } from "../../../lib/agent-channels/tat.js";
import { lambdaEnv } from "../../../lib/aws/env.js";
import { cloudMasterPower } from "../../../lib/aws/master-power.js";
import { awsControlRuntime } from "../../../lib/aws/runtime.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { AlibabaClusterResources } from "../../../lib/providers/alibaba-ecs/cluster-resources.js";
import { AlibabaMasterPower } from "../../../lib/providers/alibaba-ecs/master-power.js";
import { AwsMasterPower } from "../../../lib/providers/aws-ec2/master-power.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { TencentMasterPower } from "../../../lib/providers/tencent-cvm/master-power.js";
import {
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../providers/simulators/alibaba-ecs.js";

const ENV_VARS = {
  AWS_REGION: "us-east-1",
  NOWSCALE_TABLE_CLUSTERS: "c",
  NOWSCALE_TABLE_NODES: "n",
  NOWSCALE_TABLE_EVENTS: "e",
  NOWSCALE_TABLE_LEASES: "l",
  NOWSCALE_TABLE_IDEMPOTENCY: "i",
  NOWSCALE_TABLE_USAGE: "u",
  NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN: "arn:tencent",
};
const ENV = lambdaEnv("scaler", ENV_VARS);

function cluster(overrides: Partial<ClusterRecord>): ClusterRecord {
  return {
    clusterId: "c1",
    name: "c1",
    placement: { cloud: "aws", region: "us-east-1", imageId: "ami-1" },
    autoscaling: { queueConfigs: [] } as never,
    status: "RUNNING",
    version: 2,
    createdAt: 0,
    updatedAt: 0,
    agent: { kind: "none" },
    resources: [{ type: "masterInstance", id: "i-master", createdAt: 0 }],
    queueHealth: {},
    ...overrides,
  };
}

const secrets = mockClient(SecretsManagerClient);
afterEach(() => secrets.reset());

describe("awsControlRuntime", () => {
  it("builds the cluster's provider and agent channel from its record", async () => {
    // Prepare
    secrets
      .on(GetSecretValueCommand, { SecretId: "arn:key" })
      .resolves({ SecretString: `${"k".repeat(40)}\n` });
    secrets
      .on(GetSecretValueCommand, { SecretId: "arn:tencent" })
      .resolves({ SecretString: JSON.stringify({ secretId: "id", secretKey: "key" }) });
    const { runtime } = awsControlRuntime(ENV);
    // Act
    const aws = await runtime(
      cluster({ agent: { kind: "http", url: "http://10.0.0.5:8787", keySecretArn: "arn:key" } }),
    );
    const viaSsm = await runtime(cluster({}));
    const tencent = await runtime(
      cluster({ placement: { cloud: "tencent", region: "ap-guangzhou", imageId: "img-1" } }),
    );
    // Assess
    expect(aws.provider.cloud).toBe("aws");
    expect(aws.agent).toBeInstanceOf(HttpAgentChannel);
    expect(viaSsm.agent).toBeInstanceOf(SsmAgentChannel);
    expect(tencent.provider.cloud).toBe("tencent");
  });

  it("refuses clusters it cannot serve, naming why", async () => {
    // Prepare
    const { runtime } = awsControlRuntime(ENV);
    // Act / Assess
    await expect(
      runtime(cluster({ placement: { cloud: "alibaba", region: "cn-hangzhou", imageId: "img" } })),
    ).rejects.toThrow(/NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN/);
    await expect(runtime(cluster({ resources: [] }))).rejects.toThrow(/no reachable agent/);
    await expect(
      runtime(cluster({ placement: { cloud: "local", region: "x", imageId: "img" } })),
    ).rejects.toThrow(/no provider/);
  });

  it("reads the Alibaba key from its secret, and chooses the master's stop/start by the cluster's cloud", async () => {
    // Prepare
    secrets
      .on(GetSecretValueCommand, { SecretId: "arn:alibaba" })
      .resolves({ SecretString: JSON.stringify({ accessKeyId: "ak", accessKeySecret: "sk" }) });
    const { tencentCredential, alibabaCredential } = awsControlRuntime(
      lambdaEnv("scaler", { ...ENV_VARS, NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN: "arn:alibaba" }),
    );
    const power = cloudMasterPower({ tencentCredential, alibabaCredential });
    const on = (cloud: ClusterRecord["placement"]["cloud"]) =>
      power(cluster({ placement: { cloud, region: "r-1", imageId: "img" } }));
    // Act
    const key = await alibabaCredential();
    // Assess
    expect(key).toEqual({ accessKeyId: "ak", accessKeySecret: "sk" });
    expect(on("aws")).toBeInstanceOf(AwsMasterPower);
    expect(on("tencent")).toBeInstanceOf(TencentMasterPower);
    expect(on("alibaba")).toBeInstanceOf(AlibabaMasterPower);
    expect(on("local")).toBeUndefined();
    expect(on("fake")).toBeUndefined();
  });
});

describe("awsControlRuntime for an Alibaba cluster (the loopback ECS and VPC)", () => {
  it("launches its computes into the cluster's VSwitch of their zone with the nodes' RAM role and reaches its master through Cloud Assistant", async () => {
    // Prepare: a region without a default VPC, where a launch without the cluster's VSwitch fails
    const sim = await startEcsSimulator(new FakeCloud({ idPrefix: "i-bp", clock: new FakeClock() }), {
      defaultVpc: false,
    });
    try {
      const key = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };
      secrets
        .on(GetSecretValueCommand, { SecretId: "arn:alibaba" })
        .resolves({ SecretString: JSON.stringify(key) });
      const network = await new AlibabaClusterResources({
        regionId: "cn-hangzhou",
        credential: key,
        endpoints: { ecs: sim.endpoint, vpc: sim.endpoint },
        protocol: "http",
      }).createNetwork("ali-1", { cidr: "10.42.0.0/16", zones: ["cn-hangzhou-h", "cn-hangzhou-i"] });
      const { runtime } = awsControlRuntime(
        lambdaEnv("scaler", {
          ...ENV_VARS,
          NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN: "arn:alibaba",
          NOWSCALE_ALIBABA_NODE_ROLE_NAME: "NowScaleNode",
        }),
        { ecs: sim.endpoint, vpc: sim.endpoint, protocol: "http" },
      );
      const record = cluster({
        clusterId: "ali-1",
        placement: { cloud: "alibaba", region: "cn-hangzhou", imageId: "m-1" },
        resources: [
          { type: "vpc", id: network.vpcId, createdAt: 0 },
          ...network.subnetIds.map((id) => ({ type: "subnet", id, createdAt: 0 })),
          { type: "masterInstance", id: "i-bpmaster", createdAt: 0 },
        ],
      });

      // Act
      const { provider, agent } = await runtime(record);
      const launched = await provider.launch({
        clusterId: "ali-1",
        queue: "compute",
        round: "r1",
        candidates: [{ instanceType: "ecs.g7.large", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
        count: 1,
        allOrNothing: true,
        imageId: "m-1",
      });
      const health = await agent.health().catch((error: unknown) => error);

      // Assess
      expect(launched.failures).toEqual([]);
      expect(sim.callsOf("RunInstances")[0]?.params.VSwitchId).toBe(network.subnetIds[1]);
      // ... with the nodes' RAM role, whose key the boot script reads the munge key with.
      expect(sim.callsOf("RunInstances")[0]?.params.RamRoleName).toBe("NowScaleNode");
      expect(agent).toBeInstanceOf(CloudAssistantAgentChannel);
      // The simulated master has no agent: the command went to it, and the channel says it is unreachable.
      expect(sim.callsOf("RunCommand")[0]?.params["InstanceId.1"]).toBe("i-bpmaster");
      expect(health).toBeInstanceOf(Error);
    } finally {
      await sim.close();
    }
  });
});

describe("awsControlRuntime for attached masters over TAT and Cloud Assistant", () => {
  const attachment = (vpcId: string, subnetIds: string[]) => ({
    channel: "cloud-assistant" as const,
    controllerAddress: "10.0.0.5",
    controllerPort: 6817,
    mungeKeySecret: "theirs-munge",
    subnetIds,
    securityGroupIds: ["sg-theirs"],
    vpcId,
    slurmVersion: "22.05.8",
    attachedAt: 0,
  });

  it("reaches an attached ECS master through Cloud Assistant by its recorded endpoint, and launches into the recorded VPC's VSwitch", async () => {
    // Prepare
    const sim = await startEcsSimulator(new FakeCloud({ idPrefix: "i-bp", clock: new FakeClock() }), {
      defaultVpc: false,
    });
    try {
      const key = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };
      secrets
        .on(GetSecretValueCommand, { SecretId: "arn:alibaba" })
        .resolves({ SecretString: JSON.stringify(key) });
      const theirs = await new AlibabaClusterResources({
        regionId: "cn-hangzhou",
        credential: key,
        endpoints: { ecs: sim.endpoint, vpc: sim.endpoint },
        protocol: "http",
      }).createNetwork("theirs", { cidr: "10.42.0.0/16", zones: ["cn-hangzhou-h", "cn-hangzhou-i"] });
      const { runtime } = awsControlRuntime(
        lambdaEnv("scaler", { ...ENV_VARS, NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN: "arn:alibaba" }),
        { ecs: sim.endpoint, vpc: sim.endpoint, protocol: "http" },
      );
      const record = cluster({
        clusterId: "att-1",
        origin: "attached",
        placement: { cloud: "alibaba", region: "cn-hangzhou", imageId: "m-1" },
        agent: { kind: "cloud-assistant", instanceId: "i-bptheirmaster" },
        attachment: attachment(theirs.vpcId, [theirs.subnetIds[1] ?? ""]),
        resources: [],
      });
      // Act
      const { provider, agent } = await runtime(record);
      const launched = await provider.launch({
        clusterId: "att-1",
        queue: "compute",
        round: "r1",
        candidates: [{ instanceType: "ecs.g7.large", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
        count: 1,
        allOrNothing: true,
        imageId: "m-1",
      });
      await agent.health().catch(() => undefined);
      // Assess
      expect(agent).toBeInstanceOf(CloudAssistantAgentChannel);
      expect(sim.callsOf("RunCommand")[0]?.params["InstanceId.1"]).toBe("i-bptheirmaster");
      expect(launched.failures).toEqual([]);
      expect(sim.callsOf("RunInstances")[0]?.params.VSwitchId).toBe(theirs.subnetIds[1]);
      expect(sim.callsOf("RunInstances")[0]?.params["SecurityGroupIds.1"]).toBe("sg-theirs");
    } finally {
      await sim.close();
    }
  });

  it("reaches an attached CVM master through TAT by its recorded endpoint", async () => {
    // Prepare
    secrets
      .on(GetSecretValueCommand, { SecretId: "arn:tencent" })
      .resolves({ SecretString: JSON.stringify({ secretId: "id", secretKey: "key" }) });
    const { runtime } = awsControlRuntime(ENV);
    const record = cluster({
      origin: "attached",
      placement: { cloud: "tencent", region: "ap-guangzhou", imageId: "img-1" },
      agent: { kind: "tat", instanceId: "ins-theirs01" },
      attachment: { ...attachment("vpc-theirs", ["subnet-theirs"]), channel: "tat" },
      resources: [],
    });
    // Act
    const { agent } = await runtime(record);
    // Assess
    expect(agent).toBeInstanceOf(TatAgentChannel);
  });
});
