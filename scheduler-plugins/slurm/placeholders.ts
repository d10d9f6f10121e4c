import type { ResolvedConfig } from "../../lib/core/config.js";
import { nodeFeatures, ZONE_FEATURE_PREFIX } from "../../lib/core/features.js";
import { PLACEHOLDER_NAME, type PlaceholderSpec, placeholderName } from "../../lib/ports/agent-protocol.js";

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
