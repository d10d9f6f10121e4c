import { z } from "zod";
import { configSchema } from "../../core/config.js";
import { cloudIdSchema, simpleNameSchema } from "../../core/names.js";
import { checkMasterZone, createClusterRequestShape } from "../../workflow/tasks/request.js";

/**
 * Every input of the API as a zod schema: path parameters, query parameters, headers and bodies. The
 * routes (routes.ts) parse each input once with these, and the same schemas generate docs/openapi.json
 * (openapi.ts). Objects are strict: an unknown key or query parameter is an error naming it.
 */
const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const int = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/** A whole number sent as a query string (`?limit=5`), as Number() reads it; one message for any fault. */
const queryInt = (min: number, max: number) => {
  const error = `a whole number from ${min} to ${max}`;
  return z.coerce.number<string>({ error }).int({ error }).min(min, { error }).max(max, { error });
};

export const CLOUDS = ["aws", "tencent", "alibaba", "local", "fake"] as const;

// ── path parameters ───────────────────────────────────────────────────────────────────────────────
// A value that is not a valid name names nothing: the routes answer 404 naming the parameter.

export const clusterParams = z.strictObject({ clusterId: simpleName });
export const nodeParams = z.strictObject({ clusterId: simpleName, node: simpleName });
export const queueParams = z.strictObject({ clusterId: simpleName, queue: simpleName });

// ── query parameters ──────────────────────────────────────────────────────────────────────────────

export const eventsQuery = z.strictObject({ limit: queryInt(1, 1000).default(100) });
export const consoleQuery = z.strictObject({ lines: queryInt(1, 10_000).default(100) });

// ── headers (matched in any case) ─────────────────────────────────────────────────────────────────

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;

export const createHeaders = z.strictObject({
  "Idempotency-Key": z
    .string()
    .regex(IDEMPOTENCY_KEY, { error: "1-128 letters, digits, '_' or '-'" })
    .optional()
    .describe("a retried request with the same key returns the same cluster (kept 24 h)"),
});

/** `If-Match: <version>` (quotes allowed) makes a PUT conditional on the version the caller read. */
export const ifMatchHeaders = z.strictObject({
  "If-Match": z
    .string()
    .transform((v) => v.replace(/"/g, ""))
    .pipe(
      z.coerce
        .number<string>({ error: "a cluster version" })
        .int({ error: "a cluster version" })
        .min(1, { error: "a cluster version" }),
    )
    .optional(),
});

// ── bodies ────────────────────────────────────────────────────────────────────────────────────────

/**
 * Create cluster: the creation workflow's request (lib/workflow/tasks/request.ts, validated again by the
 * workflow's first step) plus the cluster's name, its cloud, the compute nodes' image and the autoscaling
 * configuration, which is validated here only and stored on the cluster record only.
 */
export const createClusterSchema = z
  .strictObject({
    /** A label for people; the API assigns the cluster id. */
    name: simpleName,
    /** @default "aws" */
    cloud: z.enum(CLOUDS).default("aws"),
    /** The image compute nodes boot from. @default the master's image */
    computeImageId: cloudId.optional(),
    region: createClusterRequestShape.region,
    network: createClusterRequestShape.network,
    master: createClusterRequestShape.master,
    autoscaling: configSchema,
    agentHealthTimeoutSeconds: createClusterRequestShape.agentHealthTimeoutSeconds,
  })
  .superRefine(checkMasterZone);

export const addNodesSchema = z.strictObject({
  queue: simpleName,
  count: int(1, 100),
  /** Restricts the queue's expansionNodeConfigs to this type (and zone). */
  instanceType: cloudId.optional(),
  zone: cloudId.optional(),
});

export const deleteNodesSchema = z.strictObject({
  nodes: z.array(simpleName).min(1).max(100),
});

/** Rebuild: the failed nodes to replace (every failed node when absent). */
export const rebuildNodesSchema = z.strictObject({
  nodes: z.array(simpleName).min(1).max(100).optional(),
  /** A LAUNCHING node not in Slurm this long after launch counts as a failed boot. @default the config's bootTimeout */
  bootGraceSeconds: int(0, 86_400).optional(),
});

const isoQueryTime = z.iso.datetime({
  offset: true,
  error: "expected an ISO-8601 time such as 2026-01-01T00:00:00Z",
});

/** Usage's query: the window (ISO-8601 times); from the first launch to now by default. */
export const usageQuerySchema = z.strictObject({
  from: isoQueryTime.optional(),
  to: isoQueryTime.optional(),
});

/** The autoscaling PUT takes exactly the core's configuration. */
export const autoscalingSchema = configSchema;

/** Sleep and wake take no body, or `{}`. */
export const emptyBodySchema = z.strictObject({});

export type CreateClusterBody = z.output<typeof createClusterSchema>;
