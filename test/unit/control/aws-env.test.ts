import { describe, expect, it } from "vitest";
import { lambdaEnv } from "../../../lib/aws/env.js";
import { ValidationError } from "../../../lib/core/validation.js";

/** lib/aws/env.ts: each function's environment, parsed once at cold start with its kind's schema. */

const TABLES = {
  NOWSCALE_TABLE_CLUSTERS: "c",
  NOWSCALE_TABLE_NODES: "n",
  NOWSCALE_TABLE_EVENTS: "e",
  NOWSCALE_TABLE_LEASES: "l",
  NOWSCALE_TABLE_IDEMPOTENCY: "i",
  NOWSCALE_TABLE_USAGE: "u",
};
const BASE = { AWS_REGION: "us-east-1", ...TABLES };
const STARTERS = {
  NOWSCALE_CREATE_STATE_MACHINE_ARN: "arn:create",
  NOWSCALE_DELETE_STATE_MACHINE_ARN: "arn:delete",
};

/** The issues of the ValidationError `act` throws, or a failure when it throws none (or another error). */
function issuesOf(act: () => unknown): { path: string; message: string }[] {
  try {
    act();
  } catch (error) {
    if (error instanceof ValidationError) return [...error.issues];
    throw error;
  }
  throw new Error("no ValidationError");
}

describe("lambdaEnv", () => {
  it("gives each kind what its code reads, with the defaults of what is optional", () => {
    // Prepare / Act
    const api = lambdaEnv("api", { ...BASE, ...STARTERS, UNRELATED: "x" });
    const scaler = lambdaEnv("scaler", {
      ...BASE,
      NOWSCALE_AGENT_TRANSPORT: "ssm",
      NOWSCALE_AGENT_DOCUMENT_NAME: "",
      NOWSCALE_SCALER_POLL_SECONDS: "5",
      NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN: "arn:tencent",
      NOWSCALE_TENCENT_NODE_ROLE_NAME: "",
      NOWSCALE_ALIBABA_NODE_ROLE_NAME: "NowScaleNode",
    });
    const task = lambdaEnv("workflowTask", {
      ...BASE,
      NOWSCALE_SECRETS_KMS_KEY_ARN: "arn:kms",
      NOWSCALE_NODE_INSTANCE_PROFILE_ARN: "arn:profile",
      NOWSCALE_AGENT_BUNDLE_URL: "s3://b/k.js",
      NOWSCALE_AGENT_BUNDLE_SHA256: "ab",
    });
    // Assess
    expect(api).toEqual({
      region: "us-east-1",
      tables: { clusters: "c", nodes: "n", events: "e", leases: "l", idempotency: "i", usage: "u" },
      metricsNamespace: "NowScale",
      agentTransport: "http",
      credentialSecrets: {},
      nodeRoles: {},
      createStateMachineArn: "arn:create",
      deleteStateMachineArn: "arn:delete",
    });
    expect(scaler).toMatchObject({
      agentTransport: "ssm",
      scalerWindowMs: 50_000,
      scalerPollMs: 5_000,
      credentialSecrets: { NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN: "arn:tencent" },
      nodeRoles: { alibaba: "NowScaleNode" },
    });
    expect(scaler).not.toHaveProperty("agentDocumentName");
    expect(task).toMatchObject({
      secretsKmsKeyArn: "arn:kms",
      nodeInstanceProfileArn: "arn:profile",
      agentBundle: { url: "s3://b/k.js", sha256: "ab" },
    });
  });

  it("names every missing or invalid variable of the kind, at once", () => {
    // Prepare / Act
    const api = issuesOf(() =>
      lambdaEnv("api", { ...BASE, NOWSCALE_TABLE_NODES: "", NOWSCALE_AGENT_TRANSPORT: "ftp" }),
    );
    const scaler = issuesOf(() => lambdaEnv("scaler", { ...BASE, NOWSCALE_SCALER_WINDOW_SECONDS: "fifty" }));
    const role = issuesOf(() => lambdaEnv("scaler", { ...BASE, NOWSCALE_ALIBABA_NODE_ROLE_NAME: "a b;rm" }));
    const fanout = issuesOf(() => lambdaEnv("scalerFanout", { AWS_REGION: "us-east-1" }));
    // Assess
    expect(api.map((i) => i.path).sort()).toEqual([
      "NOWSCALE_AGENT_TRANSPORT",
      "NOWSCALE_CREATE_STATE_MACHINE_ARN",
      "NOWSCALE_DELETE_STATE_MACHINE_ARN",
      "NOWSCALE_TABLE_NODES",
    ]);
    expect(api.find((i) => i.path === "NOWSCALE_TABLE_NODES")?.message).toBe("is not set");
    expect(scaler).toEqual([{ path: "NOWSCALE_SCALER_WINDOW_SECONDS", message: "seconds from 0 to 840" }]);
    expect(role.map((i) => i.path)).toEqual(["NOWSCALE_ALIBABA_NODE_ROLE_NAME"]);
    expect(fanout.map((i) => i.path)).toEqual([...Object.keys(TABLES), "NOWSCALE_SCALER_FUNCTION_NAME"]);
    expect(() => lambdaEnv("reconciler", BASE)).toThrow(/Lambda environment \(reconciler\) is invalid/);
  });
});
