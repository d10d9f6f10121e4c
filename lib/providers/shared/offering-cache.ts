import type { ChargeType } from "../../core/model.js";
import type { Clock } from "../../ports/clock.js";

/** ParallelCluster and Karpenter both hold an offering unavailable for a while after a capacity error. */
export const DEFAULT_UNAVAILABLE_TTL_MS = 600_000;

/**
 * Offerings, (instance type, zone, charge type), that recently answered "no capacity", so the next
 * launches skip them without a cloud call until the TTL passes. The charge type is part of the key, as in
 * Karpenter: a spot pool running dry says nothing about on-demand capacity of the same type and zone. In memory: one per provider instance (a Lambda container
 * keeps it across warm invocations; a cold start simply tries again).
 */
export class UnavailableOfferings {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number = DEFAULT_UNAVAILABLE_TTL_MS,
  ) {}

  markUnavailable(offering: Offering): void {
    this.until.set(key(offering), this.clock.now() + this.ttlMs);
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
