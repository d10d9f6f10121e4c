import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";
import { SsmAgentChannel } from "../agent-channels/ssm.js";
import { alibabaLifecycleParts } from "../alibaba/lifecycle-parts.js";
import { systemClock } from "../ports/clock.js";
import { AwsClusterResources } from "../providers/aws-ec2/cluster-resources.js";
import { AwsDefaultImages, createAwsEc2Provider } from "../providers/aws-ec2/index.js";
import { DynamoStateStore, storeClientConfig } from "../state/dynamo-store.js";
import { tencentLifecycleParts } from "../tencent/lifecycle-parts.js";
import { AgentChannelMasterAgent } from "../workflow/tasks/agent-channel-adapter.js";
import type { LifecycleDeps } from "../workflow/tasks/deps.js";
import { StateStoreLifecycleStore } from "../workflow/tasks/state-store-adapter.js";
import { CONTROL_ENV, type WorkflowTaskEnv } from "./env.js";
import { awsControlRuntime } from "./runtime.js";

/**
 * The lifecycle tasks' ports on AWS, from the function's parsed environment (lib/aws/env.ts). The health check goes through SSM
 * Run Command: the workflow Lambda is not inside each cluster's VPC, so the master's private address is
 * out of its reach.
 */
export function awsLifecycleDeps(env: WorkflowTaskEnv): LifecycleDeps {
  const { region, nodeInstanceProfileArn: instanceProfileArn, agentDocumentName: documentName } = env;
  const clock = systemClock;
  const store = new DynamoStateStore({
    client: new DynamoDBClient(storeClientConfig(region)),
    tables: env.tables,
  });
  const ssm = new SSMClient({ region });
  const control = awsControlRuntime(env);
  // Tencent clusters when the stack gives this function its Tencent key (docs/clouds.md); without it the
  // tasks never read a cluster's placement, as before.
  const tencent =
    env.credentialSecrets[CONTROL_ENV.tencentCredentialsSecretArn] === undefined
      ? undefined
      : tencentLifecycleParts({
          credential: control.tencentCredential,
          clock,
          ...(env.nodeRoles.tencent === undefined ? {} : { camRoleName: env.nodeRoles.tencent }),
        });
  // Alibaba clusters likewise, with the stack's Alibaba key.
  const alibaba =
    env.credentialSecrets[CONTROL_ENV.alibabaCredentialsSecretArn] === undefined
      ? undefined
      : alibabaLifecycleParts({
          credential: control.alibabaCredential,
          clock,
          ...(env.nodeRoles.alibaba === undefined ? {} : { ramRoleName: env.nodeRoles.alibaba }),
        });
  const clouds = {
    ...(tencent === undefined ? {} : { tencent }),
    ...(alibaba === undefined ? {} : { alibaba }),
  };
  return {
    store: new StateStoreLifecycleStore(store, clock),
    resources: new AwsClusterResources({ region, kmsKeyId: env.secretsKmsKeyArn }),
    provider: (options = {}) =>
      createAwsEc2Provider({
        region,
        instanceProfileArn,
        clock,
        ...(options.securityGroupIds === undefined ? {} : { securityGroupIds: options.securityGroupIds }),
      }),
    agent: new AgentChannelMasterAgent(
      async (_clusterId, master) =>
        new SsmAgentChannel({
          client: ssm,
          instanceId: master.instanceId,
          clock,
          ...(documentName === undefined ? {} : { documentName }),
        }),
    ),
    clock,
    region,
    // Detach reaches an attached cluster's cloud and agent as the scaler does (its own channel).
    controlPlane: { store, runtime: control.runtime },
    ...(Object.keys(clouds).length === 0 ? {} : { clouds }),
    images: new AwsDefaultImages(new EC2Client({ region }), ssm),
    ...(env.agentBundle === undefined ? {} : { agentBundle: env.agentBundle }),
    ...(env.wakeEventBus === undefined ? {} : { wakeEventBus: env.wakeEventBus }),
  };
}
