import { createHash } from "node:crypto";
import type { LaunchCandidate } from "./cloud-provider.js";

/** Bumped only if the derivation changes: old and new tokens then never collide. */
const TOKEN_VERSION = "nowscale-launch-v1";

/**
 * The idempotency token of one candidate's launch call: a hash of (cluster, round, candidate), so a
 * retried call (same Lambda retried, same cycle replayed) carries the same ClientToken and the cloud
 * returns the instances it already started. EC2, CVM and ECS all cap ClientToken at 64 ASCII characters;
 * this is "ns1-" plus 48 hex digits (192 bits of SHA-256), 52 characters.
 * The candidate's own fields, not its list position, identify it: reordering a queue's candidates
 * between retries keeps each candidate's token.
 */
export function launchToken(clusterId: string, round: string, candidate: LaunchCandidate): string {
  const parts = [
    TOKEN_VERSION,
    clusterId,
    round,
    candidate.instanceType,
    candidate.zone,
    candidate.chargeType,
    candidate.subnetId ?? "",
    candidate.imageId ?? "",
  ];
  // A separator that cannot occur in any part (all are allow-listed) keeps ("a","bc") apart from ("ab","c").
  const digest = createHash("sha256").update(parts.join("\n")).digest("hex");
  return `ns1-${digest.slice(0, 48)}`;
}
