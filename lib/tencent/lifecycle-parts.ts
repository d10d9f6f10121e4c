import { renderMasterBootstrapScript } from "../../scheduler-plugins/slurm/master-bootstrap.js";
import { TatAgentChannel, tatClient } from "../agent-channels/tat.js";
import type { Clock } from "../ports/clock.js";
import { TencentClusterResources } from "../providers/tencent-cvm/cluster-resources.js";
import { createTencentCvmProvider } from "../providers/tencent-cvm/index.js";
import { AgentChannelMasterAgent } from "../workflow/tasks/agent-channel-adapter.js";
import type { CloudPartsFactory } from "../workflow/tasks/deps.js";

export interface TencentLifecyclePartsOptions {
  /** The stack's Tencent key, read when a task starts (the secret the scaler uses too). */
  credential(): Promise<{ secretId: string; secretKey: string }>;
  clock: Clock;
  /** The CAM role the master assumes: it reads the cluster's secrets with it (docs/clouds.md). */
  camRoleName?: string;
  /** One endpoint for every Tencent API (tests: the loopback simulator). @default the public ones */
  endpoint?: string;
  /** @default "https://" */
  protocol?: "https://" | "http://";
  /** How long one TAT command may take, and the wait between its polls. @default 30000, 1000 */
  agentTimeoutMs?: number;
  agentPollMs?: number;
}

/**
 * The lifecycle tasks' parts for a cluster on Tencent Cloud (LifecycleDeps.clouds.tencent): the VPC and
 * SSM resources, CVM instances in the cluster's VPC and security group, the master's agent reached
 * through TAT (the workflow's Lambda is not in the cluster's VPC). No default image: Tencent's public
 * image ids differ per region, so the request names `master.imageId`.
 */
export function tencentLifecycleParts(options: TencentLifecyclePartsOptions): CloudPartsFactory {
  return async ({ region }) => {
    const credential = await options.credential();
    const connection = {
      region,
      credential,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
    };
    const tat = tatClient(connection);
    return {
      resources: new TencentClusterResources(connection),
      provider: (launch = {}) =>
        createTencentCvmProvider({
          ...connection,
          clock: options.clock,
          ...(launch.securityGroupIds === undefined ? {} : { securityGroupIds: launch.securityGroupIds }),
          ...(launch.vpcId === undefined ? {} : { vpcId: launch.vpcId }),
          ...(options.camRoleName === undefined ? {} : { camRoleName: options.camRoleName }),
        }),
      agent: new AgentChannelMasterAgent(
        async (_clusterId, master) =>
          new TatAgentChannel({
            client: tat,
            instanceId: master.instanceId,
            clock: options.clock,
            ...(options.agentTimeoutMs === undefined ? {} : { timeoutMs: options.agentTimeoutMs }),
            ...(options.agentPollMs === undefined ? {} : { pollMs: options.agentPollMs }),
          }),
      ),
      // Tencent's public images carry the TAT agent; the secrets come from Tencent's SSM with the CVM role.
      masterUserData: (bootstrap) =>
        renderMasterBootstrapScript({ ...bootstrap, secretStore: "tencent-ssm" }),
    };
  };
}
