import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import { CONTROL_ENV, WORKFLOW_ENV } from "../aws/env.js";
import { WAKE_DETAIL_TYPE, WAKE_SOURCE } from "../ports/wake.js";
import { AgentBundle } from "./agent-bundle.js";
import { AgentDocument } from "./agent-document.js";
import { NowScaleApi } from "./api.js";
import { NowScaleKeys } from "./keys.js";
import { nowscaleFunction } from "./lambda.js";
import { applyNagSuppressions } from "./nag-suppressions.js";
import { NodeRole } from "./node-role.js";
import { NowScaleObservability } from "./observability.js";
import {
  agentKeyStatement,
  agentOverSsmStatements,
  attachedMasterSsmStatement,
  clusterSecretStatements,
  launchIntoAttachedGroupsStatement,
  launchStatements,
  networkStatements,
  stopStartMastersStatement,
  terminateComputesStatement,
  terminateTaggedStatement,
  userSecretStatements,
  wakeStatement,
} from "./permissions.js";
import { NowScaleTables } from "./tables.js";
import { NowScaleWorkflows } from "./workflows.js";

/** Environment variables naming the third-party cloud credentials' secrets (lib/control/env.ts). */
export const CREDENTIALS_ENV = {
  tencent: CONTROL_ENV.tencentCredentialsSecretArn,
  alibaba: CONTROL_ENV.alibabaCredentialsSecretArn,
} as const;

export interface NowScaleStackProps extends StackProps {
  /**
   * How long every log group keeps its events.
   * @default logs.RetentionDays.ONE_MONTH
   */
  logRetention?: logs.RetentionDays;
  /** An address that receives the alarms. @default none: subscribe to the AlarmTopic output yourself */
  alarmEmail?: string;
  /** Minutes between reconciler runs: under 5, so an instance a crashed launch left unrecorded is adopted within 300 s. @default 2 */
  reconcilerIntervalMinutes?: number;
  /**
   * Keep the tables and the KMS keys when the stack is deleted.
   * @default true: `cdk destroy` leaves the data (and its keys) behind; see docs/deploy.md
   */
  retainData?: boolean;
  /**
   * How the scaler, reconciler and API reach each cluster's agent (NOWSCALE_AGENT_TRANSPORT).
   * @default "ssm": the functions are not attached to the clusters' VPCs, so the agent's private HTTP
   * address is out of their reach; SSM runs the agent's report and node actions on the master
   */
  agentTransport?: "http" | "ssm";
  /**
   * The CAM role (Tencent) and RAM role (Alibaba) that clusters' instances on those clouds run with, made
   * by you in that cloud: their boot scripts read the cluster's secrets with its temporary key
   * (docs/clouds.md). @default none: such instances boot without a role and cannot read their secrets
   */
  nodeRoleNames?: { tencent?: string; alibaba?: string };
}

/**
 * NowScale's control plane: tables, API, scaler (fan-out and per cluster), reconciler, the cluster
 * workflows and their task Lambda, cloud credentials, the node role, dashboard and alarms.
 */
export class NowScaleStack extends Stack {
  constructor(scope: Construct, id: string, props: NowScaleStackProps = {}) {
    super(scope, id, props);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const retain = props.retainData ?? true;

    const keys = new NowScaleKeys(this, "Keys");
    if (!retain) {
      keys.dataKey.applyRemovalPolicy(RemovalPolicy.DESTROY);
      keys.secretsKey.applyRemovalPolicy(RemovalPolicy.DESTROY);
    }
    const tables = new NowScaleTables(this, "Tables", {
      encryptionKey: keys.dataKey,
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    // Masters and computes get different roles (node-role.ts): a compute never holds the agent's key.
    const masterRole = new NodeRole(this, "MasterRole", { kind: "master", secretsKey: keys.secretsKey });
    const computeRole = new NodeRole(this, "ComputeRole", { kind: "compute", secretsKey: keys.secretsKey });

    // Placeholders in the JSON shape lib/control/aws-runtime.ts reads; the operator puts the real access
    // keys in with put-secret-value (docs/deploy.md).
    const credentialSecret = (id: string, cloud: string, idKey: string, secretKey: string) =>
      new secretsmanager.Secret(this, id, {
        description: `NowScale: ${cloud} access key (JSON {"${idKey}", "${secretKey}"}); replace the placeholder`,
        encryptionKey: keys.secretsKey,
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ [idKey]: "REPLACE_ME" }),
          generateStringKey: secretKey,
        },
      });
    const tencentCredentials = credentialSecret(
      "TencentCredentials",
      "Tencent Cloud",
      "secretId",
      "secretKey",
    );
    const alibabaCredentials = credentialSecret(
      "AlibabaCredentials",
      "Alibaba Cloud",
      "accessKeyId",
      "accessKeySecret",
    );

