import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { CONTROL_ENV, METRICS_NAMESPACE } from "../aws/env.js";

/** The repository root: functions/ and package-lock.json are found from here. */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The service name every function logs and emits metrics under (POWERTOOLS_SERVICE_NAME). */
export const SERVICE_NAME = "nowscale";

export interface NowScaleFunctionProps {
  /** The handler file under functions/, without extension, e.g. "scaler". */
  handlerFile: string;
  description: string;
  environment: Record<string, string>;
  logKey: kms.IKey;
  logRetention: logs.RetentionDays;
  /** @default 30 seconds */
  timeoutSeconds?: number;
  /** @default 512 MiB */
  memorySizeMiB?: number;
}

/**
 * One control-plane Lambda: nodejs22.x on arm64, bundled by the locally installed esbuild (never Docker)
 * as ESM, its own encrypted log group with a retention, X-Ray tracing, Powertools' environment.
 */
export function nowscaleFunction(
  scope: Construct,
  id: string,
  props: NowScaleFunctionProps,
): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention,
    encryptionKey: props.logKey,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  return new nodejs.NodejsFunction(scope, id, {
    entry: `${PROJECT_ROOT}functions/${props.handlerFile}.ts`,
    handler: "handler",
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
    description: props.description,
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    timeout: Duration.seconds(props.timeoutSeconds ?? 30),
    memorySize: props.memorySizeMiB ?? 512,
    tracing: lambda.Tracing.ACTIVE,
    logGroup,
    loggingFormat: lambda.LoggingFormat.JSON,
    environment: {
      [CONTROL_ENV.serviceName]: SERVICE_NAME,
      [CONTROL_ENV.metricsNamespace]: METRICS_NAMESPACE,
      NODE_OPTIONS: "--enable-source-maps",
      ...props.environment,
    },
    bundling: {
      forceDockerBundling: false,
      format: nodejs.OutputFormat.ESM,
      target: "node22",
      minify: true,
      sourceMap: true,
      mainFields: ["module", "main"],
      // CommonJS dependencies (the Tencent and Alibaba SDKs) still call require() inside an ES module.
      banner:
        "import { createRequire as __nsCreateRequire } from 'node:module'; const require = __nsCreateRequire(import.meta.url);",
      externalModules: ["@aws-sdk/*"],
    },
  });
}
