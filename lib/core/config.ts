import { z } from "zod";
import { BUILTIN_CATALOGS, type BuiltinCatalogName } from "./catalogs/index.js";
import { RESERVED_FEATURE_PREFIXES } from "./features.js";
import { shapeKey } from "./fit.js";
import type { Candidate, InstanceCatalog, InstanceTypeInfo } from "./model.js";
import { cloudIdSchema, FEATURE_NAME, FEATURE_NAME_HINT, simpleNameSchema } from "./names.js";
import { emptyRecord, ownValue } from "./own.js";
import { parseWith } from "./validation.js";

const int = (min: number, max: number) =>
  z
    .number({ error: "expected a number" })
    .int({ error: "expected a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const simpleName = simpleNameSchema;
const cloudId = cloudIdSchema;

export const instanceTypeSchema = z.strictObject({
  vcpus: int(1, 4096),
  memoryMiB: int(1, 64 * 1024 * 1024),
  gpus: int(0, 64).default(0),
  pricePerHour: z.number().min(0, { error: "must be at least 0" }).max(10_000).exactOptional(),
});

export const expansionNodeConfigSchema = z.strictObject({
  zone: cloudId,
  instanceType: cloudId,
  chargeType: z.enum(["ON_DEMAND", "SPOT"]).default("ON_DEMAND"),
  subnetId: cloudId.exactOptional(),
  imageId: cloudId.exactOptional(),
});

/** One queue (Slurm partition), THPC's QueueConfig with its names in camelCase and its ranges. */
export const queueConfigSchema = z
  .strictObject({
    queueName: simpleName,
    minSize: int(0, 10_000).default(0),
    maxSize: int(0, 10_000).default(10),
    enableAutoExpansion: z.boolean().default(true),
    enableAutoShrink: z.boolean().default(true),
    expansionNodeConfigs: z
      .array(expansionNodeConfigSchema)
      .min(1, { error: "list at least one {zone, instanceType} entry to launch from" })
      .max(100, { error: "at most 100 entries" }),
    desiredIdleNodeCapacity: int(0, 10_000).default(0),
    /** Percent of the needed nodes launched per round when the need exceeds the threshold. */
    scaleOutRatio: int(1, 100).default(100),
    scaleOutNodeThreshold: int(0, 10_000).default(0),
    maxNodesPerCycle: int(1, 100).default(100),
    /**
     * Slurm features every node of the queue carries besides its own `q_<queue>`, `type_<type>` and
     * `zone_<zone>`; jobs' constraints (-C) are matched against all of them.
     */
    features: z
      .array(z.string().regex(FEATURE_NAME, { error: `invalid feature: ${FEATURE_NAME_HINT}` }))
      .max(32, { error: "at most 32 features" })
      .default([]),
    /** A job's memory is multiplied by this before matching: usable memory is below the spec (4 GB → 3.6 GB). */
    scaleUpMemRatio: z
      .number()
      .min(1, { error: "must be at least 1" })
      .max(2, { error: "must be at most 2" })
      .default(1.1),
  })
  .superRefine((q, ctx) => {
    if (q.minSize > q.maxSize) {
      ctx.addIssue({
        code: "custom",
        path: ["minSize"],
        message: `minSize (${q.minSize}) must not exceed maxSize (${q.maxSize})`,
      });
    }
    if (q.desiredIdleNodeCapacity > q.maxSize) {
      ctx.addIssue({
        code: "custom",
        path: ["desiredIdleNodeCapacity"],
        message: `desiredIdleNodeCapacity (${q.desiredIdleNodeCapacity}) must not exceed maxSize (${q.maxSize})`,
      });
    }
    q.features.forEach((f, i) => {
      const prefix = RESERVED_FEATURE_PREFIXES.find((p) => f.startsWith(p));
      if (prefix !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["features", i],
          message: `"${prefix}" begins NowScale's own features (queue, type, zone): choose another name`,
        });
      }
    });
    const seen = new Map<string, number>();
    q.expansionNodeConfigs.forEach((e, i) => {
      const key = `${e.instanceType}@${e.zone}@${e.chargeType}@${e.subnetId ?? ""}`;
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["expansionNodeConfigs", i],
          message: `repeats entry ${first} (same instanceType, zone, chargeType and subnet): remove one`,
        });
      } else seen.set(key, i);
    });
  });

