import type { StateStore } from "../../../lib/ports/state-store.js";
import type { FaultBook, When } from "./rules.js";

/**
 * Faults at the StateStore port, as DynamoDB surfaces them once the SDK's own retries are spent (the
 * store adapter does not map them: they reach the control plane as the SDK's errors):
 *
 * - `throttle`: ProvisionedThroughputExceededException before anything is written (use `p` for a rate,
 *   e.g. 0.05 or 0.2 of all calls);
 * - `error`: an InternalServerError (500) before anything is written;
 * - `lost`: the request reached DynamoDB and a write took effect, then the answer was lost (a socket
 *   timeout): the call throws although the write happened. A read just throws;
 * - `slow`: the call takes `ms` of clock time first.
 *
 * test/support/faulty-dynamo.ts (being written in another worktree) injects the same at the DynamoDB client
 * instead; until it lands these port-level faults stand in for it.
 */
export type StoreFault = When &
  ({ kind: "throttle" } | { kind: "error" } | { kind: "lost" } | { kind: "slow"; ms: number });

/** Methods that only read: a lost answer to them is just an error. Every other method counts as a write. */
const READS = new Set([
  "getCluster",
  "listClusters",
  "listLaunchIntents",
  "listNodes",
  "listEvents",
  "readLease",
]);

/** Store faults apply to every method unless a rule names some. */
export function storeFaultMethods(): readonly string[] {
  return ["*"];
}

export function throttlingError(): Error {
  const error = new Error(
    "The level of configured provisioned throughput for the table was exceeded (injected)",
  );
  error.name = "ProvisionedThroughputExceededException";
  return Object.assign(error, { $metadata: { httpStatusCode: 400 }, $retryable: { throttling: true } });
}

export function internalError(): Error {
  const error = new Error("Internal server error (injected)");
  error.name = "InternalServerError";
  return Object.assign(error, { $metadata: { httpStatusCode: 500 } });
}

export function lostAnswerError(method: string): Error {
  const error = new Error(`socket timed out waiting for the answer to ${method} (injected)`);
  error.name = "TimeoutError";
  return error;
}

/**
 * `inner` with the book's store faults, on every method (a Proxy: a method added to the port later is
 * covered too, and counts as a write unless it is listed in READS).
 */
export function faultyStore(
  inner: StateStore,
  book: FaultBook<StoreFault>,
  deps: { sleep: (ms: number) => Promise<void> },
): StateStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        const fault = book.match(prop);
        if (fault === undefined) return method.apply(target, args);
        switch (fault.kind) {
          case "slow":
            await deps.sleep(fault.ms);
            return method.apply(target, args);
          case "throttle":
            throw throttlingError();
          case "error":
            throw internalError();
          case "lost":
            if (!READS.has(prop)) await method.apply(target, args);
            throw lostAnswerError(prop);
        }
      };
    },
  });
}
