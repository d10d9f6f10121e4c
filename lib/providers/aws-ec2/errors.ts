import { type CloudProviderError, cloudError, isCloudProviderError } from "../../ports/errors.js";
import { type ErrorCodeTable, kindOfCode, kindOfStatus } from "../shared/error-codes.js";

/**
 * EC2's error codes (EC2 API Reference, "Error codes"), sorted into the port's kinds. Codes not listed
 * fall back on the HTTP status.
 */
export const EC2_ERROR_CODES: ErrorCodeTable = {
  exact: {
    InsufficientInstanceCapacity: "InsufficientCapacity",
    InsufficientHostCapacity: "InsufficientCapacity",
    InsufficientReservedInstanceCapacity: "InsufficientCapacity",
    InsufficientCapacity: "InsufficientCapacity",
    // A subnet out of addresses or a type not offered in the zone: this offering cannot deliver, try the next.
    InsufficientFreeAddressesInSubnet: "InsufficientCapacity",
    Unsupported: "InsufficientCapacity",
    SpotMaxPriceTooLow: "InsufficientCapacity",
    InstanceLimitExceeded: "QuotaExceeded",
    VcpuLimitExceeded: "QuotaExceeded",
    MaxSpotInstanceCountExceeded: "QuotaExceeded",
    ResourceLimitExceeded: "QuotaExceeded",
    RequestLimitExceeded: "Throttled",
    Throttling: "Throttled",
    ThrottlingException: "Throttled",
    RequestThrottled: "Throttled",
    TooManyRequestsException: "Throttled",
    InternalError: "ServiceUnavailable",
    InternalFailure: "ServiceUnavailable",
    ServiceUnavailable: "ServiceUnavailable",
    Unavailable: "ServiceUnavailable",
    TimeoutError: "ServiceUnavailable",
    "InvalidInstanceID.NotFound": "NotFound",
    UnauthorizedOperation: "Unauthorized",
    AuthFailure: "Unauthorized",
    InvalidClientTokenId: "Unauthorized",
    SignatureDoesNotMatch: "Unauthorized",
    ExpiredToken: "Unauthorized",
    OptInRequired: "Unauthorized",
    Blocked: "Unauthorized",
    PendingVerification: "Unauthorized",
    AccessDenied: "Unauthorized",
    AccessDeniedException: "Unauthorized",
    CredentialsProviderError: "Unauthorized",
    IdempotentParameterMismatch: "InvalidRequest",
  },
  prefixes: [
    ["Insufficient", "InsufficientCapacity"],
    ["Invalid", "InvalidRequest"],
  ],
};

/** SDK v3 errors carry the code as `name`, the status in `$metadata`; network errors carry neither. */
export function fromEc2Error(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const e = (error ?? {}) as {
    name?: string;
    Code?: string;
    message?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number; requestId?: string };
  };
  const code = e.Code ?? e.name ?? "UnknownError";
  const message = e.message ?? String(error);
  const httpStatus = e.$metadata?.httpStatusCode;
  const kind =
    kindOfCode(code, EC2_ERROR_CODES) ??
    (e.$fault === "server" ? "ServiceUnavailable" : kindOfStatus(httpStatus));
  return cloudError(kind, `EC2 ${code}: ${message}`, {
    code,
    message,
    ...(httpStatus === undefined ? {} : { httpStatus }),
    ...(e.$metadata?.requestId === undefined ? {} : { requestId: e.$metadata.requestId }),
  });
}
