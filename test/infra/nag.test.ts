import { App, Stack, Validations } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { synthNowScale } from "./synth.js";

describe("cdk-nag AwsSolutions", () => {
  it("GIVEN the NowScale stack WHEN synthesized with the pack THEN no unacknowledged error fails the synth", () => {
    expect(() => synthNowScale()).not.toThrow();
  }, 120_000);

  it("GIVEN a stack with a finding nobody acknowledged WHEN synthesized THEN the synth fails (the check is live)", () => {
    const app = new App();
    new sqs.Queue(new Stack(app, "Bad"), "Queue", { encryption: sqs.QueueEncryption.UNENCRYPTED });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS2/);
  });
});
