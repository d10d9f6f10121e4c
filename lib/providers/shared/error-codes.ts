import { ownValue } from "../../core/own.js";
import type { CloudErrorKind } from "../../ports/errors.js";

/**
 * A cloud's error codes, sorted into the port's kinds: exact codes first, then code prefixes (a cloud
 * adds sub-codes such as `ResourceInsufficient.<detail>` faster than a table can follow).
 */
export interface ErrorCodeTable {
  exact: Readonly<Record<string, CloudErrorKind>>;
  prefixes: readonly (readonly [prefix: string, kind: CloudErrorKind])[];
}

/** The kind for a code, or undefined when the table does not know it (the adapter then decides by HTTP status). */
export function kindOfCode(code: string, table: ErrorCodeTable): CloudErrorKind | undefined {
  const exact = ownValue(table.exact, code);
  if (exact !== undefined) return exact;
  for (const [prefix, kind] of table.prefixes) {
    if (code.startsWith(prefix)) return kind;
  }
  return undefined;
}

/** For codes no table knows: 5xx and transport failures may pass, anything else is the request's fault. */
export function kindOfStatus(httpStatus: number | undefined): CloudErrorKind {
  if (httpStatus === undefined || httpStatus >= 500) return "ServiceUnavailable";
  if (httpStatus === 429) return "Throttled";
  if (httpStatus === 401) return "Unauthorized";
  // 403 is not enough: Alibaba answers "no stock" and "wrong instance state" with 403 too.
  return "InvalidRequest";
}
