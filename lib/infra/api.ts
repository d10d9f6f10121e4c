import * as apigw from "aws-cdk-lib/aws-apigateway";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

export interface NowScaleApiProps {
  handler: lambda.IFunction;
  logKey: kms.IKey;
  logRetention: logs.RetentionDays;
  /** Steady-state requests per second across the API. @default 20 */
  throttlingRateLimitPerSecond?: number;
  /** Requests allowed in a burst. @default 40 */
  throttlingBurstLimit?: number;
}

/**
 * Every route of the API, each a method on the one api Lambda (proxy integration): the same paths and
 * methods as lib/control/api/routes.ts and docs/openapi.json (test/infra/api-routes.test.ts holds them
 * equal).
 */
export const API_ROUTES: readonly { path: string; methods: readonly string[]; body: boolean }[] = [
  { path: "clusters", methods: ["GET"], body: false },
  { path: "clusters", methods: ["POST"], body: true },
  { path: "clusters/attach", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}", methods: ["GET", "DELETE"], body: false },
  { path: "clusters/{clusterId}/detach", methods: ["POST"], body: false },
  { path: "clusters/{clusterId}/autoscaling", methods: ["PUT"], body: true },
  { path: "clusters/{clusterId}/nodes", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/nodes", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/nodes/delete", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/nodes/rebuild", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/usage", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/sleep", methods: ["POST"], body: false },
  { path: "clusters/{clusterId}/wake", methods: ["POST"], body: false },
  { path: "clusters/{clusterId}/nodes/stop", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/nodes/resume", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/events", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/nodes/{node}/console", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/queues", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/queues", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/queues/{queue}", methods: ["DELETE"], body: false },
  { path: "clusters/{clusterId}/queues/{queue}/reset-protection", methods: ["POST"], body: false },
  // node setup (lib/control/storage.ts)
  { path: "clusters/{clusterId}/storage", methods: ["GET", "DELETE"], body: false },
  { path: "clusters/{clusterId}/storage", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/init-scripts", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/init-scripts", methods: ["PUT"], body: true },
  // Cluster users (HPC-NOW userman).
  { path: "clusters/{clusterId}/users", methods: ["GET"], body: false },
  { path: "clusters/{clusterId}/users", methods: ["POST"], body: true },
  { path: "clusters/{clusterId}/users/{user}", methods: ["DELETE"], body: false },
  { path: "clusters/{clusterId}/users/{user}/enable", methods: ["POST"], body: false },
  { path: "clusters/{clusterId}/users/{user}/disable", methods: ["POST"], body: false },
  { path: "clusters/{clusterId}/users/{user}/credentials", methods: ["PUT"], body: true },
];

/**
 * The REST API: SigV4 (AWS_IAM) on every method, request validation (a JSON object body where there is
 * one, the path parameters everywhere; the handler's zod schemas check the rest), JSON access logs in
 * an encrypted log group, execution logging and stage throttling.
 */
export class NowScaleApi extends Construct {
  readonly api: apigw.RestApi;

  constructor(scope: Construct, id: string, props: NowScaleApiProps) {
    super(scope, id);
    const accessLogs = new logs.LogGroup(this, "AccessLogs", {
      retention: props.logRetention,
      encryptionKey: props.logKey,
    });
    this.api = new apigw.RestApi(this, "Api", {
      description: "NowScale control plane",
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      cloudWatchRole: true,
      deployOptions: {
        stageName: "v1",
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        tracingEnabled: true,
        throttlingRateLimit: props.throttlingRateLimitPerSecond ?? 20,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 40,
      },
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
    });
    const validator = this.api.addRequestValidator("Validator", {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const objectBody = this.api.addModel("JsonObject", {
      contentType: "application/json",
      schema: { schema: apigw.JsonSchemaVersion.DRAFT4, type: apigw.JsonSchemaType.OBJECT },
    });
    const integration = new apigw.LambdaIntegration(props.handler);
    for (const route of API_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      for (const method of route.methods) {
        resource.addMethod(method, integration, {
          authorizationType: apigw.AuthorizationType.IAM,
          requestValidator: validator,
          ...(route.body ? { requestModels: { "application/json": objectBody } } : {}),
          // Every {name} in the path is a required path parameter.
          requestParameters: Object.fromEntries(
            [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => [`method.request.path.${m[1]}`, true]),
          ),
        });
      }
    }
  }
}
