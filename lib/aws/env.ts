import { z } from "zod";
import { parseWith } from "../core/validation.js";
import { TABLE_ENV, type TableNames } from "../state/tables.js";

/**
 * The Lambda functions' environment (set by the CDK stack, lib/infra), parsed once at cold start with
 * one zod schema per function kind, all sharing the common part: `lambdaEnv(kind)` at the top of each
 * handler file (functions/). A missing or invalid variable is a ValidationError naming it, thrown while
 * the function starts, not on the first request that happens to read it. Nothing else reads process.env.
 */

/** Names of the control plane's variables (the stack sets them; TABLE_ENV names the tables'). */
export const CONTROL_ENV = {
  ...TABLE_ENV,
  /** api, reconciler: the cluster creation state machine. */
  createStateMachineArn: "NOWSCALE_CREATE_STATE_MACHINE_ARN",
  /** api, reconciler: the cluster deletion state machine. */
  deleteStateMachineArn: "NOWSCALE_DELETE_STATE_MACHINE_ARN",
  /** scaler-fanout: the scaler function it invokes once per RUNNING cluster. */
  scalerFunctionName: "NOWSCALE_SCALER_FUNCTION_NAME",
  /** Optional, scaler: seconds the cycle keeps polling inside one invocation (default 50). */
  scalerWindowSeconds: "NOWSCALE_SCALER_WINDOW_SECONDS",
  /** Optional, scaler: seconds between polls (default 15). */
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
  /**
   * Optional: the role a Tencent cluster's CVM instances run with (CAM role name) and an Alibaba
   * cluster's ECS instances (RAM role name): their boot scripts read the cluster's secrets with it.
   */
  tencentNodeRoleName: "NOWSCALE_TENCENT_NODE_ROLE_NAME",
  alibabaNodeRoleName: "NOWSCALE_ALIBABA_NODE_ROLE_NAME",
  /** Powertools. */
  serviceName: "POWERTOOLS_SERVICE_NAME",
  metricsNamespace: "POWERTOOLS_METRICS_NAMESPACE",
} as const;

/** The workflow-task function's own variables, besides the tables. */
export const WORKFLOW_ENV = {
  /** The customer-managed KMS key the cluster secrets are encrypted with. */
  secretsKmsKeyArn: "NOWSCALE_SECRETS_KMS_KEY_ARN",
  /** The master role's instance profile, passed to the master (iam:PassRole is scoped to its role). */
  nodeInstanceProfileArn: "NOWSCALE_NODE_INSTANCE_PROFILE_ARN",
  /** The agent bundle's S3 URL (the stack's asset, lib/infra/agent-bundle.ts) and its SHA-256. */
  agentBundleUrl: "NOWSCALE_AGENT_BUNDLE_URL",
  agentBundleSha256: "NOWSCALE_AGENT_BUNDLE_SHA256",
  /** Optional: the stack's wake bus, where the master's watcher puts its wakes (lib/ports/wake.ts). */
  wakeEventBus: "NOWSCALE_WAKE_EVENT_BUS",
  /** Optional: the stack's agent document, for the health check over SSM (lib/infra/agent-document.ts). */
  agentDocumentName: "NOWSCALE_AGENT_DOCUMENT_NAME",
} as const;

/** The metrics namespace the stack sets in POWERTOOLS_METRICS_NAMESPACE. */
export const METRICS_NAMESPACE = "NowScale";

const required = z.string({ error: "is not set" }).min(1, { error: "is not set" });
/** Absent and empty are the same: not given. */
const optional = z
  .string()
  .optional()
  .transform((v) => (v === "" ? undefined : v));
/** A CAM or RAM role name: what both clouds allow (letters, digits, `+=,.@_-`, 1 to 64). */
const roleName = z
  .string()
  .regex(/^[A-Za-z0-9+=,.@_-]{1,64}$/, { error: "expected a role name (letters, digits, +=,.@_-)" })
  .optional()
  .or(z.literal("").transform(() => undefined));
