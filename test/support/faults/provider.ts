import type {
  CandidateFailure,
  CloudInstance,
  CloudProvider,
  LaunchRequest,
  LaunchResult,
} from "../../../lib/ports/cloud-provider.js";
import {
  type CloudErrorKind,
  type CloudProviderError,
  cloudError,
  InsufficientCapacityError,
  ServiceUnavailableError,
  ThrottledError,
} from "../../../lib/ports/errors.js";
import type { FaultBook, When } from "./rules.js";

/**
 * Faults at the CloudProvider port, as a real adapter would surface them after its own retries:
 *
 * - `throttle`: the API rate limit for as long as the rule holds. launch resolves with every candidate
 *   failed ThrottledError and nothing started; the other methods throw ThrottledError. `costMs` is the
 *   time the adapter spent backing off first (clock.sleep), 0 by default.
 * - `error`: the same with another kind (ServiceUnavailable, QuotaExceeded, Unauthorized ...).
 * - `capacityButLast`: launch: every candidate but the last has no capacity; the last one starts them.
 * - `partial`: launch: the cloud starts only `fraction` (default ½, rounded down) of the count. Best-effort:
 *   those start and every candidate reports the shortfall. All-or-nothing: the short set could not be
 *   released (terminate failed): it runs, listed in `unreleased`, and the launch reports nothing started.
 * - `crashAfterLaunch`: launch happens, then the caller dies (a plain Error, as a Lambda timing out):
 *   nothing after the call runs, so the launch is never recorded.
 * - `lost`: the call takes effect in the cloud, then its answer is lost: launch and terminate throw
 *   ServiceUnavailableError after the instances started or terminated; list and describe just throw.
 * - `listShort` / `listEmpty` / `listPaged`: list misses one live compute instance (seeded pick), answers empty,
 *   or stops after its first page of `pageSize` (default 2) instances, sorted by id.
 * - `skew`: the cloud's clock is `skewMs` off ours: list and describe report launchedAt shifted by it.
 * - `slow`: the call takes `ms` of clock time before it is made.
 * - `interpose`: something else happens right before the call (`run`, e.g. the cluster's deletion or a
 *   reconciler run): a race placed at its worst moment, deterministically.
 */
export type ProviderFault = When &
  (
    | { kind: "throttle"; costMs?: number }
    | { kind: "error"; error: CloudErrorKind; costMs?: number }
    | { kind: "capacityButLast" }
    | { kind: "partial"; fraction?: number }
    | { kind: "crashAfterLaunch" }
    | { kind: "lost" }
    | { kind: "listShort" }
    | { kind: "listEmpty" }
    | { kind: "listPaged"; pageSize?: number }
    | { kind: "skew"; skewMs: number }
    | { kind: "slow"; ms: number }
    | { kind: "interpose"; run: () => Promise<unknown> }
  );

const ALL = ["launch", "terminate", "list", "describe", "instanceTypes"];

/** The creation workflow's tag on the master (lib/control/lifecycle/create-tasks.ts). */
const ROLE_TAG = "nowscale-role";

/** The methods each kind applies to when its rule names none. */
export function providerFaultMethods(kind: ProviderFault["kind"]): readonly string[] {
  switch (kind) {
    case "capacityButLast":
    case "partial":
    case "crashAfterLaunch":
    case "interpose":
      return ["launch"];
    case "lost":
      return ["launch", "terminate"];
    case "listShort":
    case "listEmpty":
    case "listPaged":
      return ["list"];
    case "skew":
      return ["list", "describe"];
    default:
      return ALL;
  }
}

/** Thrown by `crashAfterLaunch`: not a CloudProviderError, so the control plane treats it as a crash. */
export class InjectedCrash extends Error {
  override readonly name = "InjectedCrash";
}

/**
 * `inner` with the book's provider faults. Methods the book has no rule for pass through unchanged,
 * including port methods added later (the decorator is a Proxy).
 */
