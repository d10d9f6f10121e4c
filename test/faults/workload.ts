import type { World } from "../support/faults/world.js";

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

/** Submits `count` jobs of one whole node each (or `nodes`) running `minutes`. */
export function submitJobs(
  world: World,
  count: number,
  options: { queue?: string; minutes: number; nodes?: number },
): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      world.submit({
        queue: options.queue ?? "compute",
        runtimeMs: options.minutes * MINUTE,
        ...(options.nodes === undefined ? {} : { nodes: options.nodes }),
      }),
    );
  }
  return ids;
}

/** Jobs of the cluster that have not finished. */
export function unfinished(world: World): number {
  return [...world.sim().jobs.values()].filter((j) => j.state !== "DONE").length;
}
