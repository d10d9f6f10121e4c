#!/usr/bin/env node
/**
 * The CDK app (`npx cdk synth`, `npx cdk deploy`; cdk.json runs it with tsx). The stack is checked
 * with cdk-nag's AwsSolutions pack on every synth.
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { NowScaleStack } from "../lib/infra/stack.js";

const app = new App();
const alarmEmail = app.node.tryGetContext("alarmEmail") as string | undefined;
// `-c retainData=false` lets `cdk destroy` remove the tables and schedule the keys' deletion.
const retainData = String(app.node.tryGetContext("retainData") ?? "true") !== "false";
new NowScaleStack(app, "NowScale", {
  description: "NowScale: serverless autoscaling for Slurm clusters",
  retainData,
  ...(alarmEmail === undefined ? {} : { alarmEmail }),
  ...(process.env.CDK_DEFAULT_ACCOUNT === undefined
    ? {}
    : {
        env: {
          account: process.env.CDK_DEFAULT_ACCOUNT,
          ...(process.env.CDK_DEFAULT_REGION === undefined ? {} : { region: process.env.CDK_DEFAULT_REGION }),
        },
      }),
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
