import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { ApiAuth, writeApiToken } from "../../lib/local/api-auth.js";
import { startApiServer } from "../../lib/local/api-server.js";
import { type ApiBed, apiBed } from "./api-bed.js";
import { CLI, runCliAsync } from "./cli.js";
import { startDynalite, type TestDynamo } from "./dynalite.js";

/** What a CLI test of the API commands has once `beforeAll` ran (cliApiBed). */
export interface CliApiBed {
  db: TestDynamo;
  /** The API's routes on dynalite, the fake cloud and agent, a clock that stands still. */
  bed: ApiBed;
  /** The real local API server (its token, the proxy event, the deployed handler). */
  endpoint: string;
  /** The local mode's state directory: the API token the CLI sends. */
  stateDir: string;
  /** NOWSCALE_CONFIG_DIR: where `nowscale use` keeps the current cluster. */
  configDir: string;
  /** A RUNNING cluster. */
  clusterId: string;
  /** The built CLI as a separate process (asynchronous: the API answers from this process). */
  run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
}

/**
 * Registers the hooks that start dynalite, the API bed and the local API server before a file's tests
 * and stop them after; the returned object is filled in by `beforeAll`. `prefix` names the temporary
 * directories.
 */
export function cliApiBed(prefix: string): CliApiBed {
  let server: Server | undefined;
  const t = {
    endpoint: "",
    stateDir: "",
    configDir: "",
    clusterId: "",
    run: (args: string[]) =>
      runCliAsync(
        args,
        { NOWSCALE_LOCAL_DIR: t.stateDir, NOWSCALE_ENDPOINT: t.endpoint, NOWSCALE_CONFIG_DIR: t.configDir },
        { timeoutMs: 30_000 },
      ),
  } as CliApiBed;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
    t.db = await startDynalite();
    t.bed = await apiBed(t.db);
    t.stateDir = mkdtempSync(join(tmpdir(), `${prefix}-state-`));
    chmodSync(t.stateDir, 0o755);
    const token = await writeApiToken(t.stateDir);
    server = await startApiServer(t.bed.deps, 0, () => undefined, new ApiAuth(token));
    t.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t.configDir = join(mkdtempSync(join(tmpdir(), `${prefix}-config-`)), "nowscale");
    t.clusterId = await t.bed.runningCluster();
  });

  afterAll(async () => {
    const s = server;
    if (s !== undefined) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await t.db?.close();
    if (t.stateDir !== "") rmSync(t.stateDir, { recursive: true, force: true });
    if (t.configDir !== "") rmSync(join(t.configDir, ".."), { recursive: true, force: true });
  });
  return t;
}
