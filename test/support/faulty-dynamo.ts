/**
 * DynamoDB faults at the client boundary, for tests against dynalite (test/support/dynalite.ts).
 *
 * The faults are injected by a middleware placed INSIDE the SDK's retry loop (the `deserialize` step,
 * below the `retryMiddleware` of `finalizeRequest`), so every fault meets the SDK's own retry strategy
 * exactly as a real one would: the SDK classifies it, waits, and re-sends the same request (same
 * serialized body, so the same condition and the same write ids).
 *
 *   const db = await startDynalite();
 *   const { tables } = await freshStore(db);
 *   const faulty = faultyDynamo(db, { seed: 7, throttleRate: 0.2, lostResponseRate: 0.05, retryDelayMs: 1 });
 *   const store = new DynamoStateStore({ client: faulty.client, tables });
 *   faulty.loseNext(1, ["PutItem"]);            // the next PutItem is applied, its answer lost
 *   faulty.set({ throttleRate: 0 });            // end a throttling period
 *   faulty.stats                                // { attempts, throttled, lost, byOperation }
 *   faulty.close();
 *
 * faultyDynamo(db, options?) → FaultyDynamo
 *   A new DynamoDBClient on db.endpoint (so on the same tables as db.client) with the faults installed.
 *   Its retry settings are the store's production ones (storeClientConfig: 6 attempts, standard mode)
 *   unless `maxAttempts` is given. `retryDelayMs` replaces only the SDK's backoff delay (which is
 *   1 s base for throttling) by a fixed delay, to keep suites fast; which errors are retried stays the
 *   SDK's decision (throttling and transient errors, from its own error classification).
 * injectDynamoFaults(client, options?) → DynamoFaults
 *   The same faults on a client you built (e.g. with production settings); same controller.
 *
 * Options (all optional; rates are probabilities in [0, 1] per request attempt, retries included):
 *   seed              PRNG seed (default 1): the same seed and the same order of requests give the
 *                     same faults, so a failing run can be replayed.
 *   throttleRate      the attempt never reaches the table; the SDK gets a throttling error (HTTP 400):
 *                     ProvisionedThroughputExceededException or ThrottlingException, picked by the PRNG
 *                     among `throttleErrors` (default both).
 *   lostResponseRate  the attempt reaches the table and is applied; its answer is dropped and the SDK
 *                     gets a network error (code ECONNRESET), which it retries.
 *   operations        the DynamoDB operations the rates apply to, e.g. ["PutItem", "UpdateItem",
 *                     "DeleteItem"], or "all" (the default: reads included).
 * Controller:
 *   client            the DynamoDBClient to hand to the code under test.
 *   set(options)      changes rates, error names or operations from now on ("throttling for a while").
 *   loseNext(n, match?) the next n attempts that match are applied and their answers lost, whatever
 *                     the rates say (deterministic single faults). `match` is a list of operations
 *                     (["PutItem"]) or a predicate on {operation, table}; default: every attempt.
 *                     Scheduled faults are consumed in the order they were scheduled.
 *   throttleNext(n, match?)  the next n attempts that match are throttled.
 *   stats             counters: attempts, throttled, lost, and per operation {attempts, throttled, lost}.
 *   log               one entry per attempt: {operation, table, fault: "none" | "throttled" | "lost"}.
 *   close()           destroys the client (only for clients faultyDynamo made).
 */
import {
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  ThrottlingException,
} from "@aws-sdk/client-dynamodb";
import { storeClientConfig } from "../../lib/state/dynamo-store.js";
import type { TestDynamo } from "./dynalite.js";

export type ThrottleErrorName = "ProvisionedThroughputExceededException" | "ThrottlingException";

export interface DynamoFaultOptions {
  seed?: number;
  throttleRate?: number;
  throttleErrors?: ThrottleErrorName[];
  lostResponseRate?: number;
  operations?: string[] | "all";
}

export interface FaultyDynamoOptions extends DynamoFaultOptions {
  /** Attempts per call, first one included. @default storeClientConfig's (6) */
  maxAttempts?: number;
  /** A fixed delay between attempts instead of the SDK's backoff. @default the SDK's backoff */
  retryDelayMs?: number;
}

export type FaultKind = "none" | "throttled" | "lost";

export interface FaultLogEntry {
  operation: string;
  table: string | undefined;
  fault: FaultKind;
}

export interface FaultStats {
  attempts: number;
  throttled: number;
  lost: number;
  byOperation: Map<string, { attempts: number; throttled: number; lost: number }>;
}

/** Which attempts a scheduled fault applies to: operation names, or a predicate. */
export type FaultMatch = string[] | ((attempt: { operation: string; table: string | undefined }) => boolean);

export interface DynamoFaults {
  client: DynamoDBClient;
  set(options: Omit<DynamoFaultOptions, "seed">): void;
  loseNext(count?: number, match?: FaultMatch): void;
  throttleNext(count?: number, match?: FaultMatch): void;
  readonly stats: FaultStats;
  readonly log: readonly FaultLogEntry[];
}

export interface FaultyDynamo extends DynamoFaults {
  close(): void;
}

/** A client on the dynalite endpoint with faults injected; see the top of this file. */
export function faultyDynamo(db: TestDynamo, options: FaultyDynamoOptions = {}): FaultyDynamo {
  const production = storeClientConfig("us-east-1");
  const maxAttempts = options.maxAttempts ?? (production.maxAttempts as number);
  const client = new DynamoDBClient({
    ...production,
    endpoint: db.endpoint,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts,
    ...(options.retryDelayMs === undefined
      ? {}
      : { retryStrategy: fixedDelayRetry(maxAttempts, options.retryDelayMs) }),
  });
  const faults = injectDynamoFaults(client, options);
  return { ...faults, stats: faults.stats, log: faults.log, close: () => client.destroy() };
}

