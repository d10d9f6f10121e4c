import type { Catcher, StateMachineDefinition } from "./asl.js";
import { TEARDOWN_RETRY } from "./retry.js";
import { lambdaTask } from "./task.js";

/**
 * The cluster creation workflow. Input: `{clusterId, request}` (lib/control/lifecycle/request.ts).
 *
 * validate → record CREATING → network (or the user's) → security group → secrets → launch the master
 * → poll the agent's health (Wait/Choice loop until healthy or past the deadline) → record RUNNING.
 * Every step's failure goes to the clean-up chain, which removes what the ledger and the cluster's tag
 * say exists (instances, then secrets, then security group and network) and records FAILED with the
 * first failure's reason (and the clean-up's, if clean-up failed too).
 */

/** Seconds between two health polls of the master's agent. */
export const AGENT_POLL_INTERVAL_SECONDS = 20;

/** Long enough for the longest health timeout the request schema allows plus clean-up. */
const CREATE_TIMEOUT_SECONDS = 3 * 60 * 60;

const toCleanUp: Catcher[] = [
  { ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "CleanUpInstances" },
];
const cleanUpFailed: Catcher[] = [
  { ErrorEquals: ["States.ALL"], ResultPath: "$.cleanupError", Next: "RecordFailed" },
];

export function createClusterDefinition(): StateMachineDefinition {
  return {
    Comment:
      "NowScale: create a cluster (network, security group, secrets, master), undo everything on failure",
    StartAt: "Begin",
    TimeoutSeconds: CREATE_TIMEOUT_SECONDS,
    States: {
      Begin: {
        Type: "Pass",
        Comment: "An empty clean-up error, so RecordFailed's path always exists",
        Result: {},
        ResultPath: "$.cleanupError",
        Next: "Validate",
      },
      Validate: lambdaTask("validate", {
        parameters: { "request.$": "$.request" },
        resultPath: "$.request",
        next: "RecordCreating",
        catch: toCleanUp,
      }),
      RecordCreating: lambdaTask("recordStatus", {
        parameters: { status: "CREATING" },
        resultPath: null,
        next: "CreateNetwork",
        catch: toCleanUp,
      }),
      CreateNetwork: lambdaTask("createNetwork", {
        parameters: { "request.$": "$.request" },
        resultPath: "$.network",
        next: "CreateSecurityGroup",
        catch: toCleanUp,
        timeoutSeconds: 120,
      }),
      CreateSecurityGroup: lambdaTask("createSecurityGroup", {
        parameters: { "vpcId.$": "$.network.vpcId" },
        resultPath: "$.securityGroup",
        next: "CreateSecrets",
        catch: toCleanUp,
      }),
      CreateSecrets: lambdaTask("createSecrets", {
        // The secrets are tagged with the VPC: only its instances may read them (lib/infra/node-role.ts).
        parameters: { "vpcId.$": "$.network.vpcId" },
        resultPath: "$.secrets",
        next: "LaunchMaster",
        catch: toCleanUp,
      }),
      LaunchMaster: lambdaTask("launchMaster", {
        parameters: {
          "request.$": "$.request",
          "network.$": "$.network",
          "securityGroupId.$": "$.securityGroup.securityGroupId",
          "secrets.$": "$.secrets",
        },
        resultPath: "$.master",
        next: "WaitForAgent",
        catch: toCleanUp,
        timeoutSeconds: 300,
      }),
      WaitForAgent: { Type: "Wait", Seconds: AGENT_POLL_INTERVAL_SECONDS, Next: "CheckAgentHealth" },
      CheckAgentHealth: lambdaTask("checkAgentHealth", {
        parameters: { "master.$": "$.master" },
        resultPath: "$.health",
        next: "AgentReady",
        catch: toCleanUp,
      }),
      AgentReady: {
        Type: "Choice",
        Choices: [
          { Variable: "$.health.healthy", BooleanEquals: true, Next: "RecordRunning" },
          { Variable: "$.health.timedOut", BooleanEquals: true, Next: "AgentHealthTimedOut" },
        ],
        Default: "WaitForAgent",
      },
      AgentHealthTimedOut: {
        Type: "Pass",
        Result: {
          Error: "AgentHealthTimeout",
          Cause: "the master's agent did not pass its health check before agentHealthTimeoutSeconds",
        },
        ResultPath: "$.error",
        Next: "CleanUpInstances",
      },
      RecordRunning: lambdaTask("recordStatus", {
        parameters: { status: "RUNNING" },
        resultPath: null,
        next: "Created",
        catch: toCleanUp,
      }),
      Created: { Type: "Succeed" },

      CleanUpInstances: lambdaTask("terminateInstances", {
        parameters: { which: "all" },
        resultPath: null,
        next: "CleanUpAwaitInstancesGone",
        retry: TEARDOWN_RETRY,
        catch: cleanUpFailed,
      }),
      CleanUpAwaitInstancesGone: lambdaTask("awaitInstancesGone", {
        parameters: { which: "all" },
        resultPath: null,
        next: "CleanUpSecrets",
        retry: TEARDOWN_RETRY,
        catch: cleanUpFailed,
      }),
      CleanUpSecrets: lambdaTask("deleteSecrets", {
        resultPath: null,
        next: "CleanUpNetwork",
        retry: TEARDOWN_RETRY,
        catch: cleanUpFailed,
      }),
      CleanUpNetwork: lambdaTask("deleteNetwork", {
        resultPath: null,
        next: "RecordFailed",
        retry: TEARDOWN_RETRY,
        catch: cleanUpFailed,
        timeoutSeconds: 120,
      }),
      RecordFailed: lambdaTask("recordStatus", {
        parameters: { status: "FAILED", "error.$": "$.error", "cleanupError.$": "$.cleanupError" },
        resultPath: null,
        next: "CreationFailed",
        catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.recordError", Next: "CreationFailed" }],
      }),
      CreationFailed: {
        Type: "Fail",
        Error: "ClusterCreationFailed",
        Cause: "the cluster's record holds the reason",
      },
    },
  };
}
