import { z } from "zod";
import { configSchema, queueConfigSchema as coreQueueConfigSchema } from "../../core/config.js";
import { cloudIdSchema, simpleNameSchema } from "../../core/names.js";
import { createClusterRequestSchema } from "../../workflow/tasks/request.js";

/**
 * The API's request bodies: strict zod schemas (an unknown key is an error naming its path). The same
 * schemas generate docs/openapi.json (lib/control/api/openapi.ts).
 */
const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;
const int = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

export const CLOUDS = ["aws", "tencent", "alibaba", "local", "fake"] as const;

/**
 * Create cluster: the creation workflow's request (lib/control/lifecycle/request.ts, validated again by
 * the workflow's first step) plus the cluster's name, its cloud and the compute nodes' image.
 */
export const createClusterSchema = z.strictObject({
  /** A label for people; the API assigns the cluster id. */
  name: simpleName,
  /** @default "aws" */
  cloud: z.enum(CLOUDS).default("aws"),
  /** The image compute nodes boot from. @default the master's image */
  computeImageId: cloudId.optional(),
  ...createClusterRequestSchema.shape,
});

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

/** Add queue (THPC AddQueue): one queue of the core's configuration, as in `queueConfigs[]`. */
export const queueConfigSchema = coreQueueConfigSchema;

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;

export type CreateClusterBody = z.output<typeof createClusterSchema>;
