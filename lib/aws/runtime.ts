import * as ecs from "@alicloud/ecs20140526";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SSMClient } from "@aws-sdk/client-ssm";
import { CloudAssistantAgentChannel } from "../agent-channels/cloud-assistant.js";
import { HttpAgentChannel } from "../agent-channels/http.js";
import { SsmAgentChannel } from "../agent-channels/ssm.js";
import { TatAgentChannel, tatClient } from "../agent-channels/tat.js";
import { type AttachPorts, AttachRefusedError } from "../control/attach.js";
import type { ZonesOf } from "../control/zones.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import { type Clock, systemClock } from "../ports/clock.js";
import { type CloudProvider, DEFAULT_IMAGE } from "../ports/cloud-provider.js";
import type { AgentEndpoint, ClusterRecord } from "../ports/state-store.js";
import type { UserSecretStore } from "../ports/user-secrets.js";
import { AlibabaClusterResources } from "../providers/alibaba-ecs/cluster-resources.js";
import { cjsDefault, clientConfig } from "../providers/alibaba-ecs/ecs-api.js";
import { createAlibabaEcsProvider } from "../providers/alibaba-ecs/index.js";
import { AwsAttachNetworkCheck } from "../providers/aws-ec2/attach-network.js";
import { createAwsEc2Provider } from "../providers/aws-ec2/index.js";
import { createTencentCvmProvider } from "../providers/tencent-cvm/index.js";
import { DynamoStateStore, storeClientConfig } from "../state/dynamo-store.js";
import { type ClusterAccessEnv, CONTROL_ENV } from "./env.js";
import {
  type RunCommandCloudAccess,
  runCommandAgentChannel,
  runCommandAttachNetwork,
  runCommandUserSecrets,
} from "./run-command-clouds.js";
import { CloudUserSecrets } from "./user-secrets.js";

const EcsClient = cjsDefault(ecs.default);

/** What of a cluster record picks and configures its provider (a zone listing needs only the placement). */
type ProviderScope = Pick<ClusterRecord, "placement" | "resources" | "attachment" | "spec">;

/** How a cluster's cloud and agent are reached: what the scaler, reconciler and API need per cluster. */
export type ClusterRuntime = (
  cluster: ClusterRecord,
) => Promise<{ provider: CloudProvider; agent: AgentChannel }>;

/**
 * The control plane's ports on AWS, from the function's parsed environment (lib/aws/env.ts). One provider
 * per (cloud, region) is kept for the life of the container so the unavailable-offering cache carries
 * across invocations. Tencent and Alibaba clusters use the access key in the Secrets Manager secret named
 * by NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN (`{"secretId","secretKey"}`) or
 * NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN (`{"accessKeyId","accessKeySecret"}`).
 */
