import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { HttpAgentChannel } from "../../../lib/agent-channels/http.js";
import { SsmAgentChannel } from "../../../lib/agent-channels/ssm.js";
import { lambdaEnv } from "../../../lib/aws/env.js";
import { awsControlRuntime } from "../../../lib/aws/runtime.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";

const ENV = lambdaEnv("scaler", {
  AWS_REGION: "us-east-1",
  NOWSCALE_TABLE_CLUSTERS: "c",
  NOWSCALE_TABLE_NODES: "n",
  NOWSCALE_TABLE_EVENTS: "e",
  NOWSCALE_TABLE_LEASES: "l",
  NOWSCALE_TABLE_IDEMPOTENCY: "i",
  NOWSCALE_TABLE_USAGE: "u",
  NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN: "arn:tencent",
});

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
});
