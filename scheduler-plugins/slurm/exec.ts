import { execFile } from "node:child_process";

/** What a finished command left behind. `code` is null when it was killed (timeout) or never started. */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be started (ENOENT) or was killed. */
  error?: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** @default 60000 */
  timeoutMs?: number;
}

/** Runs `file` with an argument array, never through a shell. */
export type CommandRunner = (
  file: string,
  args: readonly string[],
  options?: RunOptions,
) => Promise<CommandResult>;

/** squeue --json on a large queue is tens of MiB; the cap only guards against a runaway command. */
const MAX_OUTPUT_BYTES = 1024 * 1024 * 1024;

/**
 * Runs a command with execFile (no shell: arguments are passed as they are) and resolves with its exit
 * code and output; it never rejects. A command that cannot start resolves with code null and `error`.
 */
export const runCommand: CommandRunner = (file, args, options = {}) =>
  new Promise((resolve) => {
    execFile(
      file,
      [...args],
      {
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: MAX_OUTPUT_BYTES,
        encoding: "utf8",
        windowsHide: true,
      },
      (error, stdout, stderr) => {
        if (!error) return resolve({ code: 0, stdout, stderr });
        const code = typeof error.code === "number" ? error.code : null;
        const result: CommandResult = { code, stdout: stdout ?? "", stderr: stderr ?? "" };
        if (code === null)
          result.error = error.killed ? `killed after timeout (${error.signal ?? "SIGTERM"})` : error.message;
        resolve(result);
      },
    );
  });

/** Phrases Slurm's clients print when slurmctld cannot be reached or munge fails. */
const UNREACHABLE =
  /Unable to contact slurm controller|Socket timed out|Connection refused|Zero Bytes were transmitted|Communication connection failure|Munge|Could not establish a configuration source|Transport endpoint is not connected/i;

/** True when a failed command's message says the controller did not answer (as opposed to a bad request). */
export function isControllerUnreachable(result: CommandResult): boolean {
  return result.code !== 0 && UNREACHABLE.test(`${result.stderr}\n${result.stdout}`);
}