/** Installs the fault middleware on `client` (and so on every document client built from it). */
export function injectDynamoFaults(client: DynamoDBClient, options: DynamoFaultOptions = {}): DynamoFaults {
  const random = mulberry32(options.seed ?? 1);
  let throttleRate = rate(options.throttleRate, "throttleRate");
  let lostResponseRate = rate(options.lostResponseRate, "lostResponseRate");
  let throttleErrors = names(options.throttleErrors);
  let operations: Set<string> | undefined = opSet(options.operations);
  const scheduled: {
    fault: Exclude<FaultKind, "none">;
    left: number;
    matches: (attempt: { operation: string; table: string | undefined }) => boolean;
  }[] = [];
  const schedule = (fault: Exclude<FaultKind, "none">, count: number, match: FaultMatch | undefined) => {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer`);
    const matches =
      match === undefined
        ? () => true
        : typeof match === "function"
          ? match
          : (a: { operation: string }) => match.includes(a.operation);
    scheduled.push({ fault, left: count, matches });
  };
  const stats: FaultStats = { attempts: 0, throttled: 0, lost: 0, byOperation: new Map() };
  const log: FaultLogEntry[] = [];

  const pick = (operation: string, table: string | undefined): FaultKind => {
    const due = scheduled.find((s) => s.left > 0 && s.matches({ operation, table }));
    if (due !== undefined) {
      due.left -= 1;
      return due.fault;
    }
    if (operations !== undefined && !operations.has(operation)) return "none";
    // Always draw both numbers, so the sequence of faults depends only on the seed and request order.
    const a = random();
    const b = random();
    if (a < throttleRate) return "throttled";
    if (b < lostResponseRate) return "lost";
    return "none";
  };

  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? "unknown").replace(/Command$/, "");
      const input = (args as { input?: { TableName?: unknown } }).input;
      const table = typeof input?.TableName === "string" ? input.TableName : undefined;
      const fault = pick(operation, table);
      stats.attempts += 1;
      const per = stats.byOperation.get(operation) ?? { attempts: 0, throttled: 0, lost: 0 };
      stats.byOperation.set(operation, per);
      per.attempts += 1;
      log.push({ operation, table, fault });
      if (fault === "throttled") {
        stats.throttled += 1;
        per.throttled += 1;
        throw throttleError(
          throttleErrors[Math.floor(random() * throttleErrors.length)] as ThrottleErrorName,
        );
      }
      if (fault === "lost") {
        stats.lost += 1;
        per.lost += 1;
        // The request is applied by the table; what it answered (success or a failed condition) is lost.
        await next(args).catch(() => undefined);
        throw Object.assign(new Error(`socket hang up (faulty-dynamo lost the answer to ${operation})`), {
          code: "ECONNRESET",
        });
      }
      return next(args);
    },
    { step: "deserialize", priority: "high", name: "faultyDynamo", override: true },
  );

  return {
    client,
    set(change) {
      if (change.throttleRate !== undefined) throttleRate = rate(change.throttleRate, "throttleRate");
      if (change.lostResponseRate !== undefined)
        lostResponseRate = rate(change.lostResponseRate, "lostResponseRate");
      if (change.throttleErrors !== undefined) throttleErrors = names(change.throttleErrors);
      if (change.operations !== undefined) operations = opSet(change.operations);
    },
    loseNext(count = 1, match) {
      schedule("lost", count, match);
    },
    throttleNext(count = 1, match) {
      schedule("throttled", count, match);
    },
    stats,
    log,
  };
}

function throttleError(name: ThrottleErrorName): Error {
  const $metadata = { httpStatusCode: 400, attempts: 1 };
  const message = `faulty-dynamo: ${name}`;
  return name === "ThrottlingException"
    ? new ThrottlingException({ message, $metadata })
    : new ProvisionedThroughputExceededException({ message, $metadata });
}

/**
 * The SDK's retry contract (RetryStrategyV2) with a fixed delay: retries what the SDK classified as
 * THROTTLING or TRANSIENT (the standard mode's rule), up to `maxAttempts` attempts in all.
 */
function fixedDelayRetry(maxAttempts: number, delayMs: number) {
  const token = (count: number) => ({
    getRetryCount: () => count,
    getRetryDelay: () => (count === 0 ? 0 : delayMs),
    getRetryCost: () => undefined,
  });
  return {
    mode: "standard",
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (previous: { getRetryCount(): number }, info: { errorType: string }) => {
      const retryable = info.errorType === "THROTTLING" || info.errorType === "TRANSIENT";
      if (!retryable || previous.getRetryCount() + 1 >= maxAttempts) throw new Error("no retry");
      return token(previous.getRetryCount() + 1);
    },
    recordSuccess: () => undefined,
  };
}

/** A small seeded PRNG (mulberry32): floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rate(value: number | undefined, field: string): number {
  const v = value ?? 0;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${field} must be in [0, 1], got ${value}`);
  return v;
}

function names(value: ThrottleErrorName[] | undefined): ThrottleErrorName[] {
  const v = value ?? ["ProvisionedThroughputExceededException", "ThrottlingException"];
  if (v.length === 0) throw new RangeError("throttleErrors must name at least one error");
  return v;
}

function opSet(value: string[] | "all" | undefined): Set<string> | undefined {
  return value === undefined || value === "all" ? undefined : new Set(value);
}
