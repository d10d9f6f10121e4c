import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  InvalidRequestError,
  ServiceUnavailableError,
  ThrottledError,
  UnauthorizedError,
} from "../../../lib/ports/errors.js";
import { launchToken } from "../../../lib/ports/launch-token.js";
import { FakeClock, FakeProvider } from "../../../lib/providers/fake/index.js";
import { UnavailableOfferings } from "../../../lib/providers/shared/offering-cache.js";
import { backoffDelay, DEFAULT_RETRY_POLICY, withRetry } from "../../../lib/providers/shared/retry.js";

const candidate = { instanceType: "c5.xlarge", zone: "us-east-1a", chargeType: "ON_DEMAND" as const };

describe("launch tokens", () => {
  it("are deterministic, at most 64 ASCII characters, and differ by cluster, round and candidate", () => {
    // Act
    const token = launchToken("hpc1", "cycle-1.0", candidate);

    // Assess
    expect(launchToken("hpc1", "cycle-1.0", { ...candidate })).toBe(token);
    expect(token).toMatch(/^ns1-[0-9a-f]{48}$/);
    expect(launchToken("hpc2", "cycle-1.0", candidate)).not.toBe(token);
    expect(launchToken("hpc1", "cycle-1.1", candidate)).not.toBe(token);
    expect(launchToken("hpc1", "cycle-1.0", { ...candidate, zone: "us-east-1b" })).not.toBe(token);
    expect(launchToken("hpc1", "cycle-1.0", { ...candidate, chargeType: "SPOT" })).not.toBe(token);
  });
});

describe("backoff", () => {
  it("draws each delay uniformly below min(cap, base * 2^n) (full jitter)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (n, r) => {
          const delay = backoffDelay(n, DEFAULT_RETRY_POLICY, () => r);
          const window = Math.min(DEFAULT_RETRY_POLICY.maxDelayMs, DEFAULT_RETRY_POLICY.baseDelayMs * 2 ** n);
          return delay >= 0 && delay < window;
        },
      ),
    );
  });

  it("retries throttling until the attempt budget is spent, then rethrows the last error", async () => {
    // Prepare
    const clock = new FakeClock();
    let calls = 0;

    // Act
    const attempt = withRetry(
      async () => {
        calls++;
        throw new ThrottledError("slow down");
      },
      { clock, random: () => 0.999, policy: DEFAULT_RETRY_POLICY },
    );

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ThrottledError);
    expect(calls).toBe(DEFAULT_RETRY_POLICY.maxAttempts);
    expect(clock.sleeps).toEqual([249, 499, 999, 1998]);
  });

  it("stops before a retry would end past the time budget", async () => {
    // Prepare
    const clock = new FakeClock();
    let calls = 0;
    const policy = { maxAttempts: 50, baseDelayMs: 1000, maxDelayMs: 60_000, maxElapsedMs: 5_000 };

    // Act
    const attempt = withRetry(
      async () => {
        calls++;
        throw new ServiceUnavailableError("5xx");
      },
      { clock, random: () => 0.999, policy },
    );

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5_000);
    expect(calls).toBe(3);
  });

  it("does not retry an invalid request", async () => {
    // Prepare
    const clock = new FakeClock();
    let calls = 0;

    // Act
    const attempt = withRetry(
      async () => {
        calls++;
        throw new InvalidRequestError("bad");
      },
      { clock, random: () => 0.5, policy: DEFAULT_RETRY_POLICY },
    );

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(InvalidRequestError);
    expect(calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });
});

describe("unavailable offerings", () => {
  it("holds an offering for the TTL, per charge type, then lets it be tried again", () => {
    // Prepare
    const clock = new FakeClock();
    const cache = new UnavailableOfferings(clock, 600_000);

    // Act
    cache.markUnavailable(candidate);

    // Assess
    expect(cache.isUnavailable(candidate)).toBe(true);
    expect(cache.isUnavailable({ ...candidate, chargeType: "SPOT" })).toBe(false);
    clock.advance(599_999);
    expect(cache.isUnavailable(candidate)).toBe(true);
    clock.advance(1);
    expect(cache.isUnavailable(candidate)).toBe(false);
  });

  it("lists the offerings held for capacity, for the planner, but not those backing off after other failures", () => {
    // Prepare
    const clock = new FakeClock();
    const cache = new UnavailableOfferings(clock, 600_000);
    const misconfigured = { ...candidate, instanceType: "c5.2xlarge" };

    // Act
    cache.markUnavailable(candidate);
    cache.markFailed(misconfigured, new InvalidRequestError("no such image"));

    // Assess
    expect(cache.heldForCapacity()).toEqual([{ ...candidate, until: clock.now() + 600_000 }]);
    expect(cache.isUnavailable(misconfigured)).toBe(true);
    clock.advance(600_000);
    expect(cache.heldForCapacity()).toEqual([]);
  });
});

describe("a provider's zones", () => {
  it("are asked again after a failed listing (a failure is not kept), then kept", async () => {
    // Prepare
    const provider = new FakeProvider({ clock: new FakeClock() });
    provider.fakeCloud.failNext("zones", "unauthorized");

    // Act
    const failed = await provider.zones().catch((error: unknown) => error);
    const first = await provider.zones();
    const second = await provider.zones();

    // Assess
    expect(failed).toBeInstanceOf(UnauthorizedError);
    expect(first).toEqual(["us-east-1a", "us-east-1b", "us-east-1c"]);
    expect(second).toEqual(first);
    expect(provider.fakeCloud.callsOf("zones")).toHaveLength(2);
  });
});
