import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/**
 * The fault suite's only source of randomness: a seeded xoroshiro128+ (pure-rand). Every fault decision,
 * every pick of a node to corrupt and every interleaving of concurrent actors draws from one of these, so
 * the same seed replays the same run. Fork one per consumer (`fork`) so that adding a draw in one place
 * does not shift every other decision.
 */
export class Rng {
  private readonly generator: ReturnType<typeof xoroshiro128plus>;

  constructor(readonly seed: number) {
    this.generator = xoroshiro128plus(seed);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return uniformFloat64(this.generator);
  }

  /** A uniform integer in [from, to], both included. */
  int(from: number, to: number): number {
    return uniformInt(this.generator, from, to);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p >= 1 || (p > 0 && this.next() < p);
  }

  /** One element, or undefined for an empty list. */
  pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[this.int(0, items.length - 1)];
  }

  /** An independent generator for one consumer, derived from this seed and a label. */
  fork(label: string): Rng {
    let h = this.seed | 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x9e3779b1);
    return new Rng(h >>> 0);
  }
}

/** The seed CI uses (CI=true), so that CI's figures compare from one commit to the next. */
export const CI_SEED = 20260101;

/**
 * The run's seed: FAULT_SEED when set (to replay a failure), CI_SEED in CI, otherwise a fresh one each run
 * (local runs explore). Every scenario prints its seed, and a broken promise names the command that
 * replays it (`describeSeed`).
 */
export function faultSeed(): number {
  const fromEnv = process.env.FAULT_SEED;
  if (fromEnv !== undefined && fromEnv !== "") {
    const seed = Number(fromEnv);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`FAULT_SEED must be an integer from 0 to 4294967295, got ${JSON.stringify(fromEnv)}`);
    }
    return seed;
  }
  if (process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false") return CI_SEED;
  return Math.floor(Math.random() * 0x100000000);
}

export function describeSeed(seed: number): string {
  return `seed ${seed} (replay: FAULT_SEED=${seed} npm run test:faults)`;
}
