import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { RecordingWorkflowStarter, SfnWorkflowStarter } from "../../../lib/workflow/starter.js";

const CREATE = "arn:aws:states:us-east-1:123456789012:stateMachine:create";
const DELETE = "arn:aws:states:us-east-1:123456789012:stateMachine:delete";
const sfn = mockClient(SFNClient);

afterEach(() => {
  sfn.reset();
});

describe("SfnWorkflowStarter", () => {
  it("reads an execution's status, end time and error with DescribeExecution", async () => {
    // Prepare
    const arn = "arn:aws:states:us-east-1:123456789012:execution:delete:delete-c-1-4";
    sfn.on(DescribeExecutionCommand, { executionArn: arn }).resolves({
      executionArn: arn,
      stateMachineArn: DELETE,
      status: "TIMED_OUT",
      startDate: new Date(1000),
      stopDate: new Date(5000),
      error: "States.Timeout",
      cause: "the execution ran longer than its TimeoutSeconds",
    });
    const starter = new SfnWorkflowStarter(new SFNClient({ region: "us-east-1" }), CREATE, DELETE);
    // Act
    const state = await starter.describeExecution(arn);
    // Assess
    expect(state).toEqual({
      status: "TIMED_OUT",
      stoppedAt: 5000,
      error: "States.Timeout: the execution ran longer than its TimeoutSeconds",
    });
  });

  it("answers ABSENT for an execution that does not exist, RUNNING for one pending a redrive", async () => {
    // Prepare
    sfn
      .on(DescribeExecutionCommand, { executionArn: "arn:x:gone" })
      .rejects(new ExecutionDoesNotExist({ message: "does not exist", $metadata: {} }));
    sfn.on(DescribeExecutionCommand, { executionArn: "arn:x:redrive" }).resolves({
      executionArn: "arn:x:redrive",
      stateMachineArn: CREATE,
      status: "PENDING_REDRIVE",
      startDate: new Date(1000),
    });
    sfn.on(DescribeExecutionCommand, { executionArn: "arn:x:throttled" }).rejects(new Error("Throttling"));
    const starter = new SfnWorkflowStarter(new SFNClient({ region: "us-east-1" }), CREATE, DELETE);
    // Act / Assess
    expect(await starter.describeExecution("arn:x:gone")).toEqual({ status: "ABSENT" });
    expect((await starter.describeExecution("arn:x:redrive")).status).toBe("RUNNING");
    // Not knowing is not ABSENT: a caller must not start a second execution on a throttled read.
    await expect(starter.describeExecution("arn:x:throttled")).rejects.toThrow("Throttling");
  });

  it("a start of an execution that exists already returns its ARN", async () => {
    // Prepare
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: "exists", $metadata: {} }));
    const starter = new SfnWorkflowStarter(new SFNClient({ region: "us-east-1" }), CREATE, DELETE);
    // Act
    const arn = await starter.startDelete("c-1", 7);
    // Assess
    expect(arn).toBe("arn:aws:states:us-east-1:123456789012:execution:delete:delete-c-1-7");
  });
});

describe("RecordingWorkflowStarter", () => {
  it("fails the next start once, then starts; executions run until finished", async () => {
    // Prepare
    const starter = new RecordingWorkflowStarter();
    starter.failNextStart(new Error("throttled"), "delete");
    // Act
    const failed = starter.startDelete("c-1", 3).catch((e: Error) => e.message);
    const create = await starter.startCreate("c-1", { region: "x" });
    const del = await starter.startDelete("c-1", 3);
    const running = await starter.describeExecution(del);
    starter.finish("delete-c-1-3", "ABORTED", 9);
    // Assess
    expect(await failed).toBe("throttled");
    expect(await starter.describeExecution(create)).toEqual({ status: "RUNNING" });
    expect(running).toEqual({ status: "RUNNING" });
    expect(await starter.describeExecution(del)).toEqual({ status: "ABORTED", stoppedAt: 9 });
    expect(await starter.describeExecution("arn:none")).toEqual({ status: "ABSENT" });
    expect(starter.startCalls.map((c) => c.failed)).toEqual([true, false, false]);
  });
});
