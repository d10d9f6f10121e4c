import type { Clock } from "../../../lib/ports/clock.js";
import { currentActor } from "./context.js";
import type { Rng } from "./rng.js";

/**
 * When a fault rule fires. Every field narrows it; a rule with none fires on every call of its methods.
 * Times are world time in ms after the plan's start (`FaultBook.startedAt`), so a scenario reads as
 * "throttled from minute 2 to minute 12".
 */
export interface When {
  /** Only calls of these port methods ("*": any). @default the methods the fault kind applies to */
  methods?: readonly string[];
  /** From this many ms after the start (included). @default 0 */
  fromMs?: number;
  /** Until this many ms after the start (excluded). @default for ever */
  untilMs?: number;
  /** Let this many matching calls through first. @default 0 */
  after?: number;
  /** Fire at most this many times. @default no limit */
  times?: number;
  /** Fire with this probability on each matching call (seeded). @default 1 */
  p?: number;
  /** Only calls made by this actor (context.ts): "scaler", "reconciler", "api", "workflow". */
  actor?: string;
}

interface Armed<R> {
  rule: R;
  passed: number;
  fired: number;
}

/**
 * The rules of one decorator and their counters. `match` is called once per port call and returns the
 * first rule that fires (or undefined); `injected` counts what fired, by kind, for the figures.
 */
export class FaultBook<R extends When & { kind: string }> {
  private readonly armed: Armed<R>[];
  readonly injected = new Map<string, number>();
  /** While true nothing fires (e.g. while the hostile-input sample runs). */
  suspended = false;

  constructor(
    rules: readonly R[],
    private readonly clock: Clock,
    private readonly rng: Rng,
    readonly startedAt: number,
    /** The methods a kind applies to when the rule names none. */
    private readonly defaults: (kind: R["kind"]) => readonly string[],
  ) {
    this.armed = rules.map((rule) => ({ rule, passed: 0, fired: 0 }));
  }

  /** Adds a rule while the world runs (the fast-check model arms faults between steps). */
  add(rule: R): void {
    this.armed.push({ rule, passed: 0, fired: 0 });
  }

  /** Drops every rule (the model disarms faults between steps). */
  clear(): void {
    this.armed.length = 0;
  }

  /**
   * The first rule that fires for this call of `method`, counted as fired; undefined when none does.
   * `applies` is asked before any counting: a rule that would have nothing to corrupt (no busy node to
   * flap) neither fires nor uses up its `after` and `times`.
   */
  match(method: string, applies: (rule: R) => boolean = () => true): R | undefined {
    if (this.suspended) return undefined;
    const at = this.clock.now() - this.startedAt;
    const actor = currentActor()?.name;
    for (const a of this.armed) {
      const { rule } = a;
      const methods = rule.methods ?? this.defaults(rule.kind);
      if (!methods.includes(method) && !methods.includes("*")) continue;
      if (at < (rule.fromMs ?? 0) || at >= (rule.untilMs ?? Number.POSITIVE_INFINITY)) continue;
      if (rule.actor !== undefined && rule.actor !== actor) continue;
      if (rule.times !== undefined && a.fired >= rule.times) continue;
      if (!applies(rule)) continue;
      if (a.passed < (rule.after ?? 0)) {
        a.passed++;
        continue;
      }
      if (!this.rng.chance(rule.p ?? 1)) continue;
      a.fired++;
      this.injected.set(rule.kind, (this.injected.get(rule.kind) ?? 0) + 1);
      return rule;
    }
    return undefined;
  }
}
