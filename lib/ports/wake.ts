import { SIMPLE_NAME } from "../core/names.js";

/**
 * The wake: the master's agent telling the scaler "new pending jobs, poll now" (docs/architecture.md,
 * "Event-driven scale-out"). It is a hint and nothing more: it carries only the cluster's id, and the
 * scaler answers it by reading the queue from the agent itself, as every poll does. A forged or repeated
 * wake can therefore cost one extra poll per WAKE_MIN_INTERVAL_MS and never a launch the queue does not
 * call for.
 *
 * On AWS it is one EventBridge event on the stack's own bus; the local mode's bus takes the same
 * PutEvents request (lib/local/event-bus.ts). These constants are the rule's pattern on both.
 */

/** The event's `source`: the master role may put events with this source only (IAM `events:source`). */
export const WAKE_SOURCE = "nowscale.agent";

/** The event's `detail-type` (IAM `events:detail-type`). */
export const WAKE_DETAIL_TYPE = "NowScale Wake";

/**
 * The scaler honours at most one wake per cluster in this time (a lease in the state store); the others
 * are dropped. Shorter than the agent's own debounce (DEFAULT_WAKE_DEBOUNCE_MS), so a wake the agent
 * sends one debounce after the last is not dropped because the two were delivered with different delays.
 */
export const WAKE_MIN_INTERVAL_MS = 3000;

/** The agent sends at most one wake per this time, however many jobs are submitted. */
export const DEFAULT_WAKE_DEBOUNCE_MS = 5000;

/** The agent reads the pending job ids this often. */
export const DEFAULT_WATCH_INTERVAL_MS = 2000;

/** The event's detail: which cluster to poll. */
export interface WakeDetail {
  clusterId: string;
}

/** The detail as the agent sends it (JSON text, as PutEvents takes it). */
export function wakeDetailText(clusterId: string): string {
  if (!SIMPLE_NAME.test(clusterId)) throw new TypeError(`invalid cluster id "${clusterId.slice(0, 80)}"`);
  return JSON.stringify({ clusterId } satisfies WakeDetail);
}

/**
 * The cluster a wake names, or undefined when it names none validly (anything but an object whose
 * `clusterId` passes the name allow-list). Never throws: a wake is untrusted input.
 */
export function wakeClusterId(detail: unknown): string | undefined {
  if (typeof detail !== "object" || detail === null || Array.isArray(detail)) return undefined;
  const id = Object.hasOwn(detail, "clusterId") ? (detail as { clusterId: unknown }).clusterId : undefined;
  return typeof id === "string" && SIMPLE_NAME.test(id) ? id : undefined;
}
