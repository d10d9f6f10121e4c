import { isCloudId, isSimpleName } from "../../core/names.js";
import {
  type LaunchRequest,
  MAX_LAUNCH_COUNT,
  MAX_USER_DATA_BASE64_BYTES,
} from "../../ports/cloud-provider.js";
import { InvalidRequestError } from "../../ports/errors.js";
import { RESERVED_TAG_PREFIX, TAG_KEY, TAG_VALUE } from "../../ports/tags.js";

/** A round id reaches a hash only, but also logs: the same kind of allow-list as the other names. */
const ROUND = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Rejects a launch request that no cloud should see: names outside the allow-lists (they reach tags and
 * logs), counts out of range, reserved tags. Throws InvalidRequestError naming every problem.
 */
export function validateLaunchRequest(request: LaunchRequest): void {
  const problems: string[] = [];
  if (!isSimpleName(request.clusterId))
    problems.push(`clusterId ${JSON.stringify(request.clusterId)} is not a simple name`);
  if (!isSimpleName(request.queue))
    problems.push(`queue ${JSON.stringify(request.queue)} is not a simple name`);
  if (!ROUND.test(request.round))
    problems.push(`round ${JSON.stringify(request.round)} is not an allowed id`);
  if (!Number.isInteger(request.count) || request.count < 1 || request.count > MAX_LAUNCH_COUNT) {
    problems.push(`count must be an integer from 1 to ${MAX_LAUNCH_COUNT}, got ${request.count}`);
  }
  if (!isCloudId(request.imageId))
    problems.push(`imageId ${JSON.stringify(request.imageId)} is not a cloud id`);
  if (request.candidates.length === 0) problems.push("candidates is empty: there is nowhere to launch");
  request.candidates.forEach((c, i) => {
    for (const field of ["instanceType", "zone", "subnetId", "imageId"] as const) {
      const value = c[field];
      if (value !== undefined && !isCloudId(value)) {
        problems.push(`candidates[${i}].${field} ${JSON.stringify(value)} is not a cloud id`);
      }
    }
    if (c.chargeType !== "ON_DEMAND" && c.chargeType !== "SPOT") {
      problems.push(`candidates[${i}].chargeType must be ON_DEMAND or SPOT`);
    }
  });
  for (const [key, value] of Object.entries(request.tags ?? {})) {
    if (key.startsWith(RESERVED_TAG_PREFIX))
      problems.push(`tag ${JSON.stringify(key)} uses the reserved prefix`);
    else if (!TAG_KEY.test(key)) problems.push(`tag key ${JSON.stringify(key)} has characters clouds reject`);
    if (!TAG_VALUE.test(value)) problems.push(`tag ${JSON.stringify(key)} has a value clouds reject`);
  }
  if (request.userData !== undefined) {
    const encoded = Buffer.byteLength(Buffer.from(request.userData, "utf8").toString("base64"));
    if (encoded > MAX_USER_DATA_BASE64_BYTES) {
      problems.push(
        `userData (the boot script) is ${encoded} bytes in base64; the limit is ${MAX_USER_DATA_BASE64_BYTES}: shorten the cluster's init scripts (use URLs), storage paths or users`,
      );
    }
  }
  if (problems.length > 0) {
    throw new InvalidRequestError(`launch request is invalid: ${problems.join("; ")}`);
  }
}
