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
    // Stock below MinCount (Go SDK errors.go): the offering's capacity, not the request's fault.
    "ResourceInsufficient.InsufficientOfferingMinimum": "InsufficientCapacity",
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
 * Where CVM's refusal of MinCount holds: the region, one charge type there, or the account (the region's
 * memory too, but only once a call without MinCount went through: see below).
 */
export type MinCountRefusal = "region" | "chargeType" | "account";

/**
 * The codes by which RunInstances refuses MinCount (partial delivery), and how far each refusal reaches.
 * Source: the Tencent Cloud Go SDK (TencentCloud/tencentcloud-sdk-go, tencentcloud/cvm/v20170312/errors.go,
 * and client.go's error list of RunInstances): MinCountUnsupportedRegion "此区域暂不支持部分发货MinCount参数"
 * (this region does not support MinCount yet), MinCountUnsupportedChargeType "此计费方式不支持部分发货MinCount
 * 参数" (this charge type does not). The Node SDK's model says only that MinCount "takes effect only for
 * accounts, regions and charge types that support partial delivery" and names no code for an account.
 * ASSUMPTION: an account without it answers RunInstances' generic OperationDenied.AccountNotSupported
 * ("不支持该账户的操作", also in RunInstances' list); it is taken for a refusal of MinCount only when the
 * same call without MinCount then goes through (else it stays Unauthorized, and nothing is remembered).
 * Not a refusal: ResourceInsufficient.InsufficientOfferingMinimum (stock below MinCount), a capacity error.
 */
export const MIN_COUNT_REFUSALS: ReadonlyMap<string, MinCountRefusal> = new Map([
  ["UnsupportedOperation.MinCountUnsupportedRegion", "region"],
  ["UnsupportedOperation.MinCountUnsupportedChargeType", "chargeType"],
  ["OperationDenied.AccountNotSupported", "account"],
]);

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
