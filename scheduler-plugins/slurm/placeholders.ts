import { createHash } from "node:crypto";
import type { ResolvedConfig } from "../../lib/core/config.js";
import { nodeFeatures, ZONE_FEATURE_PREFIX } from "../../lib/core/features.js";
import { CLOUD_ID, SIMPLE_NAME } from "../../lib/core/names.js";
import { FEATURE } from "./features.js";

/**
 * Placeholder nodes: one FUTURE node per queue × instance type, so Slurm knows every shape NowScale can
 * launch before any such node exists. Measured on Slurm 22.05 with a dynamic NodeSet partition: without
 * them `sbatch -C <feature>` is refused at submit ("Invalid feature specification") in an empty queue,
 * and `--gpus=1` is refused ("Requested node configuration is not available") while only CPU nodes are
 * up; with them both are accepted and pend (ReqNodeNotAvail) until a matching `slurmd -Z` node joins.
 * A FUTURE node is never allocated (a CLOUD one would be, and its jobs stick in CONFIGURING), and sinfo
 * does not list it (scontrol only with --future), so it never reaches the report as capacity; the agent
 * would list one with the unmanaged nodes anyway. Slurm does not size-check jobs against FUTURE nodes:
 * a job no type fits is accepted (PartitionConfig) and the planner skips it as NO_FITTING_SHAPE.
 *
 * Kept in step with the configuration: a placeholder's name is a digest of its whole spec, so any change
 * of a queue's types, shapes, zones or features changes the set of names. The report lists the
 * placeholders Slurm holds (`scontrol --future show node`: sinfo never lists FUTURE nodes); the scale
 * cycle compares them with `placeholderSpecs(config)` and, when they differ, asks the agent to sync
 * (`SlurmClient.syncPlaceholders`: create the missing, delete the `ph-` FUTURE nodes not wanted).
 */
export interface PlaceholderSpec {
  /** `ph-` and 16 hex digits of the whole spec (placeholderName): a valid Slurm node name. */
  name: string;
  queue: string;
  instanceType: string;
  cpus: number;
  /** What the bootstrap declares for such a node: the spec ÷ the queue's scaleUpMemRatio. */
  realMemoryMiB: number;
  gpus: number;
  /** q_<queue>, type_<type>, the zone_ of every zone the queue lists the type in, the queue's own. */
  features: string[];
}

/** Every placeholder's name starts so; nothing else NowScale makes does. */
export const PLACEHOLDER_PREFIX = "ph-";
export const PLACEHOLDER_NAME = /^ph-[0-9a-f]{16}$/;

/** Placeholders one sync may hold (each is a node in slurmctld's table: MaxNodeCount counts them). */
export const MAX_PLACEHOLDERS = 1000;