const seconds = (fallback: number, min: number, max: number) => {
  const error = `seconds from ${min} to ${max}`;
  return z.coerce.number<string>({ error }).min(min, { error }).max(max, { error }).default(fallback);
};
/** `{key: value}` when the value is given, else nothing (optional properties are never `undefined`). */
const given = <K extends string>(key: K, value: string | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };

/** Every function: its region (set by Lambda), the tables, the metrics namespace. */
const common = z.object({
  AWS_REGION: required,
  [TABLE_ENV.clusters]: required,
  [TABLE_ENV.nodes]: required,
  [TABLE_ENV.events]: required,
  [TABLE_ENV.leases]: required,
  [TABLE_ENV.idempotency]: required,
  [TABLE_ENV.usage]: required,
  [CONTROL_ENV.metricsNamespace]: optional,
});

/** The functions that reach clusters' clouds and agents: scaler, reconciler, API. */
const clusterAccess = z.object({
  ...common.shape,
  [CONTROL_ENV.agentTransport]: z.enum(["http", "ssm"]).default("http"),
  [CONTROL_ENV.agentDocumentName]: optional,
  [CONTROL_ENV.nodeInstanceProfileArn]: optional,
  // Needed only by a cluster on that cloud: the runtime names the variable when such a cluster comes.
  [CONTROL_ENV.tencentCredentialsSecretArn]: optional,
  [CONTROL_ENV.alibabaCredentialsSecretArn]: optional,
  [CONTROL_ENV.tencentNodeRoleName]: roleName,
  [CONTROL_ENV.alibabaNodeRoleName]: roleName,
});

/** The functions that start the cluster workflows: API, reconciler. */
const starters = z.object({
  ...clusterAccess.shape,
  [CONTROL_ENV.createStateMachineArn]: required,
  [CONTROL_ENV.deleteStateMachineArn]: required,
});

/** What every function has. */
export interface CommonEnv {
  region: string;
  tables: TableNames;
  metricsNamespace: string;
}

function commonOf(e: z.output<typeof common>): CommonEnv {
  return {
    region: e.AWS_REGION,
    tables: {
      clusters: e[TABLE_ENV.clusters],
      nodes: e[TABLE_ENV.nodes],
      events: e[TABLE_ENV.events],
      leases: e[TABLE_ENV.leases],
      idempotency: e[TABLE_ENV.idempotency],
      usage: e[TABLE_ENV.usage],
    },
    metricsNamespace: e[CONTROL_ENV.metricsNamespace] ?? METRICS_NAMESPACE,
  };
}

/** What the scaler, reconciler and API need to reach a cluster's cloud and agent (lib/aws/runtime.ts). */
export interface ClusterAccessEnv extends CommonEnv {
  agentTransport: "http" | "ssm";
  agentDocumentName?: string;
  nodeInstanceProfileArn?: string;
  /** The secrets holding Tencent's and Alibaba's access keys, keyed by their variable's name. */
  credentialSecrets: {
    [CONTROL_ENV.tencentCredentialsSecretArn]?: string;
    [CONTROL_ENV.alibabaCredentialsSecretArn]?: string;
  };
  /** The role each other cloud's instances run with (CAM on Tencent, RAM on Alibaba). @default none */
  nodeRoles: { tencent?: string; alibaba?: string };
}

function accessOf(e: z.output<typeof clusterAccess>): ClusterAccessEnv {
  return {
    ...commonOf(e),
    agentTransport: e[CONTROL_ENV.agentTransport],
    ...given("agentDocumentName", e[CONTROL_ENV.agentDocumentName]),
    ...given("nodeInstanceProfileArn", e[CONTROL_ENV.nodeInstanceProfileArn]),
    credentialSecrets: {
      ...given(CONTROL_ENV.tencentCredentialsSecretArn, e[CONTROL_ENV.tencentCredentialsSecretArn]),
      ...given(CONTROL_ENV.alibabaCredentialsSecretArn, e[CONTROL_ENV.alibabaCredentialsSecretArn]),
    },
    nodeRoles: {
      ...given("tencent", e[CONTROL_ENV.tencentNodeRoleName]),
      ...given("alibaba", e[CONTROL_ENV.alibabaNodeRoleName]),
    },
  };
}