export function awsControlRuntime(
  env: ClusterAccessEnv,
  /** Alibaba's ECS and VPC endpoints and protocol (tests: the loopback simulator). @default the public ones */
  alibabaEndpoints: { ecs?: string; vpc?: string; kms?: string; protocol?: "https" | "http" } = {},
) {
  const region = env.region;
  const clock: Clock = systemClock;
  const store = new DynamoStateStore({
    client: new DynamoDBClient(storeClientConfig(region)),
    tables: env.tables,
  });
  const secrets = new SecretsManagerClient({ region });
  const ssm = new SSMClient({ region });
  const providers = new Map<string, CloudProvider>();
  const keys = new Map<string, Uint8Array>();

  const secretJson = async (
    envName: keyof ClusterAccessEnv["credentialSecrets"],
  ): Promise<Record<string, unknown>> => {
    const secretId = env.credentialSecrets[envName];
    if (secretId === undefined) throw new Error(`environment variable ${envName} is not set`);
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    const parsed: unknown = JSON.parse(out.SecretString ?? "{}");
    if (typeof parsed !== "object" || parsed === null)
      throw new Error(`secret ${envName} is not a JSON object`);
    return parsed as Record<string, unknown>;
  };
  const text = (o: Record<string, unknown>, key: string, envName: string): string => {
    const v = o[key];
    if (typeof v !== "string" || v === "") throw new Error(`secret ${envName} has no ${key}`);
    return v;
  };

  /** The stack's Tencent key (the secret NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN names). */
  const tencentCredential = async () => {
    const name = CONTROL_ENV.tencentCredentialsSecretArn;
    const s = await secretJson(name);
    return { secretId: text(s, "secretId", name), secretKey: text(s, "secretKey", name) };
  };

  /** The stack's Alibaba key (the secret NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN names). */
  const alibabaCredential = async () => {
    const name = CONTROL_ENV.alibabaCredentialsSecretArn;
    const s = await secretJson(name);
    return { accessKeyId: text(s, "accessKeyId", name), accessKeySecret: text(s, "accessKeySecret", name) };
  };
  const alibabaConnection = async (regionId: string) => ({
    regionId,
    credential: await alibabaCredential(),
    ...(alibabaEndpoints.protocol === undefined ? {} : { protocol: alibabaEndpoints.protocol }),
  });

  const provider = async (cluster: ProviderScope): Promise<CloudProvider> => {
    const { cloud, region: clusterRegion } = cluster.placement;
    // An attached cluster's computes go into the user's own security groups (never NowScale's to delete).
    const securityGroupIds = [
      ...cluster.resources.filter((r) => r.type === "securityGroup").map((r) => r.id),
      ...(cluster.attachment?.securityGroupIds ?? []),
    ];
    // An attached cluster's computes go into the VPC its subnets are in (recorded at attach).
    const vpcId = cluster.resources.find((r) => r.type === "vpc")?.id ?? cluster.attachment?.vpcId;
    const cacheKey = `${cloud}:${clusterRegion}:${securityGroupIds.join(",")}:${vpcId ?? ""}:${clusterSubnets(cluster).join(",")}`;
    const cached = providers.get(cacheKey);
    if (cached !== undefined) return cached;
    let p: CloudProvider;
    if (cloud === "aws") {
      const instanceProfileArn = env.nodeInstanceProfileArn;
      p = createAwsEc2Provider({
        region: clusterRegion,
        clock,
        securityGroupIds,
        // Computes go to the cluster's own subnet in their zone (lib/providers/aws-ec2/ec2-api.ts).
        subnetIds: clusterSubnets(cluster),
        ...(instanceProfileArn === undefined ? {} : { instanceProfileArn }),
      });
    } else if (cloud === "tencent") {
      p = createTencentCvmProvider({
        region: clusterRegion,
        clock,
        securityGroupIds,
        credential: await tencentCredential(),
        ...(vpcId === undefined ? {} : { vpcId }),
        // The computes read the munge key from SSM with this role's key (compute-user-data.ts).
        ...(env.nodeRoles.tencent === undefined ? {} : { camRoleName: env.nodeRoles.tencent }),
      });
    } else if (cloud === "alibaba") {
      const connection = await alibabaConnection(clusterRegion);
      // Computes go to the cluster's VSwitch in their zone: a launch without one lands in the region's
      // default VPC, which many regions lack (and which is not the cluster's network).
      const subnets = new Set(clusterSubnets(cluster));
      const network = vpcId ?? clusterVpc(cluster);
      const vSwitches =
        network === undefined || subnets.size === 0
          ? []
          : (
              await new AlibabaClusterResources({
                ...connection,
                ...(alibabaEndpoints.vpc === undefined ? {} : { endpoints: { vpc: alibabaEndpoints.vpc } }),
              }).vSwitches(network)
            ).filter((s) => subnets.has(s.vSwitchId));
      p = createAlibabaEcsProvider({
        ...connection,
        ...(alibabaEndpoints.ecs === undefined ? {} : { endpoint: alibabaEndpoints.ecs }),
        clock,
        securityGroupIds,
        vSwitches,
        // The computes read the munge key from KMS with this role's key (compute-user-data.ts).
        ...(env.nodeRoles.alibaba === undefined ? {} : { ramRoleName: env.nodeRoles.alibaba }),
      });
    } else {
      throw new Error(`cloud ${cloud} has no provider in the Lambda runtime`);
    }
    providers.set(cacheKey, p);
    return p;
  };

  const agentKey = async (secretId: string): Promise<Uint8Array> => {
    const cached = keys.get(secretId);
    if (cached !== undefined) return cached;
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    // The agent uses the key file's text, trimmed, as the key bytes (agent/key.ts): the same here.
    const key = Buffer.from((out.SecretString ?? "").trim(), "utf8");
    keys.set(secretId, key);
    return key;
  };

  const documentName = env.agentDocumentName;
  /** Tencent's and Alibaba's APIs with the stack's keys (TAT, Cloud Assistant, the attach network check). */
  const otherClouds: RunCommandCloudAccess = {
    clock,
    tencentCredential,
    alibabaCredential,
    ...(alibabaEndpoints.ecs === undefined &&
    alibabaEndpoints.vpc === undefined &&
    alibabaEndpoints.kms === undefined
      ? {}
      : {
          alibabaEndpoints: {
            ...(alibabaEndpoints.ecs === undefined ? {} : { ecs: alibabaEndpoints.ecs }),
            ...(alibabaEndpoints.vpc === undefined ? {} : { vpc: alibabaEndpoints.vpc }),
            ...(alibabaEndpoints.kms === undefined ? {} : { kms: alibabaEndpoints.kms }),
          },
        }),
    ...(alibabaEndpoints.protocol === undefined ? {} : { alibabaProtocol: alibabaEndpoints.protocol }),
  };
  /**
   * The channel an endpoint names, whatever the stack's default transport: an attached master's own
   * choice (TAT and Cloud Assistant in the cluster's region).
   */
  const channelTo = async (
    endpoint: AgentEndpoint,
    clusterRegion: string,
    timeoutMs?: number,
  ): Promise<AgentChannel> => {
    if (endpoint.kind === "http" && endpoint.keySecretArn !== undefined)
      return new HttpAgentChannel({
        baseUrl: endpoint.url,
        key: await agentKey(endpoint.keySecretArn),
        clock,
      });
    if (endpoint.kind === "tat" || endpoint.kind === "cloud-assistant")
      return runCommandAgentChannel(endpoint, clusterRegion, otherClouds, timeoutMs);
    if (endpoint.kind !== "ssm") throw new Error("no agent endpoint");
    return new SsmAgentChannel({
      client: ssm,
      instanceId: endpoint.instanceId,
      clock,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(documentName === undefined || documentName === "" ? {} : { documentName }),
    });
  };

  const agent = async (cluster: ClusterRecord): Promise<AgentChannel> => {
    if (cluster.attachment !== undefined) return channelTo(cluster.agent, cluster.placement.region);
    const transport = env.agentTransport;
    const a = cluster.agent;
    if (transport === "http" && a.kind === "http" && a.keySecretArn !== undefined) {
      return new HttpAgentChannel({ baseUrl: a.url, key: await agentKey(a.keySecretArn), clock });
    }
    const master =
      a.kind === "ssm" ? a.instanceId : cluster.resources.find((r) => r.type === "masterInstance")?.id;
    if (master === undefined) throw new Error(`cluster ${cluster.clusterId} has no reachable agent yet`);
    // A created Tencent cluster's master is reached through TAT, the run-command channel of its own cloud.
    if (cluster.placement.cloud === "tencent")
      return new TatAgentChannel({
        client: tatClient({ region: cluster.placement.region, credential: await tencentCredential() }),
        instanceId: master,
        clock,
      });
    // An Alibaba cluster's through Cloud Assistant, likewise.
    if (cluster.placement.cloud === "alibaba") {
      const connection = await alibabaConnection(cluster.placement.region);
      return new CloudAssistantAgentChannel({
        client: new EcsClient(
          clientConfig({
            ...connection,
            ...(alibabaEndpoints.ecs === undefined ? {} : { endpoint: alibabaEndpoints.ecs }),
          }),
        ),
        regionId: cluster.placement.region,
        instanceId: master,
        clock,
      });
    }
    return new SsmAgentChannel({
      client: ssm,
      instanceId: master,
      clock,
      ...(env.agentDocumentName === undefined ? {} : { documentName: env.agentDocumentName }),
    });
  };

  const runtime: ClusterRuntime = async (cluster) => ({
    provider: await provider(cluster),
    agent: await agent(cluster),
  });

  /**
   * A cloud's zones in a region, for the API's check of a configuration (lib/control/zones.ts): the
   * provider of that cloud and region without a cluster's network (kept, with its zone list, for the
   * container's life like the others).
   */
  const zones: ZonesOf = async ({ cloud, region: zoneRegion }) =>
    (
      await provider({ placement: { cloud, region: zoneRegion, imageId: DEFAULT_IMAGE }, resources: [] })
    ).zones();

  /**
   * Attaching a master (lib/control/attach.ts): its channel from the request (the agent key read from the
   * secret it names; SSM within 20 s, inside API Gateway's 29 s), and the EC2 network check for AWS.
   */
  const attach: AttachPorts = {
    probe: async (request, endpoint) => {
      try {
        return await channelTo(endpoint, request.region, 20_000);
      } catch (error) {
        if (request.master.channel === "tat" || request.master.channel === "cloud-assistant") {
          // Only the stack's key for that cloud is read here: its secret is missing or unreadable.
          const message =
            `cannot read the stack's ${request.cloud} key: ${(error as Error).name}: ${(error as Error).message}`.slice(
              0,
              500,
            );
          throw new AttachRefusedError(`master.channel: ${message}`, [{ path: "master.channel", message }]);
        }
        const message =
          `cannot read the agent's key from ${request.master.agentKeySecret}: ${(error as Error).name}: ${(error as Error).message}`.slice(
            0,
            500,
          );
        throw new AttachRefusedError(`master.agentKeySecret: ${message}`, [
          { path: "master.agentKeySecret", message },
        ]);
      }
    },
    network: (request) =>
      request.cloud === "aws"
        ? new AwsAttachNetworkCheck(new EC2Client({ region: request.region }))
        : runCommandAttachNetwork(request.cloud, request.region, otherClouds),
  };
  /**
   * Cluster users' secrets (lib/control/users.ts) over AWS's store `aws`: a Tencent or Alibaba cluster's in
   * its own cloud's store in its region, with the stack's key (CloudUserSecrets).
   */
  const userSecrets = (aws: UserSecretStore): UserSecretStore =>
    new CloudUserSecrets(aws, (cloud, clusterRegion) =>
      runCommandUserSecrets(cloud, clusterRegion, otherClouds),
    );

  return { store, clock, runtime, zones, attach, tencentCredential, alibabaCredential, userSecrets };
}

/** The subnets NowScale made for the cluster, or the user's own from the create request. */
export function clusterSubnets(cluster: Pick<ClusterRecord, "resources" | "attachment" | "spec">): string[] {
  if (cluster.attachment !== undefined) return [...cluster.attachment.subnetIds];
  const made = cluster.resources.filter((r) => r.type === "subnet").map((r) => r.id);
  if (made.length > 0) return made;
  const network = (cluster.spec as { network?: { subnetIds?: unknown } } | undefined)?.network;
  const given = network?.subnetIds;
  return Array.isArray(given) ? given.filter((s): s is string => typeof s === "string") : [];
}

/** The cluster's VPC: the one NowScale made, or the user's own from the create request. */
export function clusterVpc(cluster: Pick<ClusterRecord, "resources" | "spec">): string | undefined {
  const made = cluster.resources.find((r) => r.type === "vpc")?.id;
  if (made !== undefined) return made;
  const given = (cluster.spec as { network?: { vpcId?: unknown } } | undefined)?.network?.vpcId;
  return typeof given === "string" ? given : undefined;
}
