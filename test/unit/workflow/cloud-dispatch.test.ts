import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { CloudAssistantAgentChannel } from "../../../lib/agent-channels/cloud-assistant.js";
import { CONTROL_ENV, lambdaEnv, WORKFLOW_ENV } from "../../../lib/aws/env.js";
import { awsLifecycleDeps } from "../../../lib/aws/workflow-deps.js";
import { FakeClock } from "../../../lib/providers/fake/fake-clock.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { FakeProvider } from "../../../lib/providers/fake/fake-provider.js";
import { TABLE_ENV } from "../../../lib/state/tables.js";
import type { MasterAgent } from "../../../lib/workflow/tasks/agent.js";
import type { LifecycleDeps, OtherCloudParts } from "../../../lib/workflow/tasks/deps.js";
import { lifecycleDepsFor } from "../../../lib/workflow/tasks/deps.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import { MemoryLifecycleStore } from "../../../lib/workflow/tasks/store.js";

/** The lifecycle tasks pick the parts of the cluster's recorded cloud (lib/workflow/tasks/deps.ts). */

const healthy: MasterAgent = { isHealthy: async () => true, drainAll: async () => true };

function bed() {
  const clock = new FakeClock();
  const store = new MemoryLifecycleStore();
  const aws = new FakeClusterResources();
  const tencent = new FakeClusterResources();
  const regions: string[] = [];
  const tencentParts = async (placement: { region: string }): Promise<OtherCloudParts> => {
    regions.push(placement.region);
    return {
      resources: tencent,
      provider: () => new FakeProvider({ clock }),
      agent: healthy,
      masterUserData: () => "#!/bin/sh\necho tencent\n",
    };
  };
  const deps: LifecycleDeps = {
    store,
    clock,
    resources: aws,
    provider: () => new FakeProvider({ clock }),
    agent: healthy,
    region: "us-east-1",
    images: { defaultImage: async () => "ami-0123456789abcdef0" },
    clouds: { tencent: tencentParts },
  };
  return { store, aws, tencent, regions, deps };
}