/** `ph-` and 16 hex digits of the whole spec: a changed shape or feature is a new name. */
export function placeholderName(spec: Omit<PlaceholderSpec, "name">): string {
  const text = [
    spec.queue,
    spec.instanceType,
    spec.cpus,
    spec.realMemoryMiB,
    spec.gpus,
    spec.features.join(","),
  ].join("\n");
  return `${PLACEHOLDER_PREFIX}${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

/** The placeholders a configuration needs, queue by queue, types in the order the queue lists them. */
export function placeholderSpecs(config: ResolvedConfig): PlaceholderSpec[] {
  const specs: PlaceholderSpec[] = [];
  for (const queue of config.queues) {
    const zonesByType = new Map<string, string[]>();
    for (const entry of queue.entries) {
      const zones = zonesByType.get(entry.instanceType) ?? [];
      if (!zones.includes(entry.zone)) zones.push(entry.zone);
      zonesByType.set(entry.instanceType, zones);
    }
    for (const [instanceType, zones] of zonesByType) {
      const shape = config.catalog[instanceType];
      if (shape === undefined) continue;
      const [first, ...rest] = zones;
      const features = nodeFeatures(queue.queueName, instanceType, first as string, queue.features);
      // Every zone of the type, so `-C zone_<z>` is accepted for each one the queue can launch in.
      features.splice(3, 0, ...rest.map((z) => `${ZONE_FEATURE_PREFIX}${z}`));
      const spec = {
        queue: queue.queueName,
        instanceType,
        cpus: shape.vcpus,
        realMemoryMiB: Math.max(1, Math.floor(shape.memoryMiB / queue.scaleUpMemRatio)),
        gpus: shape.gpus,
        features,
      };
      specs.push({ name: placeholderName(spec), ...spec });
    }
  }
  return specs;
}

/** `scontrol create` arguments for one placeholder. */
export function placeholderCreateArgs(spec: PlaceholderSpec): string[] {
  const args = [
    "create",
    `NodeName=${spec.name}`,
    "State=FUTURE",
    `CPUs=${spec.cpus}`,
    `RealMemory=${spec.realMemoryMiB}`,
    `Features=${spec.features.join(",")}`,
  ];
  if (spec.gpus > 0) args.push(`Gres=gpu:${spec.gpus}`);
  return args;
}

/**
 * Validates a sync request's placeholders (`{"placeholders": [...]}` or the list). Each must be whole and
 * carry the name its spec gives (so a sync can only ever create or delete NowScale's `ph-` nodes).
 * Throws TypeError naming the field (`placeholders[1].cpus: ...`).
 */
export function parsePlaceholderSpecs(input: unknown): PlaceholderSpec[] {
  const list =
    typeof input === "object" && input !== null && !Array.isArray(input)
      ? (input as { placeholders?: unknown }).placeholders
      : input;
  if (!Array.isArray(list) || list.length > MAX_PLACEHOLDERS)
    throw new TypeError(`placeholders: must be a list of at most ${MAX_PLACEHOLDERS} placeholders`);
  const keys = ["name", "queue", "instanceType", "cpus", "realMemoryMiB", "gpus", "features"];
  return list.map((raw, i): PlaceholderSpec => {
    const where = `placeholders[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new TypeError(`${where}: must be an object`);
    const extra = Object.keys(raw).find((k) => !keys.includes(k));
    if (extra !== undefined) throw new TypeError(`${where}.${extra.slice(0, 40)}: unknown field`);
    const r = raw as Record<string, unknown>;
    if (typeof r.queue !== "string" || !SIMPLE_NAME.test(r.queue))
      throw new TypeError(`${where}.queue: not a queue name`);
    if (typeof r.instanceType !== "string" || !CLOUD_ID.test(r.instanceType))
      throw new TypeError(`${where}.instanceType: not an instance type`);
    for (const [field, min, max] of [
      ["cpus", 1, 100_000],
      ["realMemoryMiB", 1, 1 << 30],
      ["gpus", 0, 1024],
    ] as const) {
      const v = r[field];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
        throw new TypeError(`${where}.${field}: must be a whole number from ${min} to ${max}`);
    }
    if (
      !Array.isArray(r.features) ||
      r.features.length > 64 ||
      !r.features.every((f) => typeof f === "string" && FEATURE.test(f))
    )
      throw new TypeError(`${where}.features: must be at most 64 Slurm feature names`);
    const spec: PlaceholderSpec = {
      name: String(r.name),
      queue: r.queue,
      instanceType: r.instanceType,
      cpus: r.cpus as number,
      realMemoryMiB: r.realMemoryMiB as number,
      gpus: r.gpus as number,
      features: [...(r.features as string[])],
    };
    if (spec.name !== placeholderName(spec))
      throw new TypeError(`${where}.name: must be placeholderName of the spec`);
    return spec;
  });
}

/** What a sync changes: the wanted names Slurm lacks, and its `ph-` FUTURE nodes no longer wanted. */
export function placeholderChanges(
  wanted: readonly PlaceholderSpec[],
  present: readonly string[],
): { create: PlaceholderSpec[]; remove: string[] } {
  const have = new Set(present);
  const want = new Set(wanted.map((s) => s.name));
  return {
    create: wanted.filter((s) => !have.has(s.name)),
    remove: present.filter((n) => PLACEHOLDER_NAME.test(n) && !want.has(n)),
  };
}
