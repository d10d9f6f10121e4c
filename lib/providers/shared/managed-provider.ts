import type { InstanceCatalog, UnavailableOffering } from "../../core/model.js";
import { isSimpleName } from "../../core/names.js";
import { type Clock, systemClock } from "../../ports/clock.js";
import type {
  CandidateFailure,
  CloudInstance,
  CloudProvider,
  LaunchCandidate,
  LaunchRequest,
  LaunchResult,
} from "../../ports/cloud-provider.js";
import { DEFAULT_UNAVAILABLE_TTL_MS } from "../../ports/cloud-provider.js";
import {
  type CloudProviderError,
  InsufficientCapacityError,
  InvalidRequestError,
  isCloudProviderError,
  NotFoundError,
  ServiceUnavailableError,
  ThrottledError,
  UnauthorizedError,
} from "../../ports/errors.js";
import { launchToken } from "../../ports/launch-token.js";
import { CLUSTER_TAG, instanceTags } from "../../ports/tags.js";
import type { CloudApi } from "./cloud-api.js";
import { instanceName } from "./instance-name.js";
import { UnavailableOfferings } from "./offering-cache.js";
import { DEFAULT_RETRY_POLICY, type Random, type RetryPolicy, withRetry } from "./retry.js";
import { validateLaunchRequest } from "./validate-request.js";

export interface ManagedProviderOptions {
  /** @default the wall clock */
  clock?: Clock;
  /** Jitter source. @default Math.random */
  random?: Random;
  /** @default DEFAULT_RETRY_POLICY (5 attempts, 250 ms base, 8 s cap, 30 s in all) */
  retry?: Partial<RetryPolicy>;
  /** How long an offering stays skipped after a capacity error. @default 600000 (10 minutes) */
  unavailableTtlMs?: number;
}

/**
 * The shared behaviour of every adapter, written once: it turns a CloudApi (one cloud's calls) into a
 * CloudProvider (the port's contract, lib/ports/cloud-provider.ts).
 */
export class ManagedProvider implements CloudProvider {
  readonly cloud: string;
  readonly unavailable: UnavailableOfferings;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly policy: RetryPolicy;
  private zoneList: Promise<string[]> | undefined;

  constructor(
    private readonly api: CloudApi,
    options: ManagedProviderOptions = {},
  ) {
    this.cloud = api.cloud;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.unavailable = new UnavailableOfferings(
      this.clock,
      options.unavailableTtlMs ?? DEFAULT_UNAVAILABLE_TTL_MS,
    );
  }

  instanceTypes(): Promise<InstanceCatalog> {
    return this.retrying(() => this.api.instanceTypes());
  }

  /** Asked once and kept: a region's zones change over months, not within a provider's life. */
  zones(): Promise<string[]> {
    if (this.zoneList === undefined) {
      const asked = this.retrying(() => this.api.zones()).then((z) => [...new Set(z)].sort());
      // A failed call is not kept: the next check asks again.
      asked.catch(() => {
        if (this.zoneList === asked) this.zoneList = undefined;
      });
      this.zoneList = asked;
    }
    return this.zoneList.then((z) => [...z]);
  }

  async unavailableOfferings(): Promise<UnavailableOffering[]> {
    return this.unavailable.heldForCapacity();
  }

