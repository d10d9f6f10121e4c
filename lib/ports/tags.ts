/**
 * The tags NowScale puts on every instance at creation. IAM policies (design.md section 3) allow
 * launch and terminate only on resources carrying MANAGED_TAG, and the reconciler finds orphans by
 * CLUSTER_TAG, so these keys are part of the deployed contract: do not rename them.
 */
export const CLUSTER_TAG = "nowscale:cluster";
export const QUEUE_TAG = "nowscale:queue";
export const MANAGED_TAG = "nowscale:managed";
export const RESERVED_TAG_PREFIX = "nowscale:";
/** On the master only (set by the creation workflow): the scaler's roles may never terminate it. */
export const ROLE_TAG = "nowscale-role";
/** On a cluster secret: its kind, so a compute's role reads the munge key only. */
export const SECRET_KIND_TAG = "nowscale:secret-kind";
/** On a cluster secret: its cluster's VPC, so nodes read only the secrets of their own VPC. */
export const SECRET_VPC_TAG = "nowscale:vpc";

/**
 * Put by the user on what they let NowScale use for an attached master (docs/attach.md): the master
 * itself (EC2 instance or SSM hybrid managed instance, so Run Command may reach its agent) and the
 * security groups its compute nodes launch into. Value "true". IAM allows nothing else of theirs.
 */
export const ATTACH_TAG = "nowscale:attach";

/** Tag keys and values that every cloud accepts (EC2, CVM and ECS share this subset). */
export const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9 _.:/=+@-]{0,127}$/;
export const TAG_VALUE = /^[A-Za-z0-9 _.:/=+@-]{0,255}$/;

/** The instance's tags: the caller's extra tags first, then the reserved ones, which always win. */
export function instanceTags(
  clusterId: string,
  queue: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return { ...extra, [CLUSTER_TAG]: clusterId, [QUEUE_TAG]: queue, [MANAGED_TAG]: "true" };
}

export function tagsToList(tags: Readonly<Record<string, string>>): { Key: string; Value: string }[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}
