import { readFileSync } from "node:fs";

/** A problem the user can fix; the CLI prints its message without a stack and exits with `exitCode`. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Reads and parses a JSON file, naming the file in every error. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read ${what} file ${path}: ${code === "ENOENT" ? "no such file" : String(code ?? error)}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} file ${path} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Parses an ISO-8601 time given on the command line into epoch ms. */
export function parseTimeOption(value: string, flag: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new UsageError(`${flag} must be an ISO-8601 time such as 2026-01-01T00:00:00Z, got "${value}"`);
  return ms;
}

/**
 * How long a request may take before its progress line is printed. A refusal (a 400 for bad input, a 404
 * for an unknown cluster) answers well within it, so a refused request never follows a line claiming work.
 */
export const PROGRESS_AFTER_MS = 1000;

/**
 * Awaits `work`, writing `line` to stderr only if it is still running after `afterMs`: the line says what
 * the service is busy doing (slurm.conf on the master, a drain), which is worth telling only once the
 * request was taken up, never ahead of its refusal.
 */
export async function progressWhile<T>(
  line: string,
  work: Promise<T>,
  afterMs = PROGRESS_AFTER_MS,
): Promise<T> {
  const timer = setTimeout(() => process.stderr.write(`${line}\n`), afterMs);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}
