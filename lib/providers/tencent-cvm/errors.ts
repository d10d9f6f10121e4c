import { type CloudProviderError, cloudError, isCloudProviderError } from "../../ports/errors.js";
import { type ErrorCodeTable, kindOfCode, kindOfStatus } from "../shared/error-codes.js";

/**
 * CVM's error codes (API 2017-03-12, common and RunInstances/TerminateInstances codes), sorted into the
 * port's kinds. Exact codes win over prefixes: ResourceInsufficient.InsufficientGroupQuota is a quota,
 * not a stock-out.
 */
export const CVM_ERROR_CODES: ErrorCodeTable = {
  exact: {
    "ResourceInsufficient.InsufficientGroupQuota": "QuotaExceeded",
    "ResourceInsufficient.DisasterRecoverGroupCvmQuota": "QuotaExceeded",
    InstancesQuotaLimitExceeded: "QuotaExceeded",
    "ResourceUnavailable.InstanceType": "InsufficientCapacity",
    "ResourceNotFound.InvalidZoneInstanceType": "InsufficientCapacity",
    "InvalidParameterValue.InsufficientOffering": "InsufficientCapacity",
    "InvalidParameterValue.InsufficientPrice": "InsufficientCapacity",
    "InvalidParameterValue.ZoneNotSupported": "InsufficientCapacity",
    "FailedOperation.NoAvailableIpAddressCountInSubnet": "InsufficientCapacity",
    "LimitExceeded.VpcSubnetNum": "InsufficientCapacity",
    "UnsupportedOperation.InvalidZone": "InsufficientCapacity",
    "InvalidInstanceId.NotFound": "NotFound",
    "MutexOperation.TaskRunning": "ServiceUnavailable",
    InternalServerError: "ServiceUnavailable",
    "OperationDenied.AccountNotSupported": "Unauthorized",
    InvalidPermission: "Unauthorized",
  },
  prefixes: [
    ["ResourceInsufficient", "InsufficientCapacity"],
    ["ResourcesSoldOut", "InsufficientCapacity"],
    ["LimitExceeded", "QuotaExceeded"],
    ["RequestLimitExceeded", "Throttled"],
    ["InternalError", "ServiceUnavailable"],
    ["AuthFailure", "Unauthorized"],
    ["UnauthorizedOperation", "Unauthorized"],
    ["InvalidAccount", "Unauthorized"],
    ["Invalid", "InvalidRequest"],
    ["MissingParameter", "InvalidRequest"],
    ["UnknownParameter", "InvalidRequest"],
    ["UnsupportedOperation", "InvalidRequest"],
    ["FailedOperation", "InvalidRequest"],
  ],
};

/**
 * The SDK throws TencentCloudSDKHttpException: `code` from Response.Error.Code (HTTP 200), or only
 * `httpCode` for a non-200 answer, or neither for a transport failure.
 */
export function fromCvmError(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const e = (error ?? {}) as { code?: string; message?: string; requestId?: string; httpCode?: number };
  const code = e.code ?? (e.httpCode === undefined ? "TransportError" : `HTTP${e.httpCode}`);
  const message = e.message ?? String(error);
  // An unknown code in a well-formed answer is the request's problem; no code at all is the transport's.
  const kind =
    e.code === undefined
      ? kindOfStatus(e.httpCode)
      : (kindOfCode(e.code, CVM_ERROR_CODES) ?? "InvalidRequest");
  return cloudError(kind, `CVM ${code}: ${message}`, {
    code,
    message,
    ...(e.httpCode === undefined ? {} : { httpStatus: e.httpCode }),
    ...(e.requestId ? { requestId: e.requestId } : {}),
  });
}

/**
 * The VPC, SSM and TAT codes that differ from CVM's (their common codes, throttling and auth, are the
 * same): what is gone, and what is busy for a moment (a subnet whose last network interface is still
 * being released after its instances ended).
 */
export const TENCENT_SERVICE_ERROR_CODES: ErrorCodeTable = {
  exact: {
    ResourceInUse: "ServiceUnavailable",
    "ResourceUnavailable.SecretNotExist": "NotFound",
    "ResourceNotFound.SecretNotExist": "NotFound",
    "InvalidParameterValue.VpcIdMalformed": "InvalidRequest",
  },
  prefixes: [
    ["ResourceNotFound", "NotFound"],
    ["InvalidVpcId.NotFound", "NotFound"],
    ["InvalidSubnetId.NotFound", "NotFound"],
    ["InvalidSecurityGroupID.NotFound", "NotFound"],
    ["InvalidInstanceId.NotFound", "NotFound"],
    ["InvalidInvocationTaskId.NotFound", "NotFound"],
  ],
};

/** fromCvmError for another Tencent service: its own codes first, then CVM's table; `service` names it. */
export function fromTencentError(service: string, error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const e = (error ?? {}) as { code?: string; message?: string; requestId?: string; httpCode?: number };
  const kind = e.code === undefined ? undefined : kindOfCode(e.code, TENCENT_SERVICE_ERROR_CODES);
  const mapped = fromCvmError(error);
  const message = mapped.message.replace(/^CVM /, `${service} `);
  if (kind === undefined && message === mapped.message) return mapped;
  return cloudError(kind ?? mapped.kind, message, mapped.cause ?? { code: "Unknown", message });
}