describe("per-cloud lifecycle deps", () => {
  it("makes a Tencent cluster's security group with Tencent's parts, in the cluster's region", async () => {
    // Prepare
    const { store, aws, tencent, regions, deps } = bed();
    store.add("tc-1");
    const record = store.clusters.get("tc-1");
    if (record === undefined) throw new Error("no record");
    record.placement = { cloud: "tencent", region: "ap-guangzhou" };

    // Act
    await runLifecycleTask(deps, { task: "createSecurityGroup", clusterId: "tc-1", vpcId: "vpc-1" });

    // Assess
    expect(tencent.live("tc-1").map((r) => r.kind)).toEqual(["securityGroup"]);
    expect(aws.live("tc-1")).toEqual([]);
    expect(regions).toEqual(["ap-guangzhou"]);
  });

  it("checks a Tencent request's region against the cluster's, not the stack's", async () => {
    // Prepare
    const { store, deps } = bed();
    store.add("tc-1");
    const record = store.clusters.get("tc-1");
    if (record === undefined) throw new Error("no record");
    record.placement = { cloud: "tencent", region: "ap-guangzhou" };
    const request = {
      region: "ap-guangzhou",
      network: { cidr: "10.42.0.0/16", zones: ["ap-guangzhou-3"] },
      master: { instanceType: "S5.LARGE8", zone: "ap-guangzhou-3", imageId: "img-abc123" },
    };

    // Act
    const ok = runLifecycleTask(deps, { task: "validate", clusterId: "tc-1", request });
    const other = runLifecycleTask(deps, {
      task: "validate",
      clusterId: "tc-1",
      request: { ...request, region: "us-east-1" },
    });

    // Assess
    await expect(ok).resolves.toMatchObject({ region: "ap-guangzhou" });
    await expect(other).rejects.toThrow(/region: must be the stack's region ap-guangzhou/);
  });

  it("runs an AWS cluster's tasks with the stack's own parts", async () => {
    // Prepare
    const { store, aws, tencent, regions, deps } = bed();
    store.add("aws-1");

    // Act
    await runLifecycleTask(deps, { task: "createSecurityGroup", clusterId: "aws-1", vpcId: "vpc-1" });

    // Assess
    expect(aws.live("aws-1").map((r) => r.kind)).toEqual(["securityGroup"]);
    expect(tencent.live("aws-1")).toEqual([]);
    expect(regions).toEqual([]);
  });

  it("refuses a cluster of a cloud the stack is not set up for, naming cloud, and makes nothing", async () => {
    // Prepare
    const { store, aws, deps } = bed();
    store.add("ali-1");
    const record = store.clusters.get("ali-1");
    if (record === undefined) throw new Error("no record");
    record.placement = { cloud: "alibaba", region: "cn-hangzhou" };

    // Act
    const failing = runLifecycleTask(deps, {
      task: "createSecurityGroup",
      clusterId: "ali-1",
      vpcId: "vpc-1",
    });

    // Assess
    await expect(failing).rejects.toMatchObject({
      name: "InvalidRequestError",
      message: /^cloud: .*alibaba/,
    });
    expect(aws.live("ali-1")).toEqual([]);
  });

  it("records a status without reading the placement or building a cloud's parts", async () => {
    // Prepare: reading the placement fails, as it would for broken credentials of another cloud.
    const { store, regions, deps } = bed();
    store.add("tc-1");
    store.failNext("placement", new Error("must not be read"));

    // Act
    await runLifecycleTask(deps, { task: "recordStatus", clusterId: "tc-1", status: "FAILED" });

    // Assess
    expect(store.clusters.get("tc-1")?.status).toBe("FAILED");
    expect(regions).toEqual([]);
  });

  it("never reads the placement for a stack without other clouds (the AWS path as before)", async () => {
    // Prepare
    const { store, aws, deps } = bed();
    const { clouds: _clouds, ...awsOnly } = deps;
    store.add("aws-1");
    store.failNext("placement", new Error("must not be read"));

    // Act
    await runLifecycleTask(awsOnly, { task: "createSecurityGroup", clusterId: "aws-1", vpcId: "vpc-1" });

    // Assess
    expect(aws.live("aws-1").map((r) => r.kind)).toEqual(["securityGroup"]);
  });
});

describe("the workflow Lambda's deps on AWS", () => {
  const base = {
    ...Object.fromEntries(Object.values(TABLE_ENV).map((name) => [name, "unused"])),
    AWS_REGION: "us-east-1",
    [WORKFLOW_ENV.secretsKmsKeyArn]: "arn:aws:kms:us-east-1:123456789012:key/k-1",
    [WORKFLOW_ENV.nodeInstanceProfileArn]: "arn:aws:iam::123456789012:instance-profile/master",
  };

  it("create Tencent clusters when the stack gives the function its Tencent key, and only then", () => {
    // Act
    const withKey = awsLifecycleDeps(
      lambdaEnv("workflowTask", {
        ...base,
        [CONTROL_ENV.tencentCredentialsSecretArn]: "arn:aws:secretsmanager:us-east-1:123456789012:secret:tc",
      }),
    );
    const without = awsLifecycleDeps(lambdaEnv("workflowTask", base));

    // Assess
    expect(typeof withKey.clouds?.tencent).toBe("function");
    expect(withKey.clouds?.alibaba).toBeUndefined();
    expect(without.clouds).toBeUndefined();
  });

  const secrets = mockClient(SecretsManagerClient);
  afterEach(() => secrets.reset());

  it("creates Alibaba clusters with the stack's Alibaba key: KMS secrets in the master's script, Cloud Assistant to its agent", async () => {
    // Prepare
    const alibabaKey = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ali";
    secrets
      .on(GetSecretValueCommand, { SecretId: alibabaKey })
      .resolves({ SecretString: JSON.stringify({ accessKeyId: "LTAI-test", accessKeySecret: "k" }) });
    const deps = awsLifecycleDeps(
      lambdaEnv("workflowTask", { ...base, [CONTROL_ENV.alibabaCredentialsSecretArn]: alibabaKey }),
    );

    // Act
    const alibaba = await lifecycleDepsFor(deps, { cloud: "alibaba", region: "cn-hangzhou" });
    const script =
      alibaba.masterUserData?.({
        clusterId: "ali-1",
        region: "cn-hangzhou",
        mungeKeySecretId: "nowscale/ali-1/munge-key",
        agentKeySecretId: "nowscale/ali-1/agent-hmac-key",
        queues: [{ name: "compute" }],
      }) ?? "";
    const channel = await (
      alibaba.agent as unknown as { channelFor(c: string, m: { instanceId: string }): Promise<unknown> }
    ).channelFor("ali-1", { instanceId: "i-bpmaster" });

    // Assess
    expect(deps.clouds?.tencent).toBeUndefined();
    expect(alibaba.region).toBe("cn-hangzhou");
    expect(alibaba.provider().cloud).toBe("alibaba");
    expect(script).toContain("alibaba_secret 'nowscale/ali-1/munge-key' | base64 -d");
    expect(script).toContain("-d 100.100.100.200/32");
    expect(script).not.toContain("awscli");
    expect(script).not.toContain("aws secretsmanager");
    expect(channel).toBeInstanceOf(CloudAssistantAgentChannel);
  });
});
