import type { ValidationIssue } from "../core/validation.js";

/**
 * The services' refusals that no port error already names. Each edge (the REST API's error table,
 * lib/control/api/errors.ts) maps them by class; nothing here knows about HTTP.
 */

/** A name in a request (cluster id, queue, node) that names nothing here; `issues` names the field. */
export class UnknownNameError extends Error {
  override readonly name = "UnknownNameError";
  constructor(
    message: string,
    readonly issues: readonly ValidationIssue[] = [],
  ) {
    super(message);
  }
}

/** Another launch or a deletion holds the cluster's admission lease: the caller retries in seconds. */
export class AdmissionBusyError extends Error {
  override readonly name = "AdmissionBusyError";
}

/** The cluster's cloud provider does not implement an optional port method (e.g. consoleOutput). */
export class UnsupportedOperationError extends Error {
  override readonly name = "UnsupportedOperationError";
}

/**
 * The state of the cluster or of the named nodes does not allow the request (e.g. a rebuild of a node
 * that did not fail); `issues` names each one. Nothing was changed. HTTP 409.
 */
export class StateRefusedError extends Error {
  override readonly name = "StateRefusedError";
  constructor(
    message: string,
    readonly issues: readonly ValidationIssue[] = [],
  ) {
    super(message);
  }
}

/**
 * The cluster's cloud did not list its region's zones (an outage, throttling, a credential it refused),
 * and a configuration's zones cannot be checked without them: nothing was written. Retry. HTTP 503.
 */
export class ZonesUnavailableError extends Error {
  override readonly name = "ZonesUnavailableError";
}

/** Slurm's view (the agent's report) could not be read, and the request needs it. Retry. HTTP 503. */
export class SlurmUnavailableError extends Error {
  override readonly name = "SlurmUnavailableError";
}
