import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Who is calling a port right now: "scaler", "reconciler", "api", "workflow", or a scenario's own name.
 * The observers attribute every terminate and launch to its actor (a terminate by the deletion workflow
 * or by a user's "delete nodes" is asked for; one by the scaler or the reconciler of a busy node breaks a
 * promise), fault rules can target one actor, and the Turnstile knows which actor a gated call belongs to.
 * Carried by AsyncLocalStorage, so it survives every await inside the actor.
 */
export interface ActorContext {
  name: string;
  /** Set inside Turnstile.all: the actor's slot in its group. */
  slot?: { group: object; index: number };
}

const storage = new AsyncLocalStorage<ActorContext>();

/**
 * Runs `fn` as the named actor. Without `slot` it keeps the caller's: a scaler invocation started by an
 * actor of a Turnstile group (World.run with overlap) stays in that group under its own name.
 */
export function asActor<T>(
  name: string,
  fn: () => Promise<T>,
  slot: ActorContext["slot"] = currentActor()?.slot,
): Promise<T> {
  return storage.run(slot === undefined ? { name } : { name, slot }, fn);
}

/** The calling actor, or undefined outside any actor (the scenario itself, the observers). */
export function currentActor(): ActorContext | undefined {
  return storage.getStore();
}
