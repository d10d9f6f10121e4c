import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiAuth, writeApiToken } from "../../../lib/local/api-auth.js";
import { startApiServer } from "../../../lib/local/api-server.js";
import { type ApiBed, apiBed } from "../../support/api-bed.js";
import { CLI } from "../../support/cli.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * `nowscale queue add|list|delete` of the built CLI against the real local API server over the API's
 * routes on dynalite and the fake agent (which keeps the partitions slurm.conf would declare).
 */

describe("nowscale queue", () => {
  let db: TestDynamo;
  let bed: ApiBed;
  let server: Server;
  let endpoint = "";
  let stateDir = "";
  let configDir = "";
  let clusterId = "";

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
    db = await startDynalite();
    bed = await apiBed(db);
    stateDir = mkdtempSync(join(tmpdir(), "nowscale-queue-state-"));
    chmodSync(stateDir, 0o755);
    const token = await writeApiToken(stateDir);
    server = await startApiServer(bed.deps, 0, () => undefined, new ApiAuth(token));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    configDir = join(mkdtempSync(join(tmpdir(), "nowscale-queue-config-")), "nowscale");
    clusterId = await bed.runningCluster();
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await db.close();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  /** The CLI as a separate process (asynchronously: the API answers from this process). */
  function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: {
          ...process.env,
          NOWSCALE_LOCAL_DIR: stateDir,
          NOWSCALE_ENDPOINT: endpoint,
          NOWSCALE_CONFIG_DIR: configDir,
        },
        timeout: 30_000,
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString("utf8");
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString("utf8");
      });
      child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
  }

  it("adds a queue (its partition first), lists it with Slurm's view, refuses a busy delete, then deletes", async () => {
    // Act
    const added = await run([
      "queue",
      "add",
      clusterId,
      "--name",
      "gpu",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    const hostile = await run([
      "queue",
      "add",
      clusterId,
      "--name",
      "a;reboot",
      "--instance-type",
      "c5.xlarge",
      "--zone",
      "zone-a",
    ]);
    bed.agent.addPending("gpu", "9", {});
    const listed = await run(["queue", "list", clusterId]);
    const refused = await run(["queue", "delete", "gpu", clusterId]);
    const forced = await run(["queue", "delete", "gpu", clusterId, "--force", "--json"]);

    // Assess
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain("queue gpu added");
    expect(hostile.status).toBe(1);
    expect(hostile.stderr).toContain("queueName");
    expect(listed.stdout).toMatch(/gpu\s+0\s+10\s+c5\.xlarge@zone-a\s+0\s+0\s+0\s+1\s+0/);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/pending job/);
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ queue: "gpu", retired: [] });
    expect(bed.agent.partitions).toEqual(["compute"]);
  });
});
