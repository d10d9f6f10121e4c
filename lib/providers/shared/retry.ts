import type { Clock } from "../../ports/clock.js";
import { isCloudProviderError } from "../../ports/errors.js";

export interface RetryPolicy {
  /** Calls in all, the first one included. @default 5 */
  maxAttempts: number;
  /** Upper bound of the first backoff window. @default 250 */
  baseDelayMs: number;
  /** No single backoff window grows beyond this. @default 8000 */
  maxDelayMs: number;
  /** No retry is started that would end after this much time since the first call. @default 30000 */
  maxElapsedMs: number;
}

/**
 * Sized for a scale cycle inside a Lambda: EC2's RunInstances bucket refills about 2 tokens a second, so
 * windows of 0.25, 0.5, 1, 2 s (full jitter) spread a burst of throttled callers over a few seconds, and
 * the 30 s bound leaves the cycle time to try the next candidate and record what it did.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxElapsedMs: 30_000,
};

/** A number in [0, 1); injectable so tests pin the jitter. */
export type Random = () => number;

/** Retries only what the cloud says may succeed later: throttling and cloud-side (5xx) failures. */
export function isRetryable(error: unknown): boolean {
  return isCloudProviderError(error) && error.retryable;
}

/** Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, min(cap, base·2^n)). */
export function backoffDelay(retry: number, policy: RetryPolicy, random: Random): number {
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.floor(random() * window);
}

/**
 * Calls `operation` until it succeeds, fails with a non-retryable error, or the attempt or time budget is
 * spent; then rethrows the last error unchanged. Waits on `clock`, so tests never really sleep.
 */
export async function withRetry<T>(
  operation: () => Promise<T>,
  options: { clock: Clock; random: Random; policy: RetryPolicy },
): Promise<T> {
  const { clock, random, policy } = options;
  const startedAt = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isRetryable(error) || attempt >= policy.maxAttempts) throw error;
      const delay = backoffDelay(attempt - 1, policy, random);
      if (clock.now() - startedAt + delay > policy.maxElapsedMs) throw error;
      await clock.sleep(delay);
    }
  }
}
