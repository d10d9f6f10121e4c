import { spawnSync } from "node:child_process";
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
