import { ValidationError, type ValidationIssue } from "../../core/validation.js";
import {
  AgentActionError,
  AgentUnreachableError,
  SlurmctldUnreachableError,
} from "../../ports/agent-channel.js";
import { ConflictError, NotFoundInStoreError } from "../../ports/state-store.js";
import { SecretStoreError } from "../../ports/user-secrets.js";
import { AttachRefusedError } from "../attach.js";
import {
  AdmissionBusyError,
  SlurmUnavailableError,
  StateRefusedError,
  UnknownNameError,
  UnsupportedOperationError,
  ZonesUnavailableError,
} from "../errors.js";
import { WorkflowStartError } from "../lifecycle-recovery.js";

/**
 * How the API answers errors: one table from error class to HTTP status, as Powertools' event-handler
 * error registry and Middy's http-error-handler keep one. The services throw typed errors that know
 * nothing of HTTP; the request framing (routes.ts) throws the four below. Any other error is not an
 * answer: handleApiRequest rethrows it, and the Lambda's handler (handler.ts) logs it and answers 500
 * with a body that says nothing about it. So a bug (a TypeError, a RangeError) is never a 4xx.
 */

/** A refusal of the request's framing, before any input is parsed; `issues` names the header at fault. */
abstract class RequestFramingError extends Error {
  constructor(
    message: string,
    readonly issues?: readonly ValidationIssue[],
  ) {
    super(message);
  }
}

/** No route has this path. */
export class NoRouteError extends RequestFramingError {
  override readonly name = "NoRouteError";
}

/** A route has this path, but not this method. */
export class MethodNotAllowedError extends RequestFramingError {
  override readonly name = "MethodNotAllowedError";
}

/** The body is longer than the API reads. */
export class BodyTooLargeError extends RequestFramingError {
  override readonly name = "BodyTooLargeError";
}

/** A body not sent as application/json. */
export class UnsupportedMediaTypeError extends RequestFramingError {
  override readonly name = "UnsupportedMediaTypeError";
}

// biome-ignore lint/suspicious/noExplicitAny: any error class, whatever its constructor takes
type ErrorClass = abstract new (...args: any[]) => Error;

/** Error class → HTTP status. A subclass not listed answers as its nearest listed ancestor. */
export const ERROR_STATUS: ReadonlyMap<ErrorClass, number> = new Map<ErrorClass, number>([
  [ValidationError, 400], // bad input: `issues` names each field; nothing was changed
  [UnknownNameError, 404], // a cluster, node or queue that does not exist
  [NoRouteError, 404],
  [NotFoundInStoreError, 404], // the record went away between the read and the write
  [MethodNotAllowedError, 405],
  [ConflictError, 409], // the cluster's status or version does not allow it (If-Match, a lost race)
  [StateRefusedError, 409], // a node's or the cluster's state refuses it: `issues` names each
  [BodyTooLargeError, 413],
  [UnsupportedMediaTypeError, 415],
  [AttachRefusedError, 422], // a check of the master to attach failed: `issues` names the field; nothing stored
  [UnsupportedOperationError, 501], // the cluster's cloud provider cannot do it
  [AgentActionError, 502], // the master's agent refused the action (e.g. a reconfigure rolled back)
  [WorkflowStartError, 503], // Step Functions could not start or describe: retry
  [ZonesUnavailableError, 503], // the cloud did not list its zones for the configuration's check: retry
  [SlurmUnavailableError, 503], // the agent did not answer and the request needs Slurm's view: retry
  [AgentUnreachableError, 503], // the master's agent did not answer: retry
  [SlurmctldUnreachableError, 503], // the agent answered, slurmctld did not: retry
  [AdmissionBusyError, 503], // another launch or a deletion holds the cluster: retry in seconds
  [SecretStoreError, 503], // the secret store (users' passwords and keys) failed: retry
]);

/** The status the table gives this error, or undefined when it is not one the API answers. */
export function statusOf(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  for (let proto = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const status = ERROR_STATUS.get(proto.constructor as ErrorClass);
    if (status !== undefined) return status;
  }
  return undefined;
}

/** The body of an error answer: one line, and the issues (field by field) where the error has them. */
export function errorBody(error: Error): { error: string; issues?: readonly ValidationIssue[] } {
  if (error instanceof ValidationError) return { error: invalidMessage(error), issues: error.issues };
  const issues = (error as { issues?: readonly ValidationIssue[] }).issues;
  return { error: error.message, ...(issues === undefined || issues.length === 0 ? {} : { issues }) };
}

/** "request body is invalid: name: invalid name ...; count: must be at most 100": every field named. */
function invalidMessage(error: ValidationError): string {
  const fields = error.issues.map((i) => `${i.path || "(top level)"}: ${i.message}`).join("; ");
  return `${error.source} is invalid: ${fields}`.slice(0, 2000);
}
