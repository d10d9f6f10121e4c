import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SFNClient } from "@aws-sdk/client-sfn";
import { lambdaEnv } from "../lib/aws/env.js";
import { cloudMasterPower } from "../lib/aws/master-power.js";
import { awsControlRuntime } from "../lib/aws/runtime.js";
import { SecretsManagerUserSecrets } from "../lib/aws/user-secrets.js";
import { createApiHandler } from "../lib/control/api/handler.js";
import { computeUserData } from "../lib/control/compute-user-data.js";
import { PowertoolsMetricsSink } from "../lib/control/metrics.js";
import { SfnWorkflowStarter } from "../lib/workflow/starter.js";

/** Every REST route (API Gateway proxy integration); lib/control/api/routes.ts does the work. */
const env = lambdaEnv("api");
const logger = new Logger();
const metrics = new Metrics({ namespace: env.metricsNamespace });
const { store, clock, runtime, zones, attach, tencentCredential, alibabaCredential, userSecrets } =
  awsControlRuntime(env);
const workflows = new SfnWorkflowStarter(
  new SFNClient({}),
  env.createStateMachineArn,
  env.deleteStateMachineArn,
);
const deps = {
  store,
  clock,
  runtime,
  attach,
  workflows,
  userData: computeUserData,
  metrics: new PowertoolsMetricsSink(metrics),
  // Clusters are made in the stack's own region (the workflow checks it again).
  region: env.region,
  // A queue's zones are checked against its cloud's region when a configuration is written.
  zones,
  // Sleep and wake stop and start a created cluster's master on its cloud (docs/control-plane.md); the
  // API's role reads the Tencent and Alibaba key secrets (lib/infra/stack.ts).
  masterPower: cloudMasterPower({ tencentCredential, alibabaCredential }),
  // Cluster users' passwords and keys (lib/control/users.ts): an AWS cluster's in Secrets Manager,
  // encrypted with the stack's secrets key; a Tencent or Alibaba cluster's in that cloud's secret store.
  userSecrets: userSecrets(
    new SecretsManagerUserSecrets(
      new SecretsManagerClient({ region: env.region }),
      // Set by the stack (lib/infra/stack.ts); Secrets Manager's default key without it.
      process.env.NOWSCALE_SECRETS_KMS_KEY_ARN,
    ),
  ),
};

export const handler = createApiHandler(deps, logger, metrics);
