/**
 * Errors the lifecycle tasks throw on purpose. Their `name` is what Step Functions matches in Retry
 * and Catch (the Lambda runtime reports it as errorType), so the names are part of the workflow's
 * contract: lib/workflow/retry.ts lists them.
 */

/** Something still uses the resource (instances still terminating): worth retrying after a wait. */
export class ResourcesInUseError extends Error {
  override readonly name = "ResourcesInUseError";
}

/** The task was called with input the workflow never sends: a bug or a hand-started execution. */
export class BadTaskInputError extends Error {
  override readonly name = "BadTaskInputError";
}

/**
 * The cluster is being deleted (or is deleted): a creation step that runs late, because its start raced
 * a DELETE, must not take the record back, and nothing moves a DELETED cluster. Not retried.
 */
export class ClusterDeletedError extends Error {
  override readonly name = "ClusterDeletedError";
}

/**
 * A teardown step (drain, terminate, secrets, network) was asked to run on an attached cluster: its
 * master, network and secrets are the user's. The deletion workflow detaches such a cluster instead
 * (lib/workflow/delete-cluster.ts); this guard holds even for a hand-started or older execution. Not retried.
 */
export class AttachedClusterError extends Error {
  override readonly name = "AttachedClusterError";
}
