import * as ecs from "@alicloud/ecs20140526";
import { CloudAssistantAgentChannel } from "../agent-channels/cloud-assistant.js";
import { TatAgentChannel, tatClient } from "../agent-channels/tat.js";
import type { AgentChannel } from "../ports/agent-channel.js";
import type { AttachNetworkCheck } from "../ports/attach-network.js";
import type { Clock } from "../ports/clock.js";
import type { UserSecretStore } from "../ports/user-secrets.js";
import {
  AlibabaAttachNetworkCheck,
  alibabaAttachNetworkClients,
} from "../providers/alibaba-ecs/attach-network.js";
import { type AlibabaAccessKey, cjsDefault, clientConfig } from "../providers/alibaba-ecs/ecs-api.js";
import { AlibabaUserSecrets } from "../providers/alibaba-ecs/user-secrets.js";
import {
  TencentAttachNetworkCheck,
  tencentAttachNetworkClients,
} from "../providers/tencent-cvm/attach-network.js";
import { TencentUserSecrets } from "../providers/tencent-cvm/user-secrets.js";

const EcsClient = cjsDefault(ecs.default);

/**
 * How the control plane reaches Tencent's and Alibaba's APIs: the stack's keys for each (read when
 * needed, so a rotated key is used) and, in tests, the loopback simulators' endpoints.
 */
export interface RunCommandCloudAccess {
  clock: Clock;
  tencentCredential(): Promise<{ secretId: string; secretKey: string }>;
  alibabaCredential(): Promise<AlibabaAccessKey>;
  /** One endpoint for every Tencent API. @default the public ones */
  tencentEndpoint?: string;
  tencentProtocol?: "https://" | "http://";
  alibabaEndpoints?: { ecs?: string; vpc?: string; kms?: string };
  alibabaProtocol?: "https" | "http";
  /** Between the channel's polls of a command. @default the channel's (1 s) */
  pollMs?: number;
}

/** An endpoint reached through a cloud's run-command channel (lib/ports/state-store.ts, AgentEndpoint). */
export type RunCommandEndpoint = { kind: "tat" | "cloud-assistant"; instanceId: string };

/**
 * The channel to an attached master through its cloud's run-command service: TAT RunCommand on a CVM
 * instance, Cloud Assistant RunCommand on an ECS one, in `region` with the stack's key. The attach probe
 * and every later scale cycle, reconcile and detach build it from the recorded endpoint alike.
 */
export async function runCommandAgentChannel(
  endpoint: RunCommandEndpoint,
  region: string,
  access: RunCommandCloudAccess,
  timeoutMs?: number,
): Promise<AgentChannel> {
  const waits = {
    clock: access.clock,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(access.pollMs === undefined ? {} : { pollMs: access.pollMs }),
  };
  if (endpoint.kind === "tat") {
    return new TatAgentChannel({
      client: tatClient({
        region,
        credential: await access.tencentCredential(),
        ...(access.tencentEndpoint === undefined ? {} : { endpoint: access.tencentEndpoint }),
        ...(access.tencentProtocol === undefined ? {} : { protocol: access.tencentProtocol }),
      }),
      instanceId: endpoint.instanceId,
      ...waits,
    });
  }
  return new CloudAssistantAgentChannel({
    client: new EcsClient(
      clientConfig({
        regionId: region,
        credential: await access.alibabaCredential(),
        ...(access.alibabaEndpoints?.ecs === undefined ? {} : { endpoint: access.alibabaEndpoints.ecs }),
        ...(access.alibabaProtocol === undefined ? {} : { protocol: access.alibabaProtocol }),
      }),
    ),
    regionId: region,
    instanceId: endpoint.instanceId,
    ...waits,
  });
}

/**
 * The attach network check of a Tencent or Alibaba cluster (lib/providers/tencent-cvm/attach-network.ts,
 * lib/providers/alibaba-ecs/attach-network.ts); undefined for other clouds. The key is read at the check.
 */
export function runCommandAttachNetwork(
  cloud: string,
  region: string,
  access: RunCommandCloudAccess,
): AttachNetworkCheck | undefined {
  if (cloud === "tencent")
    return {
      check: async (input) =>
        new TencentAttachNetworkCheck(
          tencentAttachNetworkClients({
            region,
            credential: await access.tencentCredential(),
            ...(access.tencentEndpoint === undefined ? {} : { endpoint: access.tencentEndpoint }),
            ...(access.tencentProtocol === undefined ? {} : { protocol: access.tencentProtocol }),
          }),
        ).check(input),
    };
  if (cloud === "alibaba")
    return {
      check: async (input) =>
        new AlibabaAttachNetworkCheck(
          alibabaAttachNetworkClients({
            regionId: region,
            credential: await access.alibabaCredential(),
            ...(access.alibabaEndpoints === undefined ? {} : { endpoints: access.alibabaEndpoints }),
            ...(access.alibabaProtocol === undefined ? {} : { protocol: access.alibabaProtocol }),
          }),
          region,
        ).check(input),
    };
  return undefined;
}

/**
 * The users' secret store of a Tencent or Alibaba cluster in `region` (SSM on Tencent, KMS Secrets
 * Manager on Alibaba: lib/providers/{tencent-cvm,alibaba-ecs}/user-secrets.ts), with the stack's key read at each call (a rotated
 * key is used). Its master reads them with its own instance role (users-apply.ts readUserSecret).
 */
export function runCommandUserSecrets(
  cloud: "tencent" | "alibaba",
  region: string,
  access: RunCommandCloudAccess,
): UserSecretStore {
  const make = async (): Promise<UserSecretStore> =>
    cloud === "tencent"
      ? new TencentUserSecrets({
          region,
          credential: await access.tencentCredential(),
          ...(access.tencentEndpoint === undefined ? {} : { endpoint: access.tencentEndpoint }),
          ...(access.tencentProtocol === undefined ? {} : { protocol: access.tencentProtocol }),
        })
      : new AlibabaUserSecrets({
          regionId: region,
          credential: await access.alibabaCredential(),
          ...(access.alibabaEndpoints?.kms === undefined
            ? {}
            : { endpoints: { kms: access.alibabaEndpoints.kms } }),
          ...(access.alibabaProtocol === undefined ? {} : { protocol: access.alibabaProtocol }),
        });
  return {
    put: async (clusterId, user, value, scope) => (await make()).put(clusterId, user, value, scope),
    remove: async (secretId) => (await make()).remove(secretId),
  };
}
