import type { Candidate } from "./model.js";

/**
 * The candidate an entry stands for: exactly the Candidate fields, without the entry's config index and
 * shape, so launches (and the intents recorded from them) carry nothing else. The one copy of an entry
 * into a candidate, for the planner and for nodes added by hand.
 */
export function candidateOf(entry: Candidate): Candidate {
  const { instanceType, zone, chargeType, subnetId, imageId } = entry;
  return {
    instanceType,
    zone,
    chargeType,
    ...(subnetId === undefined ? {} : { subnetId }),
    ...(imageId === undefined ? {} : { imageId }),
  };
}
