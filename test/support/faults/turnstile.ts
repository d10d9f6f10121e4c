import { AsyncLocalStorage } from "node:async_hooks";
import { asActor, currentActor } from "./context.js";
import type { Rng } from "./rng.js";

interface Gate {
  index: number;
  release: () => void;
}

interface Group {
  /** Per actor: running (may reach a gate any moment) or done. */
  done: boolean[];
  /** Calls waiting for their turn, in arrival order. */
  waiting: Gate[];
  /** A released call that has not settled yet. */
  inFlight: boolean;
}

/**
 * Runs actors "at the same time" with a seeded, reproducible interleaving. Each port the actors share is
 * wrapped with `gate`: a call by an actor of the group waits for its turn. A turn is given only when
 * nothing is in motion — no released call is unsettled and every actor is either finished or waiting at
 * a gate — and then to one waiting call picked by the seeded Rng. So actors interleave at every port
 * call (DynamoDB, cloud, agent), in an order the seed decides, the same on every run.
 *
 * Calls from outside the group (the scenario, the observers) pass straight through, and so do the calls a
 * released call makes itself (the provider's onStarted recording through the store): they are part of its
 * turn. Actors must reach the shared state only through gated ports; a call that waits on another actor
 * would deadlock.
 */
export class Turnstile {
  private group: Group | undefined;
  /** Set inside a released call: a port call it makes itself (a callback such as onStarted) is part of its turn. */
  private readonly insideTurn = new AsyncLocalStorage<true>();

  constructor(private readonly rng: Rng) {}

  /** `port` whose every method waits for its turn when called by an actor of a running group. */
  gate<T extends object>(port: T): T {
    return new Proxy(port, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        const method = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          const slot = currentActor()?.slot;
          const group = this.group;
          if (
            slot === undefined ||
            group === undefined ||
            slot.group !== group ||
            this.insideTurn.getStore() === true
          ) {
            return method.apply(target, args);
          }
          return this.turn(group, slot.index).then(async () => {
            try {
              return await this.insideTurn.run(true, () => method.apply(target, args));
            } finally {
              group.inFlight = false;
              this.step(group);
            }
          });
        };
      },
    });
  }

  /** Runs the actors interleaved; resolves with each one's outcome, in order, when all have ended. */
  async all<T>(
    actors: readonly { name: string; run: () => Promise<T> }[],
  ): Promise<PromiseSettledResult<T>[]> {
    if (this.group !== undefined) throw new Error("Turnstile.all does not nest");
    const group: Group = { done: actors.map(() => false), waiting: [], inFlight: false };
    this.group = group;
    try {
      return await Promise.allSettled(
        actors.map((actor, index) =>
          asActor(actor.name, actor.run, { group, index }).finally(() => {
            group.done[index] = true;
            this.step(group);
          }),
        ),
      );
    } finally {
      this.group = undefined;
    }
  }

  private turn(group: Group, index: number): Promise<void> {
    return new Promise((release) => {
      group.waiting.push({ index, release });
      this.step(group);
    });
  }

  /** Gives the next turn if nothing is in motion. */
  private step(group: Group): void {
    if (group.inFlight || group.waiting.length === 0) return;
    const waitingActors = new Set(group.waiting.map((g) => g.index));
    const settled = group.done.every((done, index) => done || waitingActors.has(index));
    if (!settled) return;
    const chosen = this.rng.int(0, group.waiting.length - 1);
    const [gate] = group.waiting.splice(chosen, 1);
    if (gate === undefined) return;
    group.inFlight = true;
    gate.release();
  }
}
