import * as ecs from "@alicloud/ecs20140526";
import { renderMasterBootstrapScript } from "../../scheduler-plugins/slurm/master-bootstrap.js";
import { CloudAssistantAgentChannel } from "../agent-channels/cloud-assistant.js";
import type { Clock } from "../ports/clock.js";
import type { CloudProvider } from "../ports/cloud-provider.js";
import type { ClusterResources } from "../ports/cluster-resources.js";
import { AlibabaClusterResources } from "../providers/alibaba-ecs/cluster-resources.js";
import { type AlibabaAccessKey, cjsDefault, clientConfig, EcsApi } from "../providers/alibaba-ecs/ecs-api.js";
import { ManagedProvider } from "../providers/shared/managed-provider.js";
import { AgentChannelMasterAgent } from "../workflow/tasks/agent-channel-adapter.js";
import type { OtherCloudParts } from "../workflow/tasks/deps.js";

const EcsClient = cjsDefault(ecs.default);

export interface AlibabaLifecycleOptions {
  /** The stack's Alibaba key, read when a task starts (from Secrets Manager), so a rotated key is used. */
  credential(): Promise<AlibabaAccessKey>;
  /** The RAM role the master and the nodes run with (reads their cluster's secrets from KMS). */
  ramRoleName?: string;
  /** The KMS key of the secrets. @default the account's default key for Secrets Manager */
  encryptionKeyId?: string;
  /** The three services' endpoints and protocol (tests: the loopback simulator). */
  endpoints?: { ecs?: string; vpc?: string; kms?: string };
  protocol?: "https" | "http";
  clock?: Clock;
  /** Cloud Assistant's wait for one agent command. @default 30000 */
  agentTimeoutMs?: number;
}

/**
 * An Alibaba cluster's parts for the lifecycle tasks (deps.ts' OtherCloudParts): its network, security
 * group and secrets (AlibabaClusterResources), its instances (ECS), its master's agent reached through
 * Cloud Assistant (no inbound path to the master is needed), and the master's boot script reading its
 * secrets from KMS with the RAM role (no key in the user data, no Alibaba CLI).
 */
export interface AlibabaLifecycleParts extends OtherCloudParts {
  resources: ClusterResources;
  provider(options?: { securityGroupIds?: string[] }): CloudProvider;
}

/**
 * The factory the lifecycle dispatch calls per task with the cluster's region:
 * `clouds: { alibaba: alibabaLifecycleParts(options) }`.
 */
export function alibabaLifecycleParts(
  options: AlibabaLifecycleOptions,
): (placement: { region: string }) => Promise<AlibabaLifecycleParts> {
  return async ({ region }) => {
    const credential = await options.credential();
    const connection = {
      regionId: region,
      credential,
      ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
    };
    const ecsEndpoint = options.endpoints?.ecs === undefined ? {} : { endpoint: options.endpoints.ecs };
    const resources = new AlibabaClusterResources({
      ...connection,
      ...(options.endpoints === undefined ? {} : { endpoints: options.endpoints }),
      ...(options.encryptionKeyId === undefined ? {} : { encryptionKeyId: options.encryptionKeyId }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
    const client = new EcsClient(clientConfig({ ...connection, ...ecsEndpoint }));
    const agent = new AgentChannelMasterAgent(
      async (_clusterId, master) =>
        new CloudAssistantAgentChannel({
          client,
          regionId: region,
          instanceId: master.instanceId,
          ...(options.clock === undefined ? {} : { clock: options.clock }),
          ...(options.agentTimeoutMs === undefined ? {} : { timeoutMs: options.agentTimeoutMs }),
        }),
    );
    return {
      resources,
      agent,
      provider: (launch) =>
        new ManagedProvider(
          new EcsApi({
            ...connection,
            ...ecsEndpoint,
            client,
            ...(launch?.securityGroupIds === undefined ? {} : { securityGroupIds: launch.securityGroupIds }),
            ...(options.ramRoleName === undefined ? {} : { ramRoleName: options.ramRoleName }),
          }),
          options.clock === undefined ? {} : { clock: options.clock },
        ),
      masterUserData: (bootstrap) =>
        renderMasterBootstrapScript({ ...bootstrap, secretStore: "alibaba-kms" }),
    };
  };
}
