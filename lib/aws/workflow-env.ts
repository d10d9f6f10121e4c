/**
 * Environment of the workflow-task Lambda besides the tables (TABLE_ENV, lib/state/tables.ts); the CDK
 * stack (lib/infra) sets them.
 */
export const WORKFLOW_ENV = {
  /** The customer-managed KMS key the cluster secrets are encrypted with. */
  secretsKmsKeyArn: "NOWSCALE_SECRETS_KMS_KEY_ARN",
  /** The node role's instance profile, passed to the master (iam:PassRole is scoped to its role). */
  nodeInstanceProfileArn: "NOWSCALE_NODE_INSTANCE_PROFILE_ARN",
  /** The agent bundle's S3 URL (the stack's asset, lib/infra/agent-bundle.ts) and its SHA-256. */
  agentBundleUrl: "NOWSCALE_AGENT_BUNDLE_URL",
  agentBundleSha256: "NOWSCALE_AGENT_BUNDLE_SHA256",
  /** Optional: the stack's wake bus, where the master's watcher puts its wakes (lib/ports/wake.ts). */
  wakeEventBus: "NOWSCALE_WAKE_EVENT_BUS",
  /** Optional: the stack's agent document, for the health check over SSM (lib/infra/agent-document.ts). */
  agentDocumentName: "NOWSCALE_AGENT_DOCUMENT_NAME",
} as const;
