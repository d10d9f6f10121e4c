import type { Catcher, Retrier, TaskState } from "./asl.js";
import { TASK_FUNCTION_ARN_PLACEHOLDER } from "./asl.js";
import { STANDARD_RETRY } from "./retry.js";
import type { TaskName } from "./tasks/dispatch.js";

export interface TaskOptions {
  /** The rest of the Lambda's input: literal values, or JSONPath when the key ends in `.$`. */
  parameters?: Record<string, unknown>;
  /** Where the result goes in the state; null discards it. */
  resultPath: string | null;
  next?: string;
  retry?: Retrier[];
  catch?: Catcher[];
  /** @default 60 seconds */
  timeoutSeconds?: number;
  comment?: string;
}

/** A Task state that invokes the workflow-task Lambda with `{task, clusterId, ...parameters}`. */
export function lambdaTask(task: TaskName, options: TaskOptions): TaskState {
  return {
    Type: "Task",
    ...(options.comment === undefined ? {} : { Comment: options.comment }),
    Resource: TASK_FUNCTION_ARN_PLACEHOLDER,
    Parameters: { task, "clusterId.$": "$.clusterId", ...options.parameters },
    ResultPath: options.resultPath,
    TimeoutSeconds: options.timeoutSeconds ?? 60,
    Retry: options.retry ?? STANDARD_RETRY,
    ...(options.catch === undefined ? {} : { Catch: options.catch }),
    ...(options.next === undefined ? { End: true } : { Next: options.next }),
  };
}
