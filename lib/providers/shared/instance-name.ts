import { createHash } from "node:crypto";

/**
 * The readable name an instance gets (`nowscale-<cluster>-<queue>`), cut to fit `maxLength` when a long
 * cluster and queue name would pass the cloud's limit (EC2's Name tag 256, CVM's and ECS's InstanceName
 * 128): the first characters, then '-' and 8 hex digits of the full name's SHA-256, so two long names
 * that share a beginning still differ and one name always gives the same result. Not an identity: the
 * `nowscale:` tags are.
 */
export function instanceName(clusterId: string, queue: string, maxLength: number): string {
  const full = `nowscale-${clusterId}-${queue}`;
  if (full.length <= maxLength) return full;
  if (maxLength < 18) throw new RangeError(`an instance name limit of ${maxLength} is too short`);
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, maxLength - 9)}-${hash}`;
}
