import { App, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { NowScaleStack, type NowScaleStackProps } from "../../lib/infra/stack.js";

/**
 * Synthesizes the stack once, as `cdk synth` does (cdk-nag AwsSolutions plugged in), but without
 * bundling the Lambdas: bundling is esbuild's job and takes most of a synth on this machine.
 */
export function synthNowScale(props: NowScaleStackProps = {}): { template: Template; stack: NowScaleStack } {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new NowScaleStack(app, "NowScale", props);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  return { template: Template.fromJSON(assembly.getStackByName(stack.stackName).template), stack };
}