export function faultyProvider(
  inner: CloudProvider,
  book: FaultBook<ProviderFault>,
  deps: { sleep: (ms: number) => Promise<void>; pick: <T>(items: readonly T[]) => T | undefined },
): CloudProvider {
  const handlers: Partial<Record<string, (...args: never[]) => Promise<unknown>>> = {
    launch: async (request: LaunchRequest) => {
      const fault = book.match("launch");
      if (fault === undefined) return inner.launch(request);
      switch (fault.kind) {
        case "interpose":
          await fault.run();
          return inner.launch(request);
        case "slow":
          await deps.sleep(fault.ms);
          return inner.launch(request);
        case "throttle":
        case "error": {
          await deps.sleep(fault.costMs ?? 0);
          const error =
            fault.kind === "throttle"
              ? new ThrottledError("Request limit exceeded (injected)", {
                  code: "RequestLimitExceeded",
                  message: "",
                })
              : cloudError(fault.error, `${fault.error} (injected)`, { code: fault.error, message: "" });
          return { instances: [], failures: failAll(request, () => error), unreleased: [] };
        }
        case "capacityButLast":
          return capacityButLast(inner, request);
        case "partial":
          return partial(inner, request, fault.fraction ?? 0.5);
        case "crashAfterLaunch":
          await inner.launch(request);
          throw new InjectedCrash("the caller died between launch and record (injected)");
        case "lost":
          await inner.launch(request);
          throw new ServiceUnavailableError("the launch answer was lost (injected)", {
            code: "RequestTimeout",
            message: "",
          });
        default:
          return inner.launch(request);
      }
    },
    terminate: async (ids: readonly string[]) => {
      const fault = book.match("terminate");
      if (fault === undefined) return inner.terminate(ids);
      if (fault.kind === "interpose") {
        await fault.run();
        return inner.terminate(ids);
      }
      if (fault.kind === "slow") {
        await deps.sleep(fault.ms);
        return inner.terminate(ids);
      }
      if (fault.kind === "lost") {
        await inner.terminate(ids);
        throw new ServiceUnavailableError("the terminate answer was lost (injected)", {
          code: "RequestTimeout",
          message: "",
        });
      }
      return throwIfError(fault, deps, () => inner.terminate(ids));
    },
    list: async (clusterId: string) => {
      const fault = book.match("list");
      if (fault === undefined) return inner.list(clusterId);
      switch (fault.kind) {
        case "interpose":
          await fault.run();
          return inner.list(clusterId);
        case "listEmpty":
          return [];
        case "listShort": {
          const found = await inner.list(clusterId);
          // A compute node goes missing (a missing master would change nothing: nobody reaps it).
          const computes = found.filter((i) => i.tags[ROLE_TAG] === undefined);
          const dropped = deps.pick(computes.length > 0 ? computes : found);
          return found.filter((i) => i !== dropped);
        }
        case "listPaged": {
          const found = await inner.list(clusterId);
          return [...found].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, fault.pageSize ?? 2);
        }
        case "skew":
          return skewed(await inner.list(clusterId), fault.skewMs);
        case "slow":
          await deps.sleep(fault.ms);
          return inner.list(clusterId);
        case "lost":
          throw new ServiceUnavailableError("the list answer was lost (injected)");
        default:
          return throwIfError(fault, deps, () => inner.list(clusterId));
      }
    },
    describe: async (ids: readonly string[]) => {
      const fault = book.match("describe");
      if (fault === undefined) return inner.describe(ids);
      if (fault.kind === "skew") return skewed(await inner.describe(ids), fault.skewMs);
      if (fault.kind === "slow") {
        await deps.sleep(fault.ms);
        return inner.describe(ids);
      }
      return throwIfError(fault, deps, () => inner.describe(ids));
    },
    instanceTypes: async () => {
      const fault = book.match("instanceTypes");
      if (fault === undefined) return inner.instanceTypes();
      return throwIfError(fault, deps, () => inner.instanceTypes());
    },
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const handler = typeof prop === "string" ? handlers[prop] : undefined;
      if (handler !== undefined) return handler;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** throttle / error / slow for a method whose answer is a plain value; other kinds pass through. */
async function throwIfError<T>(
  fault: ProviderFault,
  deps: { sleep: (ms: number) => Promise<void> },
  call: () => Promise<T>,
): Promise<T> {
  if (fault.kind === "slow") {
    await deps.sleep(fault.ms);
    return call();
  }
  if (fault.kind === "throttle") {
    await deps.sleep(fault.costMs ?? 0);
    throw new ThrottledError("Request limit exceeded (injected)", {
      code: "RequestLimitExceeded",
      message: "",
    });
  }
  if (fault.kind === "error") {
    await deps.sleep(fault.costMs ?? 0);
    throw cloudError(fault.error, `${fault.error} (injected)`, { code: fault.error, message: "" });
  }
  if (fault.kind === "lost") throw new ServiceUnavailableError("the answer was lost (injected)");
  return call();
}

function failAll(request: LaunchRequest, error: (index: number) => CloudProviderError): CandidateFailure[] {
  return request.candidates.map((candidate, index) => ({
    index,
    candidate,
    error: error(index),
    skipped: false,
  }));
}

async function capacityButLast(inner: CloudProvider, request: LaunchRequest): Promise<LaunchResult> {
  const lastIndex = request.candidates.length - 1;
  const last = request.candidates[lastIndex];
  if (lastIndex === 0 || last === undefined) return inner.launch(request);
  const result = await inner.launch({ ...request, candidates: [last] });
  const noCapacity = request.candidates.slice(0, lastIndex).map((candidate, index) => ({
    index,
    candidate,
    error: new InsufficientCapacityError(
      `no capacity for ${candidate.instanceType} in ${candidate.zone} (injected)`,
      { code: "InsufficientInstanceCapacity", message: "" },
    ),
    skipped: false,
  }));
  return {
    instances: result.instances,
    failures: [...noCapacity, ...result.failures.map((f) => ({ ...f, index: lastIndex }))],
    unreleased: result.unreleased,
  };
}

async function partial(
  inner: CloudProvider,
  request: LaunchRequest,
  fraction: number,
): Promise<LaunchResult> {
  const started = Math.floor(request.count * fraction);
  const shortfall = (index: number) =>
    new InsufficientCapacityError(`started ${started} of ${request.count} (injected partial capacity)`, {
      code: "InsufficientInstanceCapacity",
      message: `candidate ${index}`,
    });
  if (started === 0) return { instances: [], failures: failAll(request, shortfall), unreleased: [] };
  if (!request.allOrNothing) {
    const result = await inner.launch({ ...request, count: started });
    return { ...result, failures: [...result.failures, ...failAll(request, shortfall)] };
  }
  // The short set of an all-or-nothing launch, whose release failed: it runs, and only `unreleased` says so.
  const result = await inner.launch({ ...request, count: started, allOrNothing: false });
  return {
    instances: [],
    failures: failAll(request, shortfall),
    unreleased: [...result.instances.map((i) => i.id), ...result.unreleased],
  };
}

function skewed(instances: CloudInstance[], skewMs: number): CloudInstance[] {
  return instances.map((i) => (i.launchedAt === undefined ? i : { ...i, launchedAt: i.launchedAt + skewMs }));
}
