import { type CloudProviderError, cloudError, isCloudProviderError } from "../../ports/errors.js";
import { type ErrorCodeTable, kindOfCode, kindOfStatus } from "../shared/error-codes.js";

/**
 * ECS's error codes (API 2014-05-26, RunInstances / DeleteInstances / DescribeInstances and the common
 * ones), sorted into the port's kinds. ECS sends most of them with HTTP 400 or 403, so the code, not the
 * status, decides.
 */
export const ECS_ERROR_CODES: ErrorCodeTable = {
  exact: {
    "OperationDenied.NoStock": "InsufficientCapacity",
    "Zone.NotOnSale": "InsufficientCapacity",
    "InvalidResourceType.NotSupported": "InsufficientCapacity",
    "InstanceType.Offline": "InsufficientCapacity",
    InstanceTypeNotSupported: "InsufficientCapacity",
    "OperationDenied.SpotPriceLowerThanMarketPrice": "InsufficientCapacity",
    "InvalidVSwitchId.IpNotEnough": "InsufficientCapacity",
    "InvalidInstanceId.NotFound": "NotFound",
    Throttling: "Throttled",
    "Throttling.User": "Throttled",
    "Throttling.Api": "Throttled",
    "Throttling.Resource": "Throttled",
    ServiceUnavailable: "ServiceUnavailable",
    InternalError: "ServiceUnavailable",
    UnknownError: "ServiceUnavailable",
    "Idempotence.Processing": "ServiceUnavailable",
    LastTokenProcessing: "ServiceUnavailable",
    IdempotentParameterMismatch: "InvalidRequest",
    IdempotenceParamNotMatch: "InvalidRequest",
    "InvalidAccessKeyId.NotFound": "Unauthorized",
    "InvalidAccessKeyId.Inactive": "Unauthorized",
    SignatureDoesNotMatch: "Unauthorized",
    IncompleteSignature: "Unauthorized",
    InvalidSecurityToken: "Unauthorized",
    "InvalidSecurityToken.Expired": "Unauthorized",
    InvalidCredentials: "Unauthorized",
    NoPermission: "Unauthorized",
    "InvalidUser.Unauthorized": "Unauthorized",
    InsufficientBalance: "Unauthorized",
    "Account.Arrearage": "Unauthorized",
  },
  prefixes: [
    ["QuotaExceed", "QuotaExceeded"],
    ["Throttling", "Throttled"],
    ["Forbidden", "Unauthorized"],
    ["Invalid", "InvalidRequest"],
    ["MissingParameter", "InvalidRequest"],
    ["OperationDenied", "InvalidRequest"],
  ],
};

/**
 * The Darabonba core throws ClientError / ServerError / ThrottlingError with `code`, `statusCode` and a
 * message it prefixes ("code: 403, <Message> request id: ..."); transport failures have no code.
 */
export function fromEcsError(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const e = (error ?? {}) as {
    code?: string;
    message?: string;
    statusCode?: number;
    requestId?: string;
    data?: { Message?: string };
  };
  const code = e.code ?? "TransportError";
  const message = e.data?.Message ?? e.message ?? String(error);
  const kind =
    e.code === undefined
      ? kindOfStatus(e.statusCode)
      : (kindOfCode(e.code, ECS_ERROR_CODES) ?? kindOfStatus(e.statusCode ?? 400));
  return cloudError(kind, `ECS ${code}: ${message}`, {
    code,
    message,
    ...(e.statusCode === undefined ? {} : { httpStatus: e.statusCode }),
    ...(e.requestId && e.requestId !== "undefined" ? { requestId: e.requestId } : {}),
  });
}

/**
 * The codes of the calls around the instances (VPC 2016-04-28, ECS security groups, KMS 2016-01-20
 * Secrets Manager), before ECS's own table. A resource still in use while what it holds is being released
 * (a VSwitch with instances leaving, a VPC whose VSwitches are going, a VPC still Pending) is worth
 * retrying: the workflow's step waits and tries again.
 */
export const ALIBABA_RESOURCE_ERROR_CODES: ErrorCodeTable = {
  exact: {
    "Forbidden.ResourceNotFound": "NotFound",
    "InvalidVpcId.NotFound": "NotFound",
    "Forbidden.VpcNotFound": "NotFound",
    "InvalidVSwitchId.NotFound": "NotFound",
    "InvalidSecurityGroupId.NotFound": "NotFound",
    "InvalidRegionId.NotFound": "InvalidRequest",
    IncorrectVpcStatus: "ServiceUnavailable",
    IncorrectStatus: "ServiceUnavailable",
    "IncorrectStatus.Vpc": "ServiceUnavailable",
    "IncorrectStatus.VSwitch": "ServiceUnavailable",
    OperationConflict: "ServiceUnavailable",
    "Rejected.KMSKeyPendingDeletion": "InvalidRequest",
  },
  prefixes: [
    ["DependencyViolation", "ServiceUnavailable"],
    ["OperationFailed.LastTokenProcessing", "ServiceUnavailable"],
    ["InvalidOperation.ResourceManagedByCloudProduct", "InvalidRequest"],
    ["Forbidden.Exist", "InvalidRequest"],
  ],
};

/** An error of a VPC, security-group or KMS call, labelled with its service (`VPC`, `ECS`, `KMS`). */
export function fromAlibabaError(service: string, error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const code = (error as { code?: string } | undefined)?.code;
  const mapped = fromEcsError(error);
  const kind =
    (code === undefined ? undefined : kindOfCode(code, ALIBABA_RESOURCE_ERROR_CODES)) ?? mapped.kind;
  return cloudError(kind, mapped.message.replace(/^ECS /, `${service} `), mapped.cause);
}
