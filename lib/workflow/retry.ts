import type { Retrier } from "./asl.js";

/**
 * Retry policy shared by every Task state. Error names are what the workflow-task Lambda throws
 * (`error.name` becomes the Lambda's errorType, which Step Functions matches).
 */

/** Never retried: the same input fails the same way. Listed first so nothing later can match them. */
export const PERMANENT_ERRORS = [
  "ValidationError",
  "BadTaskInputError",
  "InvalidRequestError",
  "UnauthorizedError",
  "QuotaExceededError",
  "InsufficientCapacityError",
  "NotFoundError",
  "AttachedClusterError",
  "NotDetachableError",
  "DetachTimeoutError",
];

/** Throttling and transient failures of the clouds and of Lambda itself. */
export const TRANSIENT_ERRORS = [
  "ThrottledError",
  "ServiceUnavailableError",
  "Lambda.TooManyRequestsException",
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  // The state store's (DynamoDB's) own transient failures, once the SDK's retries are spent: every task
  // is idempotent, so running it again is safe.
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "TimeoutError",
];

export const NO_RETRY: Retrier = { ErrorEquals: PERMANENT_ERRORS, MaxAttempts: 0 };

/** Exponential backoff with full jitter: 2 s, 4 s, 8 s... capped at 60 s, six attempts. */
export const TRANSIENT_RETRY: Retrier = {
  ErrorEquals: TRANSIENT_ERRORS,
  IntervalSeconds: 2,
  BackoffRate: 2,
  MaxAttempts: 6,
  MaxDelaySeconds: 60,
  JitterStrategy: "FULL",
};

/** Instances still terminating, an ENI still attached: wait longer, up to about ten minutes in all. */
export const IN_USE_RETRY: Retrier = {
  ErrorEquals: ["ResourcesInUseError"],
  IntervalSeconds: 10,
  BackoffRate: 1.5,
  MaxAttempts: 12,
  MaxDelaySeconds: 60,
  JitterStrategy: "FULL",
};

export const STANDARD_RETRY: Retrier[] = [NO_RETRY, TRANSIENT_RETRY];
export const TEARDOWN_RETRY: Retrier[] = [NO_RETRY, TRANSIENT_RETRY, IN_USE_RETRY];
