import { describe, expect, it } from "vitest";
import { launchFailedReason } from "../../../lib/control/launch.js";
import type { LaunchRequest } from "../../../lib/ports/cloud-provider.js";
import { InvalidRequestError } from "../../../lib/ports/errors.js";
import { validateLaunchRequest } from "../../../lib/providers/shared/validate-request.js";

/**
 * The LAUNCH_FAILED event's text: a request the provider refused as a whole says why (the validation's
 * own words: user data size and limit), not only its kind.
 */

const REQUEST: LaunchRequest = {
  clusterId: "c1",
  queue: "compute",
  round: "r1",
  count: 1,
  allOrNothing: false,
  imageId: "ami-123",
  candidates: [{ instanceType: "c5.xlarge", zone: "zone-a", chargeType: "ON_DEMAND" }],
};

describe("launchFailedReason", () => {
  it("carries the provider's validation text for an oversized user data: its size and the limit", () => {
    // Prepare: the refusal the provider raises before any cloud call, as launch.ts records it
    let error: unknown;
    try {
      validateLaunchRequest({ ...REQUEST, userData: "x".repeat(13_000) });
    } catch (e) {
      error = e;
    }
    const refused = error as InvalidRequestError;

    // Act
    const reason = launchFailedReason(2, "c5.xlarge", [
      { index: -1, kind: refused.kind, message: refused.message.slice(0, 300) },
    ]);

    // Assess
    expect(refused).toBeInstanceOf(InvalidRequestError);
    expect(reason).toMatch(/^2 × c5\.xlarge: InvalidRequest: launch request is invalid: /);
    expect(reason).toContain("userData (the boot script) is 17336 bytes in base64; the limit is 16384");
    expect(reason).toContain("init scripts (use URLs)");
  });

  it("keeps kinds only for per-candidate failures (their messages name cloud details), and says when nothing started", () => {
    // Act
    const perCandidate = launchFailedReason(1, "c5.xlarge", [
      { index: 0, kind: "InsufficientCapacity", message: "no stock in zone-a" },
      { index: 1, kind: "InsufficientCapacity", message: "no stock in zone-b" },
      { index: 2, kind: "InvalidRequest", message: "bad subnet" },
    ]);
    const nothing = launchFailedReason(1, "c5.xlarge", []);

    // Assess
    expect(perCandidate).toBe("1 × c5.xlarge: InsufficientCapacity, InvalidRequest");
    expect(nothing).toBe("1 × c5.xlarge: nothing started");
  });

  it("stays within 500 characters", () => {
    // Act
    const reason = launchFailedReason(1, "c5.xlarge", [
      { index: -1, kind: "InvalidRequest", message: "m".repeat(900) },
    ]);

    // Assess
    expect(reason).toHaveLength(500);
  });
});
