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
