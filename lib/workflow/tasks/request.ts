import { z } from "zod";
import { cloudIdSchema, SIMPLE_NAME, SIMPLE_NAME_HINT } from "../../core/names.js";
import { parseWith, ValidationError } from "../../core/validation.js";

/**
 * What the creation workflow is started with: the cluster's id (chosen by the API) and the part of the
 * user's request that says what to make (region, network, master). The same fields validate at the API
 * and again in the workflow's first step, so a workflow started by hand cannot skip them.
 */

const cloudId = cloudIdSchema;
const cidr = z.cidrv4({ error: "expected an IPv4 CIDR block such as 10.42.0.0/16" }).refine(
  (c) => {
    const bits = Number(c.split("/")[1]);
    return bits >= 16 && bits <= 24;
  },
  { error: "the VPC block must be /16 to /24" },
);

/** Either the user's network (used as it is, never deleted) or one NowScale creates and owns. */
export const networkRequestSchema = z.union([
  z.strictObject({
    vpcId: cloudId,
    /** The master goes in the first subnet. */
    subnetIds: z.array(cloudId).min(1).max(16),
  }),
  z.strictObject({
    cidr: cidr.default("10.42.0.0/16"),
    /** One subnet per zone; the master's zone must be one of them. */
    zones: z.array(cloudId).min(1).max(6),
    /** Interface endpoints for SSM and Secrets Manager (docs/deploy.md: their cost). */
    interfaceEndpoints: z.boolean().default(true),
  }),
]);

/**
 * The fields of the creation request, for the API's body to reuse (lib/control/api/schemas.ts): what
 * the workflow makes. The autoscaling configuration is not among them: the API validates it once and it
 * lives on the cluster record alone, where the workflow reads the queue names when it needs them.
 */
export const createClusterRequestShape = {
  region: cloudId,
  network: networkRequestSchema,
  master: z.strictObject({
    instanceType: cloudId,
    zone: cloudId,
    /** @default the latest Debian 12 image for the instance type's architecture (lib/infra/default-image.ts) */
    imageId: cloudId.optional(),
    agentPort: z.number().int().min(1024).max(65_535).default(8787),
    /** Where the master downloads the agent bundle; without it the image must carry the agent. */
    agentUrl: z
      .string()
      .regex(/^(https:\/\/|s3:\/\/)[A-Za-z0-9._~:/?=&%+-]{1,1000}$/)
      .optional(),
    /** The SHA-256 (hex) the bundle at agentUrl must have; the stack's own bundle is always checked. */
    agentSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, { error: "expected 64 lowercase hex digits" })
      .optional(),
  }),
  /** How long the master's agent may take to answer its health check. */
  agentHealthTimeoutSeconds: z.number().int().min(60).max(7200).default(900),
};

/** The cross-field rule of a creation request: the master's zone is among the zones of the network made. */
export function checkMasterZone(
  r: { network: z.output<typeof networkRequestSchema>; master: { zone: string } },
  ctx: z.RefinementCtx,
): void {
  if ("zones" in r.network && !r.network.zones.includes(r.master.zone)) {
    ctx.addIssue({
      code: "custom",
      path: ["master", "zone"],
      message: `the master's zone must be one of network.zones (${r.network.zones.join(", ")})`,
    });
  }
}

export const createClusterRequestSchema = z
  .strictObject(createClusterRequestShape)
  .superRefine(checkMasterZone);

export type CreateClusterRequestInput = z.input<typeof createClusterRequestSchema>;
export type CreateClusterRequest = z.output<typeof createClusterRequestSchema>;

export const clusterIdSchema = z
  .string()
  .regex(SIMPLE_NAME, { error: `invalid cluster id: ${SIMPLE_NAME_HINT}` });

/**
 * Validates both; throws ValidationError (never retried by the workflow) naming every bad field.
 * `stackRegion`, where given, is the only region a cluster may be created in: the workflow makes the
 * network, the secrets and the master in the stack's own region, so a request for another one is refused
 * (naming `region`) instead of splitting the cluster between two regions.
 */
export function parseCreateCluster(
  clusterId: unknown,
  request: unknown,
  stackRegion?: string,
): CreateClusterRequest {
  parseWith(clusterIdSchema, clusterId, "clusterId");
  const parsed = parseWith(createClusterRequestSchema, request, "create cluster request");
  checkRegion(parsed.region, stackRegion);
  return parsed;
}

/** Throws ValidationError naming `region` when it is not the stack's region. */
export function checkRegion(region: string, stackRegion: string | undefined): void {
  if (stackRegion === undefined || region === stackRegion) return;
  throw new ValidationError("create cluster request", [
    { path: "region", message: `must be the stack's region ${stackRegion}, not ${region}` },
  ]);
}
