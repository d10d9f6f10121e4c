import { setTimeout as sleep } from "node:timers/promises";

/**
 * Polls `probe` every `everyMs` until it answers something other than undefined, and returns that; throws
 * "timed out waiting for <what>" after `timeoutMs` (the probe's own errors pass through at once).
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 150_000,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}
