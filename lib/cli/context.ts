import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { SIMPLE_NAME, SIMPLE_NAME_HINT } from "../core/names.js";
import { UsageError } from "./io.js";

/**
 * The current cluster (HPC-NOW's `switch`): `nowscale use CLUSTER` writes it to a small file under the
 * user's configuration directory, and every command that takes a cluster uses it when none is given,
 * saying so on stderr. The file holds nothing secret, yet it is the user's own: 0600 in a 0700 directory,
 * so another user cannot point someone's commands at another cluster.
 */

export interface CliContext {
  cluster: string;
  /** Where the cluster is: the --endpoint it was chosen with, if any (informative). */
  endpoint?: string;
  /** ISO-8601. */
  setAt: string;
}

/** $NOWSCALE_CONFIG_DIR, else $XDG_CONFIG_HOME/nowscale, else ~/.config/nowscale; the file context.json. */
export function contextPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir =
    env.NOWSCALE_CONFIG_DIR ||
    join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config"), "nowscale");
  return join(dir, "context.json");
}

/** The current context, or undefined when none is set; a damaged file is an error naming it. */
export function readContext(path = contextPath()): CliContext | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read the current cluster from ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const cluster = (parsed as { cluster?: unknown } | undefined)?.cluster;
  if (typeof cluster !== "string" || !SIMPLE_NAME.test(cluster)) {
    throw new UsageError(`${path} is damaged: run "nowscale use CLUSTER" again (or "nowscale use --clear")`);
  }
  return parsed as CliContext;
}

export function writeContext(context: CliContext, path = contextPath()): void {
  if (!SIMPLE_NAME.test(context.cluster)) {
    throw new UsageError(`invalid cluster id "${context.cluster.slice(0, 80)}": ${SIMPLE_NAME_HINT}`);
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(context, null, 2)}\n`, { mode: 0o600 });
  // An existing file keeps its mode on write: set it again.
  chmodSync(path, 0o600);
}

export function clearContext(path = contextPath()): void {
  rmSync(path, { force: true });
}

/**
 * The cluster a command acts on: the one given, else the current one (said on stderr, so a script's
 * stdout stays clean), else a UsageError saying how to choose.
 */
export function clusterOrCurrent(
  given: string | undefined,
  stderr: NodeJS.WritableStream = process.stderr,
): string {
  if (given !== undefined && given !== "") return given;
  const context = readContext();
  if (context === undefined) {
    throw new UsageError(
      'no cluster given and no current cluster: name one, or choose one with "nowscale use CLUSTER"',
    );
  }
  stderr.write(`using cluster ${context.cluster} (the current cluster: "nowscale use" changes it)\n`);
  return context.cluster;
}
