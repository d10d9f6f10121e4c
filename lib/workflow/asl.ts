/**
 * A small typed subset of the Amazon States Language: what the NowScale workflows use, so a typo in a
 * field name fails the type check instead of the deployment.
 */

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: "FULL" | "NONE";
}

export interface Catcher {
  ErrorEquals: string[];
  ResultPath?: string | null;
  Next: string;
}

export interface TaskState {
  Type: "Task";
  Comment?: string;
  Resource: string;
  Parameters: Record<string, unknown>;
  ResultPath: string | null;
  TimeoutSeconds: number;
  Retry?: Retrier[];
  Catch?: Catcher[];
  Next?: string;
  End?: true;
}

export type WaitState =
  | { Type: "Wait"; Seconds: number; Next: string }
  /** Seconds read from the state (a number there). */
  | { Type: "Wait"; SecondsPath: string; Next: string };

export interface ChoiceRule {
  Variable: string;
  BooleanEquals: boolean;
  Next: string;
}

export interface ChoiceState {
  Type: "Choice";
  Choices: ChoiceRule[];
  Default: string;
}

export interface PassState {
  Type: "Pass";
  Comment?: string;
  Result?: unknown;
  ResultPath?: string | null;
  Next: string;
}

export interface SucceedState {
  Type: "Succeed";
}

export interface FailState {
  Type: "Fail";
  Error: string;
  Cause?: string;
  ErrorPath?: string;
  CausePath?: string;
}

export type State = TaskState | WaitState | ChoiceState | PassState | SucceedState | FailState;

export interface StateMachineDefinition {
  Comment: string;
  StartAt: string;
  TimeoutSeconds: number;
  States: Record<string, State>;
}

/** The placeholder CDK's definitionSubstitutions replaces with the workflow-task Lambda's ARN. */
export const TASK_FUNCTION_ARN_KEY = "TaskFunctionArn";
export const TASK_FUNCTION_ARN_PLACEHOLDER = `\${${TASK_FUNCTION_ARN_KEY}}`;
