import type { ChargeType } from "../../core/model.js";
import type { Clock } from "../../ports/clock.js";
import { DEFAULT_UNAVAILABLE_TTL_MS } from "../../ports/cloud-provider.js";

/**
 * After any other failure but throttling (an invalid request, a quota, a missing image, a denied call,
 * the cloud's 5xx after the retries), the offering is held back for 30 s, doubling with each failure in
 * a row up to the capacity TTL: a misconfigured offering is not called every poll.
 */
export const FAILURE_BACKOFF_BASE_MS = 30_000;

/**
 * Offerings, (instance type, zone, charge type), that recently answered "no capacity", so the next
 * launches skip them without a cloud call until the TTL passes. The charge type is part of the key, as in
 * Karpenter: a spot pool running dry says nothing about on-demand capacity of the same type and zone. In memory: one per provider instance (a Lambda container
 * keeps it across warm invocations; a cold start simply tries again).
 */
export class UnavailableOfferings {
  private readonly until = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly reasons = new Map<string, Error>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number = DEFAULT_UNAVAILABLE_TTL_MS,
  ) {}

  markUnavailable(offering: Offering, reason?: Error): void {
    this.until.set(key(offering), this.clock.now() + this.ttlMs);
    if (reason === undefined) this.reasons.delete(key(offering));
    else this.reasons.set(key(offering), reason);
  }

  /**
   * A failure other than capacity or throttling: held back FAILURE_BACKOFF_BASE_MS × 2^(n-1) after the
   * n-th failure in a row, at most the TTL. Returns the hold in ms.
   */
  markFailed(offering: Offering, reason: Error): number {
    const k = key(offering);
    const n = (this.failures.get(k) ?? 0) + 1;
    this.failures.set(k, n);
    const hold = Math.min(this.ttlMs, FAILURE_BACKOFF_BASE_MS * 2 ** Math.min(n - 1, 30));
    this.until.set(k, this.clock.now() + hold);
    this.reasons.set(k, reason);
    return hold;
  }

  /** A launch on the offering started instances: its failure streak is over. */
  markSucceeded(offering: Offering): void {
    this.failures.delete(key(offering));
  }

  /** The error that put the offering on hold, when it was not a plain capacity error. */
  reason(offering: Offering): Error | undefined {
    return this.reasons.get(key(offering));
  }

  /** Epoch ms until which the offering is held unavailable, or undefined when it may be tried. */
  unavailableUntil(offering: Offering): number | undefined {
    const k = key(offering);
    const until = this.until.get(k);
    if (until === undefined) return undefined;
    if (this.clock.now() >= until) {
      this.until.delete(k);
      return undefined;
    }
    return until;
  }

  /**
   * The offerings held now after a capacity error (not those backing off after other failures), with
   * the epoch ms each is held until: what the planner steers around (ClusterState.unavailableOfferings).
   */
  heldForCapacity(): (Offering & { until: number })[] {
    const now = this.clock.now();
    const out: (Offering & { until: number })[] = [];
    for (const [k, until] of this.until) {
      if (until <= now || this.reasons.has(k)) continue;
      const [instanceType = "", zone = "", chargeType] = k.split("\n");
      out.push({ instanceType, zone, chargeType: chargeType as ChargeType, until });
    }
    return out;
  }

  isUnavailable(offering: Offering): boolean {
    return this.unavailableUntil(offering) !== undefined;
  }
}

export interface Offering {
  instanceType: string;
  zone: string;
  chargeType: ChargeType;
}

function key(offering: Offering): string {
  return `${offering.instanceType}\n${offering.zone}\n${offering.chargeType}`;
}