    // Event-driven scale-out: the masters' watchers put their wakes here, and only here (docs/deploy.md).
    const wakeBus = new events.EventBus(this, "WakeBus", {
      description: "NowScale: wakes from the masters' agents (new pending jobs)",
    });
    masterRole.role.addToPolicy(wakeStatement(wakeBus.eventBusArn, WAKE_SOURCE, WAKE_DETAIL_TYPE));

    const agentDocument = new AgentDocument(this, "AgentDocument");
    const agentBundle = new AgentBundle(this, "AgentBundle");
    agentBundle.grantRead(masterRole.role);
    const common = { logKey: keys.dataKey, logRetention };
    const tableEnv = tables.environment();
    const credentialsEnv = {
      [CREDENTIALS_ENV.tencent]: tencentCredentials.secretArn,
      [CREDENTIALS_ENV.alibaba]: alibabaCredentials.secretArn,
      ...(props.nodeRoleNames?.tencent === undefined
        ? {}
        : { [CONTROL_ENV.tencentNodeRoleName]: props.nodeRoleNames.tencent }),
      ...(props.nodeRoleNames?.alibaba === undefined
        ? {}
        : { [CONTROL_ENV.alibabaNodeRoleName]: props.nodeRoleNames.alibaba }),
    };
    // What every function that talks to clusters (scaler, reconciler, API) needs to reach them.
    const clusterEnv = {
      [CONTROL_ENV.agentTransport]: props.agentTransport ?? "ssm",
      [CONTROL_ENV.agentDocumentName]: agentDocument.documentName,
      [CONTROL_ENV.nodeInstanceProfileArn]: computeRole.instanceProfile.instanceProfileArn,
    };

    const workflowTask = nowscaleFunction(this, "WorkflowTask", {
      ...common,
      handlerFile: "workflow-task",
      description: "NowScale: one step of the create/delete cluster workflows",
      timeoutSeconds: 300,
      environment: {
        ...tableEnv,
        // Its Tencent and Alibaba keys make clusters on those clouds (docs/clouds.md).
        ...credentialsEnv,
        [WORKFLOW_ENV.secretsKmsKeyArn]: keys.secretsKey.keyArn,
        [WORKFLOW_ENV.nodeInstanceProfileArn]: masterRole.instanceProfile.instanceProfileArn,
        [WORKFLOW_ENV.agentDocumentName]: agentDocument.documentName,
        [WORKFLOW_ENV.agentBundleUrl]: agentBundle.url,
        [WORKFLOW_ENV.agentBundleSha256]: agentBundle.sha256,
        [WORKFLOW_ENV.wakeEventBus]: wakeBus.eventBusName,
      },
    });
    const workflows = new NowScaleWorkflows(this, "Workflows", { ...common, taskFunction: workflowTask });

    const scaler = nowscaleFunction(this, "Scaler", {
      ...common,
      handlerFile: "scaler",
      description: "NowScale: one cluster's scale cycle (poll, plan, launch, shrink)",
      // The cycle polls for up to 50 s and keeps 40 s for its last launch and records: 120 s lets it
      // poll four times a minute. A second invocation meanwhile finds the lease taken and exits.
      timeoutSeconds: 120,
      environment: { ...tableEnv, ...credentialsEnv, ...clusterEnv },
    });
    const fanout = nowscaleFunction(this, "ScalerFanout", {
      ...common,
      handlerFile: "scaler-fanout",
      description: "NowScale: starts one scaler invocation per running cluster",
      environment: { ...tableEnv, [CONTROL_ENV.scalerFunctionName]: scaler.functionName },
    });
    // The API starts the workflows; the reconciler starts them again for clusters left stuck.
    const workflowEnv = {
      [CONTROL_ENV.createStateMachineArn]: workflows.createCluster.stateMachineArn,
      [CONTROL_ENV.deleteStateMachineArn]: workflows.deleteCluster.stateMachineArn,
    };
    const reconciler = nowscaleFunction(this, "Reconciler", {
      ...common,
      handlerFile: "reconciler",
      description: "NowScale: orphans, stuck boots, protected mode, gone instances, stuck clusters",
      timeoutSeconds: 120,
      environment: { ...tableEnv, ...credentialsEnv, ...clusterEnv, ...workflowEnv },
    });
    const api = nowscaleFunction(this, "ApiHandler", {
      ...common,
      handlerFile: "api",
      description: "NowScale: the REST API",
      environment: {
        ...tableEnv,
        ...clusterEnv,
        ...credentialsEnv,
        ...workflowEnv,
        // Cluster users' secrets are encrypted with the secrets key (functions/api.ts).
        [WORKFLOW_ENV.secretsKmsKeyArn]: keys.secretsKey.keyArn,
      },
    });

