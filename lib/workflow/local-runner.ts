import "./polyfill.js";
import { StateMachine } from "aws-local-stepfunctions";
import type { StateMachineDefinition } from "./asl.js";
import { substituteTaskArn, taskStateNames } from "./index.js";

/**
 * Runs a NowScale workflow definition (the same object CDK deploys) with aws-local-stepfunctions,
 * every Task state calling `handler` in process instead of the Lambda.
 */

const LOCAL_TASK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:nowscale-workflow-task";

export interface LocalRunOptions {
  /** Milliseconds every Wait state pauses. @default 0 (no pause) */
  waitMs?: number;
  /** Milliseconds before every retry. @default 0 (no pause; the definition's backoff is not applied) */
  retryMs?: number;
}

export interface LocalRunResult {
  status: "SUCCEEDED" | "FAILED";
  output?: unknown;
  error?: { name: string; message: string };
  /** The states entered, in order. */
  path: string[];
  /** Task states that were retried, once per retry. */
  retried: string[];
}

export async function runWorkflowLocally(
  definition: StateMachineDefinition,
  input: Record<string, unknown>,
  handler: (input: unknown) => Promise<unknown>,
  options: LocalRunOptions = {},
): Promise<LocalRunResult> {
  const concrete = substituteTaskArn(definition, LOCAL_TASK_ARN);
  const tasks = taskStateNames(concrete);
  const machine = new StateMachine(concrete as never);
  const call = async (taskInput: unknown) => (await handler(taskInput)) as never;
  const waits = Object.entries(concrete.States).filter(([, s]) => s.Type === "Wait");
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries(tasks.map((name) => [name, call])),
      waitTimeOverrides: Object.fromEntries(waits.map(([name]) => [name, options.waitMs ?? 0])),
      retryIntervalOverrides: Object.fromEntries(tasks.map((name) => [name, options.retryMs ?? 0])),
    },
  });
  const path: string[] = [];
  const retried: string[] = [];
  let failure: { name: string; message: string } | undefined;
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === "StateEntered") path.push(event.state.name);
      if (event.type === "StateRetried") retried.push(event.state.name);
      if (event.type === "ExecutionFailed") failure = { name: event.Error, message: String(event.Cause) };
    }
  })();
  try {
    const output = await execution.result;
    await collecting;
    return { status: "SUCCEEDED", output, path, retried };
  } catch (error) {
    await collecting;
    const e = error as Error;
    return { status: "FAILED", error: failure ?? { name: e.name, message: e.message }, path, retried };
  }
}
