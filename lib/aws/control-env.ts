import { TABLE_ENV } from "../state/tables.js";

/**
 * Environment variables of the control plane's Lambda functions (set by the CDK stack, lib/infra).
 * Table names are TABLE_ENV (lib/state/tables.ts).
 */
export const CONTROL_ENV = {
  ...TABLE_ENV,
  /** functions/api.ts: the cluster creation state machine. */
  createStateMachineArn: "NOWSCALE_CREATE_STATE_MACHINE_ARN",
  /** functions/api.ts: the cluster deletion state machine. */
  deleteStateMachineArn: "NOWSCALE_DELETE_STATE_MACHINE_ARN",
  /** functions/scaler-fanout.ts: the scaler function it invokes once per RUNNING cluster. */
  scalerFunctionName: "NOWSCALE_SCALER_FUNCTION_NAME",
  /** Optional, functions/scaler.ts: seconds the cycle keeps polling inside one invocation (default 50). */
  scalerWindowSeconds: "NOWSCALE_SCALER_WINDOW_SECONDS",
  /** Optional, functions/scaler.ts: seconds between polls (default 15). */
  scalerPollSeconds: "NOWSCALE_SCALER_POLL_SECONDS",
  /**
   * Optional, scaler/reconciler/API: "http" (default; the function must reach the master's private
   * address, i.e. run in the cluster's VPC) or "ssm" (reports and node actions through SSM Run Command
   * on the master).
   */
  agentTransport: "NOWSCALE_AGENT_TRANSPORT",
  /** Optional, with "ssm": the stack's agent document (lib/infra/agent-document.ts); else AWS-RunShellScript. */
  agentDocumentName: "NOWSCALE_AGENT_DOCUMENT_NAME",
  /** Optional: the compute nodes' instance profile (the only role iam:PassRole allows). */
  nodeInstanceProfileArn: "NOWSCALE_NODE_INSTANCE_PROFILE_ARN",
  /** Tencent clusters: Secrets Manager secret `{"secretId","secretKey"}` (under the stack's KMS key). */
  tencentCredentialsSecretArn: "NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN",
  /** Alibaba clusters: Secrets Manager secret `{"accessKeyId","accessKeySecret"}`. */
  alibabaCredentialsSecretArn: "NOWSCALE_ALIBABA_CREDENTIALS_SECRET_ARN",
  /** Powertools. */
  serviceName: "POWERTOOLS_SERVICE_NAME",
  metricsNamespace: "POWERTOOLS_METRICS_NAMESPACE",
} as const;

/** The metrics namespace the stack sets in POWERTOOLS_METRICS_NAMESPACE. */
export const METRICS_NAMESPACE = "NowScale";

export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") throw new Error(`environment variable ${name} is not set`);
  return value;
}
