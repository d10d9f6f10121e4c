import {
  nodeFeatures,
  QUEUE_FEATURE_PREFIX,
  TYPE_FEATURE_PREFIX,
  ZONE_FEATURE_PREFIX,
} from "../../lib/core/features.js";
import { CLOUD_ID, FEATURE_NAME, SIMPLE_NAME } from "../../lib/core/names.js";

/**
 * NowScale names a node's queue, instance type and zone in its Slurm features: `q_compute`,
 * `type_c5.xlarge`, `zone_ap-guangzhou-3`. '_' never occurs in a queue name, so the prefix is unambiguous;
 * the queue feature is also what the queue's NodeSet selects, which is how a dynamic node joins its partition.
 */
export { QUEUE_FEATURE_PREFIX, TYPE_FEATURE_PREFIX, ZONE_FEATURE_PREFIX };

export interface NodePlacement {
  queue: string;
  instanceType: string;
  zone: string;
}

/**
 * The features a node of this queue, type and zone starts with, then the queue's own features (config
 * `features`). Throws on a name outside the allow-lists.
 */
export function placementFeatures(p: NodePlacement, queueFeatures: readonly string[] = []): string[] {
  if (!SIMPLE_NAME.test(p.queue)) throw new Error(`invalid queue name "${p.queue}"`);
  if (!CLOUD_ID.test(p.instanceType)) throw new Error(`invalid instance type "${p.instanceType}"`);
  if (!CLOUD_ID.test(p.zone)) throw new Error(`invalid zone "${p.zone}"`);
  for (const f of queueFeatures) if (!FEATURE_NAME.test(f)) throw new Error(`invalid feature "${f}"`);
  return nodeFeatures(p.queue, p.instanceType, p.zone, queueFeatures);
}

/** The queue's feature, which its NodeSet selects. */
export function queueFeature(queue: string): string {
  return `${QUEUE_FEATURE_PREFIX}${queue}`;
}

/** Reads a node's placement back from its features; undefined unless all three are there and valid. */
export function placementOf(features: readonly string[]): NodePlacement | undefined {
  const find = (prefix: string, pattern: RegExp) => {
    const f = features.find((x) => x.startsWith(prefix));
    const value = f?.slice(prefix.length);
    return value !== undefined && pattern.test(value) ? value : undefined;
  };
  const queue = find(QUEUE_FEATURE_PREFIX, SIMPLE_NAME);
  const instanceType = find(TYPE_FEATURE_PREFIX, CLOUD_ID);
  const zone = find(ZONE_FEATURE_PREFIX, CLOUD_ID);
  return queue && instanceType && zone ? { queue, instanceType, zone } : undefined;
}
