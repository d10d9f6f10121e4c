import type { StateMachineDefinition } from "./asl.js";
import { TASK_FUNCTION_ARN_PLACEHOLDER } from "./asl.js";

export * from "./asl.js";
export { AGENT_POLL_INTERVAL_SECONDS, createClusterDefinition } from "./create-cluster.js";
export { deleteClusterDefinition } from "./delete-cluster.js";
export * from "./retry.js";

/** The definition as CDK deploys it: JSON with the `${TaskFunctionArn}` placeholder left in. */
export function definitionJson(definition: StateMachineDefinition): string {
  return JSON.stringify(definition);
}

/** The definition with the task Lambda's ARN filled in, as Step Functions sees it after substitution. */
export function substituteTaskArn(
  definition: StateMachineDefinition,
  taskFunctionArn: string,
): StateMachineDefinition {
  return JSON.parse(definitionJson(definition).split(TASK_FUNCTION_ARN_PLACEHOLDER).join(taskFunctionArn));
}

/** The names of the Task states, which the local runner maps onto the task handler. */
export function taskStateNames(definition: StateMachineDefinition): string[] {
  return Object.entries(definition.States)
    .filter(([, state]) => state.Type === "Task")
    .map(([name]) => name);
}
