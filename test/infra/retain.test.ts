import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, it } from "vitest";
import { synthNowScale } from "./synth.js";

describe("GIVEN retainData: false", () => {
  let template: Template;
  beforeAll(() => {
    // WHEN synthesized
    template = synthNowScale({ retainData: false }).template;
  }, 120_000);

  it("THEN the tables go with the stack and lose their deletion protection", () => {
    template.allResources("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
    template.allResourcesProperties("AWS::DynamoDB::Table", { DeletionProtectionEnabled: false });
  });

  it("THEN the keys are scheduled for deletion with the stack, after the 7-day window", () => {
    template.allResources("AWS::KMS::Key", { DeletionPolicy: "Delete" });
    template.allResourcesProperties("AWS::KMS::Key", { PendingWindowInDays: 7 });
  });
});
