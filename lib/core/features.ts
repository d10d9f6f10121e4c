/**
 * The Slurm features a NowScale node carries: `q_<queue>`, `type_<instance type>`, `zone_<zone>`, then the
 * queue's own `features`. '_' never occurs in a queue name, so the prefixes are unambiguous; the queue
 * feature is also what the queue's NodeSet selects. Jobs' constraints (-C) are matched against these.
 */
export const QUEUE_FEATURE_PREFIX = "q_";
export const TYPE_FEATURE_PREFIX = "type_";
export const ZONE_FEATURE_PREFIX = "zone_";

/** Prefixes a queue's own features may not use: they would pose as another queue, type or zone. */
export const RESERVED_FEATURE_PREFIXES = [QUEUE_FEATURE_PREFIX, TYPE_FEATURE_PREFIX, ZONE_FEATURE_PREFIX];

/** Every feature of a node of this queue, type and zone, NowScale's three first. */
export function nodeFeatures(
  queue: string,
  instanceType: string,
  zone: string,
  queueFeatures: readonly string[] = [],
): string[] {
  return [
    `${QUEUE_FEATURE_PREFIX}${queue}`,
    `${TYPE_FEATURE_PREFIX}${instanceType}`,
    `${ZONE_FEATURE_PREFIX}${zone}`,
    ...queueFeatures,
  ];
}
