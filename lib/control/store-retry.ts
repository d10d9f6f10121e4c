import type { Clock } from "../ports/clock.js";
import { ConflictError, LeaseLostError, NotFoundInStoreError } from "../ports/state-store.js";

/**
 * Runs a state-store call again when it failed for a reason that may pass (throttling that outlasted the
 * SDK's own retries, a dropped connection): up to `attempts` times, waiting `baseMs`, then 4× as long.
 * A lost condition (ConflictError), a lost lease or a missing record is an answer, not a failure: thrown
 * at once. Used where a failed write would leave an instance untracked (the records of a launch's
 * instances, the reconciler's adoption), not as a general policy: elsewhere the next poll retries.
 */
export async function retryTransient<T>(
  call: () => Promise<T>,
  clock: Clock,
  attempts = 3,
  baseMs = 200,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const answer =
        error instanceof ConflictError ||
        error instanceof LeaseLostError ||
        error instanceof NotFoundInStoreError;
      if (answer || attempt >= attempts) throw error;
      await clock.sleep(baseMs * 4 ** (attempt - 1));
    }
  }
}

/** For writes whose lost condition means another writer already did it (`.catch(ignoreConflict)`). */
export function ignoreConflict(error: unknown): void {
  if (!(error instanceof ConflictError)) throw error;
}
