import { RemovalPolicy } from "aws-cdk-lib";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import type { StateMachineDefinition } from "../workflow/asl.js";
import {
  createClusterDefinition,
  definitionJson,
  deleteClusterDefinition,
  TASK_FUNCTION_ARN_KEY,
} from "../workflow/index.js";

export interface NowScaleWorkflowsProps {
  taskFunction: lambda.IFunction;
  logKey: kms.IKey;
  logRetention: logs.RetentionDays;
}

/**
 * The create and delete state machines from lib/workflow (the same definitions the local runner
 * executes), with the task Lambda's ARN substituted, full execution logging and X-Ray tracing. The
 * execution timeout is the definition's own TimeoutSeconds.
 */
export class NowScaleWorkflows extends Construct {
  readonly createCluster: sfn.StateMachine;
  readonly deleteCluster: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: NowScaleWorkflowsProps) {
    super(scope, id);
    this.createCluster = this.machine("CreateCluster", createClusterDefinition(), props);
    this.deleteCluster = this.machine("DeleteCluster", deleteClusterDefinition(), props);
  }

  private machine(id: string, definition: StateMachineDefinition, props: NowScaleWorkflowsProps) {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention: props.logRetention,
      encryptionKey: props.logKey,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new sfn.StateMachine(this, id, {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(definitionJson(definition)),
      definitionSubstitutions: { [TASK_FUNCTION_ARN_KEY]: props.taskFunction.functionArn },
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    props.taskFunction.grantInvoke(machine);
    return machine;
  }
}
