import { EC2Client, StartInstancesCommand, StopInstancesCommand } from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { AwsMasterPower } from "../../../lib/providers/aws-ec2/master-power.js";

/** Sleep's master stop and wake's start on AWS: the EC2 calls sent (aws-sdk-client-mock), errors passed on. */

const ec2 = mockClient(EC2Client);
afterEach(() => ec2.reset());

describe("AwsMasterPower", () => {
  it("stops and starts the named instances, and sends nothing for none", async () => {
    // Prepare
    ec2.on(StopInstancesCommand).resolves({});
    ec2.on(StartInstancesCommand).resolves({});
    const power = new AwsMasterPower(new EC2Client({ region: "us-east-1" }));
    // Act
    await power.stop(["i-master"]);
    await power.start(["i-master"]);
    await power.stop([]);
    // Assess
    expect(ec2.commandCalls(StopInstancesCommand).map((c) => c.args[0].input)).toEqual([
      { InstanceIds: ["i-master"] },
    ]);
    expect(ec2.commandCalls(StartInstancesCommand).map((c) => c.args[0].input)).toEqual([
      { InstanceIds: ["i-master"] },
    ]);
  });

  it("passes EC2's refusal on (e.g. an instance-store master that cannot be stopped)", async () => {
    // Prepare
    ec2.on(StopInstancesCommand).rejects(new Error("UnsupportedOperation: instance store root"));
    const power = new AwsMasterPower(new EC2Client({ region: "us-east-1" }));
    // Act
    const failed = await power.stop(["i-master"]).catch((e: unknown) => e);
    // Assess
    expect((failed as Error).message).toContain("UnsupportedOperation");
  });
});
