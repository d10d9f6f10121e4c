import type { Clock } from "../ports/clock.js";
import type { EventKind, StateStore } from "../ports/state-store.js";

/**
 * Appends one scaling event at the clock's time (the store adds the id and the retention). `by`: the
 * principal of the operator who asked for it (API requests); the service's own events leave it out.
 */
export async function appendControlEvent(
  store: StateStore,
  clusterId: string,
  clock: Clock,
  kind: EventKind,
  message: string,
  queue?: string,
  nodes?: string[],
  count?: number,
  by?: string,
): Promise<void> {
  await store.appendEvent({
    clusterId,
    kind,
    message,
    at: clock.now(),
    ...(queue === undefined ? {} : { queue }),
    ...(nodes === undefined ? {} : { nodes }),
    ...(count === undefined ? {} : { count }),
    ...(by === undefined ? {} : { by }),
  });
}
