import type { Catcher, StateMachineDefinition } from "./asl.js";
import { TEARDOWN_RETRY } from "./retry.js";
import { lambdaTask } from "./task.js";

/**
 * The cluster deletion workflow. Input: `{clusterId}`.
 *
 * record DELETING → which origin? A created cluster: drain (best effort) → wait for compute launches in
 * flight (the fence: no launch is admitted once the cluster is DELETING) → terminate the computes and
 * wait until they are gone → terminate the master and wait → delete the secrets → delete the security
 * group and network → record DELETED.
 * An attached cluster (docs/attach.md) takes the detach path instead, which never reaches a step above:
 * detach steps (lib/control/detach.ts) every 15-300 s retire what NowScale launched, by the retirement
 * protocol (drained, idle in two steps in a row, never a node running a job), until none is left; then
 * record DELETED. The master, its network and secrets are the user's and are never touched.
 * A failure records DELETE_FAILED with its reason; running the workflow again resumes, since every step
 * is idempotent.
 */

/**
 * The deletion path ends within about two hours (every step's retries are bounded); the detach path
 * waits for jobs running on NowScale's nodes, up to MAX_DETACH_STEPS steps (about a week).
 */
const DELETE_TIMEOUT_SECONDS = 8 * 24 * 60 * 60;

const toFailed: Catcher[] = [
  { ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "RecordDeleteFailed" },
];

export function deleteClusterDefinition(): StateMachineDefinition {
  return {
    Comment: "NowScale: delete a cluster (drain, terminate computes, terminate master, secrets, network)",
    StartAt: "RecordDeleting",
    TimeoutSeconds: DELETE_TIMEOUT_SECONDS,
    States: {
      RecordDeleting: lambdaTask("recordStatus", {
        parameters: { status: "DELETING" },
        resultPath: null,
        next: "Origin",
        catch: toFailed,
      }),
      Origin: lambdaTask("clusterOrigin", { resultPath: "$.origin", next: "IsAttached", catch: toFailed }),
      IsAttached: {
        Type: "Choice",
        Choices: [{ Variable: "$.origin.attached", BooleanEquals: true, Next: "DetachBegin" }],
        Default: "Drain",
      },
      DetachBegin: {
        Type: "Pass",
        Comment: "an attached cluster: retire NowScale's nodes only, never the master",
        Result: { idle: [], absent: [], steps: 0, done: false, waitSeconds: 0 },
        ResultPath: "$.detach",
        Next: "DetachStep",
      },
      DetachStep: lambdaTask("detachStep", {
        parameters: {
          "previous.$": "$.detach",
        },
        resultPath: "$.detach",
        next: "Detached?",
        timeoutSeconds: 120,
        catch: toFailed,
      }),
      "Detached?": {
        Type: "Choice",
        Choices: [{ Variable: "$.detach.done", BooleanEquals: true, Next: "RecordDeleted" }],
        Default: "DetachWait",
      },
      DetachWait: { Type: "Wait", SecondsPath: "$.detach.waitSeconds", Next: "DetachStep" },
      Drain: lambdaTask("drain", {
        resultPath: "$.drain",
        next: "AwaitLaunchesSettled",
        // The instances go anyway; a failed drain only means jobs were not told first.
        catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.drainError", Next: "AwaitLaunchesSettled" }],
      }),
      AwaitLaunchesSettled: lambdaTask("awaitLaunchesSettled", {
        resultPath: null,
        next: "TerminateComputes",
        retry: TEARDOWN_RETRY,
        // After the retries (about ten minutes, longer than any launcher's Lambda lives) deletion goes on:
        // a launch that still lands finds the cluster not RUNNING and terminates what it started.
        catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.launchesError", Next: "TerminateComputes" }],
        comment: "launches admitted before DELETING finish first, so the sweeps below see their instances",
      }),
      TerminateComputes: lambdaTask("terminateInstances", {
        parameters: { which: "computes" },
        resultPath: null,
        next: "AwaitComputesGone",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
      }),
      AwaitComputesGone: lambdaTask("awaitInstancesGone", {
        parameters: { which: "computes" },
        resultPath: null,
        next: "TerminateMaster",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
      }),
      TerminateMaster: lambdaTask("terminateInstances", {
        parameters: { which: "all" },
        resultPath: null,
        next: "AwaitMasterGone",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
        comment: "all, not only the master: a compute launched during the drain is caught here",
      }),
      AwaitMasterGone: lambdaTask("awaitInstancesGone", {
        parameters: { which: "all" },
        resultPath: null,
        next: "DeleteSecrets",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
      }),
      DeleteSecrets: lambdaTask("deleteSecrets", {
        resultPath: null,
        next: "DeleteNetwork",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
      }),
      DeleteNetwork: lambdaTask("deleteNetwork", {
        resultPath: null,
        next: "RecordDeleted",
        retry: TEARDOWN_RETRY,
        catch: toFailed,
        timeoutSeconds: 120,
      }),
      RecordDeleted: lambdaTask("recordStatus", {
        parameters: { status: "DELETED" },
        resultPath: null,
        next: "Deleted",
        catch: toFailed,
      }),
      Deleted: { Type: "Succeed" },
      RecordDeleteFailed: lambdaTask("recordStatus", {
        parameters: { status: "DELETE_FAILED", "error.$": "$.error" },
        resultPath: null,
        next: "DeletionFailed",
        catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.recordError", Next: "DeletionFailed" }],
      }),
      DeletionFailed: {
        Type: "Fail",
        Error: "ClusterDeletionFailed",
        Cause: "the cluster's record holds the reason",
      },
    },
  };
}
