import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/**
 * How long an instance takes from launch to a node Slurm can use: a fixed number of seconds, or a
 * distribution drawn from a seeded PRNG so that the same seed gives the same replay.
 *   "180"              always 180 s
 *   "uniform:120:300"  uniform between 120 and 300 s
 *   "normal:180:30"    normal with mean 180 s and standard deviation 30 s, cut at 0
 */
export type BootTimeSpec =
  | { kind: "fixed"; seconds: number }
  | { kind: "uniform"; minSeconds: number; maxSeconds: number }
  | { kind: "normal"; meanSeconds: number; sdSeconds: number };

/** Parses a --boot-seconds value; returns a message (for a UsageError) when it is not one of the forms. */
export function parseBootTime(text: string): BootTimeSpec | string {
  const hint = 'use seconds ("180"), "uniform:MIN:MAX" or "normal:MEAN:SD"';
  const parts = text.trim().split(":");
  const nums = parts.slice(1).map(Number);
  if (parts.length === 1) {
    const seconds = Number(parts[0]);
    return Number.isFinite(seconds) && seconds >= 0 && parts[0] !== ""
      ? { kind: "fixed", seconds }
      : `invalid boot time "${text}": ${hint}`;
  }
  if (nums.length !== 2 || nums.some((n) => !Number.isFinite(n) || n < 0))
    return `invalid boot time "${text}": ${hint}`;
  const [a, b] = nums as [number, number];
  if (parts[0] === "uniform") {
    return a <= b
      ? { kind: "uniform", minSeconds: a, maxSeconds: b }
      : `invalid boot time "${text}": MIN must not exceed MAX`;
  }
  if (parts[0] === "normal") return { kind: "normal", meanSeconds: a, sdSeconds: b };
  return `invalid boot time "${text}": ${hint}`;
}

export function describeBootTime(spec: BootTimeSpec): string {
  if (spec.kind === "fixed") return `${spec.seconds}`;
  if (spec.kind === "uniform") return `uniform:${spec.minSeconds}:${spec.maxSeconds}`;
  return `normal:${spec.meanSeconds}:${spec.sdSeconds}`;
}

/**
 * A boot-time sampler. Each call draws the next boot time in ms; a fixed spec draws nothing.
 * Two samplers made with the same spec and seed give the same sequence.
 */
export function bootSampler(spec: BootTimeSpec, seed: number): () => number {
  if (spec.kind === "fixed") {
    const ms = Math.round(spec.seconds * 1000);
    return () => ms;
  }
  const rng = xoroshiro128plus(seed);
  if (spec.kind === "uniform") {
    const span = spec.maxSeconds - spec.minSeconds;
    return () => Math.round((spec.minSeconds + uniformFloat64(rng) * span) * 1000);
  }
  return () => {
    // Box–Muller; 1 - u keeps the logarithm finite.
    const u = 1 - uniformFloat64(rng);
    const v = uniformFloat64(rng);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return Math.max(0, Math.round((spec.meanSeconds + z * spec.sdSeconds) * 1000));
  };
}
