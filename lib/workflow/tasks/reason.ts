/** A Catch's error output, as Step Functions passes it on. */
export interface StepError {
  Error?: string;
  Cause?: string;
}

const MAX_REASON_CHARS = 1000;

/**
 * A one-line reason from a caught error. A Lambda task's Cause is the runtime's JSON
 * ({errorType, errorMessage, trace}); only type and message are kept, never the trace.
 */
export function failureReason(error: StepError | undefined, cleanupError?: StepError): string {
  let reason = describe(error) ?? "unknown failure";
  const cleanup = describe(cleanupError);
  if (cleanup !== undefined) reason += `; cleanup incomplete: ${cleanup}`;
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS - 1)}…` : reason;
}

function describe(error: StepError | undefined): string | undefined {
  if (error === undefined || (error.Error === undefined && error.Cause === undefined)) return undefined;
  let name = error.Error ?? "Error";
  let message = error.Cause ?? "";
  try {
    const parsed = JSON.parse(message) as { errorType?: unknown; errorMessage?: unknown };
    if (typeof parsed.errorMessage === "string") message = parsed.errorMessage;
    if (typeof parsed.errorType === "string") name = parsed.errorType;
  } catch {
    // A plain-text cause (a Pass state's or the local runner's) is kept as it is.
  }
  return `${name}: ${message.replace(/\s+/g, " ").trim()}`;
}
