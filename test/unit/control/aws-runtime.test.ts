import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { HttpAgentChannel } from "../../../lib/agent-channels/http.js";
import { SsmAgentChannel } from "../../../lib/agent-channels/ssm.js";
import { lambdaEnv } from "../../../lib/aws/env.js";
import { cloudMasterPower } from "../../../lib/aws/master-power.js";
import { awsControlRuntime } from "../../../lib/aws/runtime.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { AlibabaMasterPower } from "../../../lib/providers/alibaba-ecs/master-power.js";
import { AwsMasterPower } from "../../../lib/providers/aws-ec2/master-power.js";
import { TencentMasterPower } from "../../../lib/providers/tencent-cvm/master-power.js";

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