  async launch(request: LaunchRequest): Promise<LaunchResult> {
    validateLaunchRequest(request);
    const tags = instanceTags(request.clusterId, request.queue, request.tags);
    const instances: CloudInstance[] = [];
    const failures: CandidateFailure[] = [];
    const unreleased: string[] = [];

    for (const [index, candidate] of request.candidates.entries()) {
      const wanted = request.count - instances.length;
      if (wanted === 0) break;

      const heldUntil = this.unavailable.unavailableUntil(candidate);
      if (heldUntil !== undefined) {
        const reason = this.unavailable.reason(candidate);
        const until = new Date(heldUntil).toISOString();
        // Skipped with the kind of the error that put it on hold, so callers count it the same way.
        const error =
          reason !== undefined && isCloudProviderError(reason)
            ? heldError(reason, `${describe(candidate)} is held back until ${until} after: ${reason.message}`)
            : new InsufficientCapacityError(
                `${describe(candidate)} is held unavailable until ${until} after a capacity error`,
              );
        failures.push({ index, candidate, error, skipped: true });
        continue;
      }

      let started: CloudInstance[];
      try {
        started = await this.retrying(() =>
          this.api.runInstances({
            candidate,
            imageId: candidate.imageId ?? request.imageId,
            minCount: request.allOrNothing ? wanted : 1,
            maxCount: wanted,
            allOrNothing: request.allOrNothing,
            clientToken: launchToken(request.clusterId, request.round, candidate),
            tags,
            namePrefix: instanceName(request.clusterId, request.queue, this.api.maxNameLength),
            ...(request.userData === undefined ? {} : { userData: request.userData }),
          }),
        );
      } catch (caught) {
        const error = asCloudError(caught);
        if (error instanceof InsufficientCapacityError) this.unavailable.markUnavailable(candidate);
        // Any other failure but throttling (the account's, not the offering's) backs off per offering.
        else if (!(error instanceof ThrottledError)) this.unavailable.markFailed(candidate, error);
        failures.push({ index, candidate, error, skipped: false });
        // The same credentials fail the same way on every candidate: stop instead of hammering the API.
        if (error instanceof UnauthorizedError) break;
        continue;
      }

      if (started.length > 0) this.unavailable.markSucceeded(candidate);
      // Never trust the count: a cloud without MinCount, an asynchronous launch failure, or a token that
      // found an earlier, different-sized call can all hand back more or fewer than asked.
      const fresh = started.filter((s) => !instances.some((i) => i.id === s.id));
      // Recorded before anything is released: a release that fails then leaves a record, not an orphan.
      if (request.onStarted !== undefined && fresh.length > 0) await request.onStarted(fresh, index);
      if (request.allOrNothing && fresh.length < wanted) {
        unreleased.push(...(await this.release(fresh.map((i) => i.id))));
        this.unavailable.markUnavailable(candidate);
        const error = new InsufficientCapacityError(
          `${describe(candidate)} started ${fresh.length} of ${wanted} for an all-or-nothing launch; released them`,
        );
        failures.push({ index, candidate, error, skipped: false });
        continue;
      }
      const kept = fresh.slice(0, wanted);
      const surplus = fresh.slice(wanted).map((i) => i.id);
      if (surplus.length > 0) unreleased.push(...(await this.release(surplus)));
      instances.push(...kept);
      if (kept.length < wanted) {
        const error = new InsufficientCapacityError(
          `${describe(candidate)} started ${kept.length} of ${wanted}`,
        );
        failures.push({ index, candidate, error, skipped: false });
      }
    }
    return { instances, failures, unreleased };
  }

  async terminate(instanceIds: readonly string[]): Promise<void> {
    const ids = [...new Set(instanceIds)];
    for (let start = 0; start < ids.length; start += this.api.maxIdsPerCall) {
      await this.terminateBatch(ids.slice(start, start + this.api.maxIdsPerCall));
    }
  }

  async list(clusterId: string): Promise<CloudInstance[]> {
    if (!isSimpleName(clusterId)) {
      throw new InvalidRequestError(`clusterId ${JSON.stringify(clusterId)} is not a simple name`);
    }
    const found = await this.retrying(() => this.api.listInstancesByTag(CLUSTER_TAG, clusterId));
    // Belt and braces: a filter a cloud ignored must not hand another cluster's instances to the reaper.
    return found.filter((i) => i.tags[CLUSTER_TAG] === clusterId && i.state !== "TERMINATED");
  }

  async describe(instanceIds: readonly string[]): Promise<CloudInstance[]> {
    const ids = [...new Set(instanceIds)];
    const out: CloudInstance[] = [];
    for (let start = 0; start < ids.length; start += this.api.maxIdsPerCall) {
      const batch = ids.slice(start, start + this.api.maxIdsPerCall);
      out.push(...(await this.retrying(() => this.api.describeInstances(batch))));
    }
    return out;
  }

  async consoleOutput(instanceId: string, maxLines = 50): Promise<string | undefined> {
    return this.api.consoleOutput?.(instanceId, maxLines);
  }

  /** A batch fails as a whole when one id is unknown; then each id goes alone and "not found" is success. */
  private async terminateBatch(ids: readonly string[]): Promise<void> {
    try {
      await this.retrying(() => this.api.terminateInstances(ids));
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (ids.length === 1) return;
      for (const id of ids) await this.terminateBatch([id]);
    }
  }

  /** Terminates instances this launch must not keep; returns the ids it could not terminate. */
  private async release(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    try {
      await this.terminate(ids);
      return [];
    } catch {
      return [...ids];
    }
  }

  private retrying<T>(operation: () => Promise<T>): Promise<T> {
    return withRetry(operation, { clock: this.clock, random: this.random, policy: this.policy });
  }
}

function describe(candidate: LaunchCandidate): string {
  return `${candidate.instanceType} in ${candidate.zone} (${candidate.chargeType})`;
}

/** A new error of the same class as `reason` (same kind, same cause) with `message`. */
function heldError(reason: CloudProviderError, message: string): CloudProviderError {
  const Kind = reason.constructor as new (m: string, c?: CloudProviderError["cause"]) => CloudProviderError;
  return new Kind(message, reason.cause);
}

/** An adapter bug or a network failure outside the SDK's mapping still reaches the caller typed. */
function asCloudError(error: unknown): CloudProviderError {
  if (isCloudProviderError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ServiceUnavailableError(`unexpected failure: ${message}`, { code: "Unexpected", message });
}
