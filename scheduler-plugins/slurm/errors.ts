/** Typed errors of the SLURM plugin. Each carries `name` and, where there is one, the `cause`. */

/** Output from a Slurm command that does not have the expected form. Nothing was changed. */
export class SlurmParseError extends Error {
  override readonly name = "SlurmParseError";
  constructor(
    readonly source: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${message}`, options);
  }
}

/** slurmctld did not answer (down, unreachable, munge failure). The caller must not read this as an empty queue. */
export class SlurmUnavailableError extends Error {
  override readonly name = "SlurmUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A Slurm command failed for a reason other than an unreachable controller. */
export class SlurmCommandError extends Error {
  override readonly name = "SlurmCommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? "none"}): ${stderr.trim().slice(0, 500) || "no message"}`);
  }
}

/** The named node is not known to slurmctld. */
export class SlurmNodeNotFoundError extends Error {
  override readonly name = "SlurmNodeNotFoundError";
  constructor(readonly node: string) {
    super(`node ${node} is not known to slurmctld`);
  }
}

/** Wraps anything a parser throws that is not already a SlurmParseError, so callers see one error type. */
export function asParseError(source: string, error: unknown): SlurmParseError {
  if (error instanceof SlurmParseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SlurmParseError(source, message, { cause: error });
}
