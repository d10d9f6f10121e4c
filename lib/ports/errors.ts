/**
 * The typed errors every CloudProvider adapter maps its cloud's error codes onto. The control plane
 * branches on these classes (or on `kind`), never on a cloud's own codes; the cloud's code and message
 * stay available as `cause` for logs and events.
 */

/** What the cloud said, kept verbatim. */
export interface CloudErrorCause {
  /** The cloud's error code, e.g. `InsufficientInstanceCapacity`, `ResourceInsufficient.SpecifiedInstanceType`. */
  code: string;
  message: string;
  /** HTTP status when the cloud sent one. */
  httpStatus?: number;
  requestId?: string;
}

export type CloudErrorKind =
  | "InsufficientCapacity"
  | "QuotaExceeded"
  | "Throttled"
  | "ServiceUnavailable"
  | "InvalidRequest"
  | "NotFound"
  | "Unauthorized";

/** Base class: `kind` says what happened, `retryable` whether the same call may succeed later. */
export abstract class CloudProviderError extends Error {
  abstract readonly kind: CloudErrorKind;
  abstract readonly retryable: boolean;
  declare readonly cause?: CloudErrorCause;

  constructor(message: string, cause?: CloudErrorCause) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** The cloud has no capacity for this (instance type, zone, charge type) right now: try another candidate. */
export class InsufficientCapacityError extends CloudProviderError {
  override readonly name = "InsufficientCapacityError";
  readonly kind = "InsufficientCapacity";
  readonly retryable = false;
}

/** An account limit (instances, vCPUs, spot requests) stops the launch: raise the quota or scale less. */
export class QuotaExceededError extends CloudProviderError {
  override readonly name = "QuotaExceededError";
  readonly kind = "QuotaExceeded";
  readonly retryable = false;
}

/** The API rate limit was hit: retried with backoff. */
export class ThrottledError extends CloudProviderError {
  override readonly name = "ThrottledError";
  readonly kind = "Throttled";
  readonly retryable = true;
}

/** The cloud failed on its side (5xx, internal error, connection reset): retried with backoff. */
export class ServiceUnavailableError extends CloudProviderError {
  override readonly name = "ServiceUnavailableError";
  readonly kind = "ServiceUnavailable";
  readonly retryable = true;
}

/** The request is wrong (bad parameter, unknown image, token reused with other parameters): never retried. */
export class InvalidRequestError extends CloudProviderError {
  override readonly name = "InvalidRequestError";
  readonly kind = "InvalidRequest";
  readonly retryable = false;
}

/** The named instance (or resource) does not exist. */
export class NotFoundError extends CloudProviderError {
  override readonly name = "NotFoundError";
  readonly kind = "NotFound";
  readonly retryable = false;
}

/** The credentials are missing, wrong or not allowed to do this: never retried. */
export class UnauthorizedError extends CloudProviderError {
  override readonly name = "UnauthorizedError";
  readonly kind = "Unauthorized";
  readonly retryable = false;
}

const BY_KIND = {
  InsufficientCapacity: InsufficientCapacityError,
  QuotaExceeded: QuotaExceededError,
  Throttled: ThrottledError,
  ServiceUnavailable: ServiceUnavailableError,
  InvalidRequest: InvalidRequestError,
  NotFound: NotFoundError,
  Unauthorized: UnauthorizedError,
} as const satisfies Record<
  CloudErrorKind,
  new (
    message: string,
    cause?: CloudErrorCause,
  ) => CloudProviderError
>;

/** Builds the typed error for a kind; adapters call this from their code tables. */
export function cloudError(
  kind: CloudErrorKind,
  message: string,
  cause?: CloudErrorCause,
): CloudProviderError {
  return new BY_KIND[kind](message, cause);
}

export function isCloudProviderError(error: unknown): error is CloudProviderError {
  return error instanceof CloudProviderError;
}
