import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TABLE_ENV, type TableNames } from "../../../lib/state/tables.js";
import { CONFIG } from "../../support/control-bed.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
  vi.unstubAllEnvs();
});

const context = {
  awsRequestId: "req-1",
  functionName: "reconciler",
  getRemainingTimeInMillis: () => 120_000,
} as unknown as Context;

describe("functions/reconciler.ts", () => {
  it("starts the deletion of a cluster left DELETING by a failed start, with Step Functions", async () => {
    // Prepare: a cluster DELETING for an hour (by the system clock the Lambda uses) with no execution.
    const { store, tables } = await freshStore(db);
    for (const [id, name] of Object.entries(tables)) vi.stubEnv(TABLE_ENV[id as keyof TableNames], name);
    vi.stubEnv("AWS_REGION", "us-east-1");
    vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
    vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint);
    vi.stubEnv(
      "NOWSCALE_CREATE_STATE_MACHINE_ARN",
      "arn:aws:states:us-east-1:123456789012:stateMachine:create",
    );
    vi.stubEnv(
      "NOWSCALE_DELETE_STATE_MACHINE_ARN",
      "arn:aws:states:us-east-1:123456789012:stateMachine:delete",
    );
    vi.stubEnv("POWERTOOLS_METRICS_NAMESPACE", "NowScale");
    vi.stubEnv("POWERTOOLS_DEV", "true");
    const hourAgo = Date.now() - 3_600_000;
    const { cluster } = await store.createCluster({
      clusterId: "stuck-1",
      name: "stuck",
      placement: { cloud: "fake", region: "local", imageId: "img" },
      autoscaling: CONFIG,
      now: hourAgo,
    });
    const deleting = await store.updateCluster("stuck-1", cluster.version, {
      status: "DELETING",
      deletionAttempts: 1,
      now: hourAgo,
    });
    const sfn = mockClient(SFNClient);
    sfn.on(StartExecutionCommand).resolves({
      executionArn: "arn:aws:states:us-east-1:123456789012:execution:delete:delete-stuck-1-3",
    });
    sfn.on(DescribeExecutionCommand).resolves({ status: "RUNNING" });
    const { handler } = await import("../../../functions/reconciler.js");
    // Act
    const result = await handler({}, context);
    // Assess
    expect(result).toEqual({ clusters: 0, errors: 0, deferred: 0 });
    const start = sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input;
    expect(start?.stateMachineArn).toBe("arn:aws:states:us-east-1:123456789012:stateMachine:delete");
    expect(start?.name).toBe(`delete-stuck-1-${deleting.version + 1}`);
    expect(JSON.parse(start?.input ?? "{}")).toEqual({ clusterId: "stuck-1" });
    const record = await store.getCluster("stuck-1");
    expect(record).toMatchObject({ status: "DELETING", deletionAttempts: 2 });
    expect(record?.executionArn).toContain("delete-stuck-1-3");
    sfn.restore();
  });
});
