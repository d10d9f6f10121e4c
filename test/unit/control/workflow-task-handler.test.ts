import type { Context } from "aws-lambda";
import { beforeAll, describe, expect, it } from "vitest";

/** The Lambda entry as deployed: errors must keep their name, which the workflow's Retry and Catch match. */
describe("functions/workflow-task", () => {
  let handler: (event: unknown, context: Context) => Promise<unknown>;

  beforeAll(async () => {
    // Prepare: the environment the stack sets (no call reaches AWS in these cases).
    Object.assign(process.env, {
      AWS_REGION: "us-east-1",
      NOWSCALE_TABLE_CLUSTERS: "c",
      NOWSCALE_TABLE_NODES: "n",
      NOWSCALE_TABLE_EVENTS: "e",
      NOWSCALE_TABLE_LEASES: "l",
      NOWSCALE_TABLE_IDEMPOTENCY: "i",
      NOWSCALE_TABLE_USAGE: "u",
      NOWSCALE_SECRETS_KMS_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/k",
      NOWSCALE_NODE_INSTANCE_PROFILE_ARN: "arn:aws:iam::123456789012:instance-profile/p",
      POWERTOOLS_LOG_LEVEL: "SILENT",
    });
    ({ handler } = (await import("../../../functions/workflow-task.js")) as unknown as {
      handler: typeof handler;
    });
  });

  const context = { functionName: "workflow-task", awsRequestId: "r-1" } as Context;

  it("rejects an unknown task with BadTaskInputError", async () => {
    await expect(handler({ task: "formatDisk", clusterId: "hpc-1" }, context)).rejects.toMatchObject({
      name: "BadTaskInputError",
    });
  });

  it("reports a bad request as ValidationError (never retried) naming the field", async () => {
    const failing = handler(
      { task: "validate", clusterId: "hpc-1", request: { region: "us-east-1" } },
      context,
    );
    await expect(failing).rejects.toMatchObject({
      name: "ValidationError",
      message: expect.stringContaining("network"),
    });
  });
});