    // Data: every function reads and writes the tables; nothing else does.
    for (const fn of [workflowTask, scaler, fanout, reconciler, api]) {
      for (const table of Object.values(tables.tables)) table.grantReadWriteData(fn);
    }
    // Clouds: the scaler, reconciler and API (nodes added or deleted by hand) launch and terminate
    // computes; the workflow launches and terminates masters and makes the network and secrets.
    const agentDocumentArn = `arn:${this.partition}:ssm:${this.region}:${this.account}:document/${agentDocument.documentName}`;
    for (const fn of [scaler, reconciler, api]) {
      for (const s of [
        ...launchStatements(this, [computeRole.role.roleArn]),
        terminateComputesStatement(this),
        ...agentOverSsmStatements(this, agentDocumentArn),
        agentKeyStatement(this),
        attachedMasterSsmStatement(this),
        launchIntoAttachedGroupsStatement(this),
      ])
        fn.addToRolePolicy(s);
      tencentCredentials.grantRead(fn);
      alibabaCredentials.grantRead(fn);
    }
    // Sleep and wake stop and start masters (lib/control/sleep.ts); only the API asks.
    api.addToRolePolicy(stopStartMastersStatement(this));
    for (const s of [
      ...launchStatements(this, [masterRole.role.roleArn]),
      terminateTaggedStatement(this),
      ...agentOverSsmStatements(this, agentDocumentArn),
      ...networkStatements(this),
      ...clusterSecretStatements(this),
      // Detach reaches an attached master over its own channel (lib/control/detach.ts).
      attachedMasterSsmStatement(this),
      agentKeyStatement(this),
    ])
      workflowTask.addToRolePolicy(s);
    keys.secretsKey.grantEncryptDecrypt(workflowTask);
    // Cluster users' passwords and keys (lib/control/users.ts), written by the API, read by the masters.
    for (const s of userSecretStatements(this)) api.addToRolePolicy(s);
    keys.secretsKey.grantEncryptDecrypt(api);
    tencentCredentials.grantRead(workflowTask);
    alibabaCredentials.grantRead(workflowTask);
    scaler.grantInvoke(fanout);
    for (const fn of [api, reconciler]) {
      for (const machine of [workflows.createCluster, workflows.deleteCluster]) {
        machine.grantStartExecution(fn);
        machine.grantExecution(fn, "states:DescribeExecution");
      }
    }

    // Schedules.
    new events.Rule(this, "ScalerSchedule", {
      description: "NowScale: scale every running cluster, every minute",
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(fanout, { retryAttempts: 0 })],
    });
    new events.Rule(this, "ReconcilerSchedule", {
      description: "NowScale: reconcile records and clouds",
      schedule: events.Schedule.rate(Duration.minutes(props.reconcilerIntervalMinutes ?? 2)),
      targets: [new targets.LambdaFunction(reconciler, { retryAttempts: 0 })],
    });

    // A wake runs the woken cluster's cycle at once (or makes the running one poll now); the minute's
    // schedule above stays the safety net, so a wake EventBridge could not deliver is not retried.
    new events.Rule(this, "WakeRule", {
      description: "NowScale: a master's agent saw new pending jobs: scale its cluster now",
      eventBus: wakeBus,
      eventPattern: { source: [WAKE_SOURCE], detailType: [WAKE_DETAIL_TYPE] },
      targets: [
        new targets.LambdaFunction(scaler, {
          event: events.RuleTargetInput.fromObject({
            clusterId: events.EventField.fromPath("$.detail.clusterId"),
            wake: true,
          }),
          retryAttempts: 0,
          maxEventAge: Duration.seconds(60),
        }),
      ],
    });

    const restApi = new NowScaleApi(this, "Api", { ...common, handler: api });
    const observability = new NowScaleObservability(this, "Observability", {
      topicKey: keys.dataKey,
      ...(props.alarmEmail === undefined ? {} : { alarmEmail: props.alarmEmail }),
    });
    keys.dataKey.grantEncryptDecrypt(new iam.ServicePrincipal("cloudwatch.amazonaws.com"));

    new CfnOutput(this, "ApiUrl", { value: restApi.api.url });
    new CfnOutput(this, "CreateClusterStateMachine", { value: workflows.createCluster.stateMachineArn });
    new CfnOutput(this, "DeleteClusterStateMachine", { value: workflows.deleteCluster.stateMachineArn });
    new CfnOutput(this, "TencentCredentialsSecret", { value: tencentCredentials.secretArn });
    new CfnOutput(this, "AlibabaCredentialsSecret", { value: alibabaCredentials.secretArn });
    new CfnOutput(this, "AlarmTopic", { value: observability.alarmTopic.topicArn });
    new CfnOutput(this, "Dashboard", { value: observability.dashboard.dashboardName });

    applyNagSuppressions(this);
  }
}
