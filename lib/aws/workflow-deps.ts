import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";
import { SsmAgentChannel } from "../agent-channels/ssm.js";
import { systemClock } from "../ports/clock.js";
import { AwsClusterResources } from "../providers/aws-ec2/cluster-resources.js";
import { AwsDefaultImages, createAwsEc2Provider } from "../providers/aws-ec2/index.js";
import { DynamoStateStore, storeClientConfig } from "../state/dynamo-store.js";
import { tableNamesFromEnv } from "../state/tables.js";
import { AgentChannelMasterAgent } from "../workflow/tasks/agent-channel-adapter.js";
import type { LifecycleDeps } from "../workflow/tasks/deps.js";
import { StateStoreLifecycleStore } from "../workflow/tasks/state-store-adapter.js";
import { requireEnv } from "./control-env.js";
import { WORKFLOW_ENV } from "./workflow-env.js";

/**
 * The lifecycle tasks' ports on AWS, from the Lambda's environment. The health check goes through SSM
 * Run Command: the workflow Lambda is not inside each cluster's VPC, so the master's private address is
 * out of its reach.
 */
export function awsLifecycleDeps(env: NodeJS.ProcessEnv = process.env): LifecycleDeps {
  const region = requireEnv("AWS_REGION", env);
  const clock = systemClock;
  const store = new DynamoStateStore({
    client: new DynamoDBClient(storeClientConfig(region)),
    tables: tableNamesFromEnv(env),
  });
  const ssm = new SSMClient({ region });
  const instanceProfileArn = requireEnv(WORKFLOW_ENV.nodeInstanceProfileArn, env);
  const documentName = env[WORKFLOW_ENV.agentDocumentName];
  const bundleUrl = env[WORKFLOW_ENV.agentBundleUrl];
  const bundleSha256 = env[WORKFLOW_ENV.agentBundleSha256];
  const wakeEventBus = env[WORKFLOW_ENV.wakeEventBus];
  return {
    store: new StateStoreLifecycleStore(store, clock),
    resources: new AwsClusterResources({ region, kmsKeyId: requireEnv(WORKFLOW_ENV.secretsKmsKeyArn, env) }),
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
          ...(documentName === undefined || documentName === "" ? {} : { documentName }),
        }),
    ),
    clock,
    region,
    images: new AwsDefaultImages(new EC2Client({ region }), ssm),
    ...(bundleUrl === undefined || bundleSha256 === undefined
      ? {}
      : { agentBundle: { url: bundleUrl, sha256: bundleSha256 } }),
    ...(wakeEventBus === undefined || wakeEventBus === "" ? {} : { wakeEventBus }),
  };
}
