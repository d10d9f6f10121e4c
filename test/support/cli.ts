import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** Runs the built `nowscale` CLI (dist/bin/nowscale.js) as a user would: a separate process. */
export const CLI = resolve(import.meta.dirname, "../../dist/bin/nowscale.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `env`: the process's environment with these changes; a variable given as undefined is left out (a
 * machine without it).
 */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string | undefined> } = {},
): CliResult {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 60_000,
    env: withEnv(options.env),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temp directory with the given JSON files written into it. */
export function tempFiles(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "nowscale-test-"));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

/** The process's environment with `changes`; undefined values remove the variable. */
export function withEnv(changes: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/**
 * Runs the built CLI as a separate process without blocking this one (an API or agent answering from
 * this process keeps running): `env` changes the process's environment as in runCli, `input` is written
 * to its stdin (then closed). Resolves once it exits, with `status` null when it was killed at `timeoutMs`.
 */
export function runCliAsync(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      timeout: options.timeoutMs ?? 240_000,
      env: withEnv(env),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.stdin.end(options.input ?? "");
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
