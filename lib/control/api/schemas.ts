import { z } from "zod";
import { configSchema } from "../../core/config.js";
import { CLOUD_ID, CLOUD_ID_HINT, SIMPLE_NAME, SIMPLE_NAME_HINT } from "../../core/names.js";

/**
 * The API's request bodies: strict zod schemas (an unknown key is an error naming its path). The same
 * schemas generate docs/openapi.json (lib/control/api/openapi.ts).
 */
const simpleName = z.string().regex(SIMPLE_NAME, { error: `invalid name: ${SIMPLE_NAME_HINT}` });
const cloudId = z.string().regex(CLOUD_ID, { error: `invalid identifier: ${CLOUD_ID_HINT}` });
const int = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

export const CLOUDS = ["aws", "tencent", "alibaba", "local", "fake"] as const;

export const createClusterSchema = z.strictObject({
  /** A label for people; the API assigns the cluster id. */
  name: simpleName,
  placement: z.strictObject({
    cloud: z.enum(CLOUDS),
    region: cloudId,
    /** The image compute nodes boot from. */
    imageId: cloudId,
  }),
  /** THPC's autoscaling configuration (docs/plan.md, Config). */
  autoscaling: configSchema,
  /** The master node the creation workflow launches. */
  master: z
    .strictObject({
      instanceType: cloudId,
      zone: cloudId,
      subnetId: cloudId.optional(),
      imageId: cloudId.optional(),
    })
    .optional(),
  /** Bring your own VPC and subnets; without it the workflow creates a network. */
  network: z
    .strictObject({
      vpcId: cloudId,
      subnetIds: z.array(cloudId).min(1).max(16),
    })
    .optional(),
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

/** The autoscaling PUT takes exactly the core's configuration. */
export const autoscalingSchema = configSchema;

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;

export type CreateClusterBody = z.output<typeof createClusterSchema>;