export interface StarterEnv extends ClusterAccessEnv {
  createStateMachineArn: string;
  deleteStateMachineArn: string;
}

function startersOf(e: z.output<typeof starters>): StarterEnv {
  return {
    ...accessOf(e),
    createStateMachineArn: e[CONTROL_ENV.createStateMachineArn],
    deleteStateMachineArn: e[CONTROL_ENV.deleteStateMachineArn],
  };
}

/** The lifecycle tasks: they reach an attached cluster's cloud and agent too (detach, lib/control/detach.ts). */
export interface WorkflowTaskEnv extends ClusterAccessEnv {
  secretsKmsKeyArn: string;
  nodeInstanceProfileArn: string;
  agentDocumentName?: string;
  agentBundle?: { url: string; sha256: string };
  /** The stack's wake bus, rendered into the master's boot script for its watcher. */
  wakeEventBus?: string;
}

/** One schema per function kind, each the common part plus its own; the output is what the code reads. */
const SCHEMAS = {
  api: starters.transform(startersOf),
  reconciler: starters.transform(startersOf),
  scaler: z
    .object({
      ...clusterAccess.shape,
      [CONTROL_ENV.scalerWindowSeconds]: seconds(50, 0, 840),
      [CONTROL_ENV.scalerPollSeconds]: seconds(15, 1, 300),
    })
    .transform((e) => ({
      ...accessOf(e),
      scalerWindowMs: e[CONTROL_ENV.scalerWindowSeconds] * 1000,
      scalerPollMs: e[CONTROL_ENV.scalerPollSeconds] * 1000,
    })),
  scalerFanout: z
    .object({ ...common.shape, [CONTROL_ENV.scalerFunctionName]: required })
    .transform((e) => ({ ...commonOf(e), scalerFunctionName: e[CONTROL_ENV.scalerFunctionName] })),
  workflowTask: z
    .object({
      ...clusterAccess.shape,
      [WORKFLOW_ENV.secretsKmsKeyArn]: required,
      [WORKFLOW_ENV.nodeInstanceProfileArn]: required,
      [WORKFLOW_ENV.agentDocumentName]: optional,
      [WORKFLOW_ENV.agentBundleUrl]: optional,
      [WORKFLOW_ENV.agentBundleSha256]: optional,
      [WORKFLOW_ENV.wakeEventBus]: optional,
    })
    .transform((e): WorkflowTaskEnv => {
      const url = e[WORKFLOW_ENV.agentBundleUrl];
      const sha256 = e[WORKFLOW_ENV.agentBundleSha256];
      return {
        ...accessOf(e),
        secretsKmsKeyArn: e[WORKFLOW_ENV.secretsKmsKeyArn],
        nodeInstanceProfileArn: e[WORKFLOW_ENV.nodeInstanceProfileArn],
        ...given("agentDocumentName", e[WORKFLOW_ENV.agentDocumentName]),
        ...(url === undefined || sha256 === undefined ? {} : { agentBundle: { url, sha256 } }),
        ...given("wakeEventBus", e[WORKFLOW_ENV.wakeEventBus]),
      };
    }),
};

export type FunctionKind = keyof typeof SCHEMAS;
export type LambdaEnv<K extends FunctionKind> = z.output<(typeof SCHEMAS)[K]>;

/**
 * The environment of a function of this kind, parsed once: call it at cold start. Throws ValidationError
 * ("Lambda environment (api) is invalid: NOWSCALE_CREATE_STATE_MACHINE_ARN: is not set") naming every
 * missing or invalid variable.
 */
export function lambdaEnv<K extends FunctionKind>(
  kind: K,
  env: Readonly<Record<string, string | undefined>> = process.env,
): LambdaEnv<K> {
  return parseWith(SCHEMAS[kind], env, `Lambda environment (${kind})`) as LambdaEnv<K>;
}
