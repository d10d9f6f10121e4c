import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import { lambdaEnv } from "../lib/aws/env.js";
import { awsLifecycleDeps } from "../lib/aws/workflow-deps.js";
import { runLifecycleTask } from "../lib/workflow/tasks/dispatch.js";

/**
 * The one Lambda every Task state of the create/delete workflows invokes with `{task, clusterId, ...}`
 * (lib/workflow). Errors are rethrown unchanged: their `name` is what the workflow's Retry and Catch
 * match on.
 */
const logger = new Logger();
const deps = awsLifecycleDeps(lambdaEnv("workflowTask"));

async function workflowTask(event: { task?: unknown; clusterId?: unknown }): Promise<unknown> {
  logger.appendKeys({ task: String(event.task), clusterId: String(event.clusterId) });
  try {
    const result = await runLifecycleTask(deps, event);
    logger.info("task done");
    return result;
  } catch (error) {
    logger.warn("task failed", { error: error as Error });
    throw error;
  }
}

export const handler = middy(workflowTask).use(injectLambdaContext(logger, { resetKeys: true }));