export const configSchema = z
  .strictObject({
    /** Seconds a job must have waited before it counts as demand. */
    expansionBusyTime: int(0, 86_400).default(120),
    /** Seconds a node must have been idle without a break before it is shrunk. */
    shrinkIdleTime: int(0, 604_800).default(300),
    policy: z.enum(["thpc", "packed"]).default("thpc"),
    /**
     * Seconds a launched node may take to become usable in Slurm. A LAUNCHING or NOT_READY node covers
     * pending demand only this long after its launch; then the demand is launched elsewhere.
     */
    bootTimeout: int(60, 86_400).default(900),
    /**
     * The safety net, in seconds: an idle node beside a pending job it seems to fit, that Slurm has not
     * started there for this long, stops covering the job (about three polls of 15 s, plus Slurm's own pass).
     */
    reservationTimeout: int(15, 86_400).default(60),
    /**
     * When every offering of a job's best-fit shape is held unavailable after capacity errors:
     * "next-shape" launches the next-best shape that fits; "strict" (THPC's rule) waits for the best fit.
     */
    capacityFallback: z.enum(["next-shape", "strict"]).default("next-shape"),
    /** packed only: choose new node types by price per used vCPU when every fitting type has a price. */
    weighPrice: z.boolean().default(true),
    /**
     * Warm headroom, in seconds of recent arrivals: idle vCPUs up to (CPUs of the single-node jobs
     * submitted in the last headroomWindow seconds) ÷ headroomWindow × headroomSeconds are not shrunk,
     * so that shrinkIdleTime can be short without making arriving jobs wait for a boot. 0: off (THPC).
     */
    headroomSeconds: int(0, 3600).default(0),
    /** Seconds of arrivals the headroom is sized from. */
    headroomWindow: int(60, 86_400).default(3600),
    /**
     * Also launch nodes of the queue's first shape when the idle and booting vCPUs no pending job will
     * use fall below the headroom (false: the headroom only keeps idle nodes from shrinking).
     */
    headroomLaunch: z.boolean().default(false),
    /** Terminate LAUNCHING nodes that no pending job will use any more (beyond minSize and the headroom). */
    cancelUnneededBoots: z.boolean().default(false),
    catalogs: z
      .array(z.enum(Object.keys(BUILTIN_CATALOGS) as [BuiltinCatalogName, ...BuiltinCatalogName[]]))
      .default([]),
    instanceTypes: z.record(cloudId, instanceTypeSchema).default({}),
    queueConfigs: z.array(queueConfigSchema).min(1, { error: "configure at least one queue" }).max(100),
  })
  .superRefine((c, ctx) => {
    const catalog = mergeCatalogs(c.catalogs, c.instanceTypes);
    const names = new Map<string, number>();
    c.queueConfigs.forEach((q, qi) => {
      const first = names.get(q.queueName);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["queueConfigs", qi, "queueName"],
          message: `"${q.queueName}" is already used by queueConfigs[${first}]: queue names must be unique`,
        });
      } else names.set(q.queueName, qi);
      q.expansionNodeConfigs.forEach((e, ei) => {
        if (ownValue(catalog, e.instanceType) === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["queueConfigs", qi, "expansionNodeConfigs", ei, "instanceType"],
            message: `unknown instance type "${e.instanceType}": add it to instanceTypes or name a catalog in catalogs (${Object.keys(BUILTIN_CATALOGS).join(", ")})`,
          });
        }
      });
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type QueueConfig = z.output<typeof queueConfigSchema>;

/** A queue entry with its shape looked up. */
export interface ResolvedEntry extends Candidate {
  index: number;
  shape: InstanceTypeInfo;
}

// In its own module, free of zod: the planner imports it, and the simulator's replay workers load the
// planner without the config schemas.
export { candidateOf } from "./candidate.js";

/** All entries of one queue that share a shape: THPC's fallback list, lowest index first. */
export interface ShapeGroup {
  key: string;
  shape: InstanceTypeInfo;
  entries: ResolvedEntry[];
}

export interface ResolvedQueue extends Omit<QueueConfig, "expansionNodeConfigs"> {
  entries: ResolvedEntry[];
  /** Distinct shapes in order of their first entry. */
  groups: ShapeGroup[];
}

/** A validated config with the catalog resolved: what the policies work from. */
export interface ResolvedConfig extends Omit<Config, "queueConfigs"> {
  catalog: InstanceCatalog;
  queues: ResolvedQueue[];
  queueByName: ReadonlyMap<string, ResolvedQueue>;
}

/** The catalog without a prototype, so that a lookup of a name like `constructor` finds nothing. */
function mergeCatalogs(
  names: readonly BuiltinCatalogName[],
  own: InstanceCatalog,
): Record<string, InstanceTypeInfo> {
  const out = emptyRecord<InstanceTypeInfo>();
  for (const name of names) Object.assign(out, BUILTIN_CATALOGS[name]);
  return Object.assign(out, own);
}

export function resolveConfig(config: Config): ResolvedConfig {
  const catalog = mergeCatalogs(config.catalogs, config.instanceTypes);
  const queues = config.queueConfigs.map(({ expansionNodeConfigs, ...rest }): ResolvedQueue => {
    const entries = expansionNodeConfigs.map((e, index): ResolvedEntry => {
      const shape = ownValue(catalog, e.instanceType);
      if (!shape) throw new Error(`instance type ${e.instanceType} missing from a validated config`);
      return { ...e, index, shape };
    });
    const groups = new Map<string, ShapeGroup>();
    for (const entry of entries) {
      const key = shapeKey(entry.shape);
      const group = groups.get(key);
      if (group) group.entries.push(entry);
      else groups.set(key, { key, shape: entry.shape, entries: [entry] });
    }
    return { ...rest, entries, groups: [...groups.values()] };
  });
  const { queueConfigs: _, ...cluster } = config;
  return { ...cluster, catalog, queues, queueByName: new Map(queues.map((q) => [q.queueName, q])) };
}

/** Validates raw JSON (throws ValidationError naming each bad field) and resolves the catalog. */
export function parseConfig(input: unknown, source = "config"): ResolvedConfig {
  return resolveConfig(parseWith(configSchema, input, source));
}
