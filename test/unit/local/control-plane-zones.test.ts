import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleApiRequest } from "../../../lib/control/api/routes.js";
import { type LocalControlPlane, startLocalControlPlane } from "../../../lib/local/control-plane.js";
import { DEFAULT_SETTINGS } from "../../../lib/local/settings.js";

/**
 * The local mode's API as `nowscale local up` builds it (its dynalite on a socket, its local provider),
 * without Slurm or namespaces: a refused request reaches neither, so none is started here.
 */
describe("the local mode's API checks a queue's zones against its namespaces' zones", () => {
  let stateDir: string;
  let cp: LocalControlPlane;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "nowscale-local-zones-"));
    await writeFile(join(stateDir, "agent.key"), "local-test-key\n", { mode: 0o600 });
    // The test bed is reached only by launches and the master's Slurm setup, which a refusal never makes.
    const testbed = { stateDir, netnsPrefix: "nszt-" } as unknown as Parameters<
      typeof startLocalControlPlane
    >[1];
    cp = await startLocalControlPlane({ ...DEFAULT_SETTINGS, stateDir }, testbed, () => {});
  });
  afterAll(async () => {
    await cp.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("refuses a create whose queue names a zone the namespaces lack: 400 naming it and the local zones, nothing recorded", async () => {
    // Prepare
    const body = JSON.parse(
      await readFile(new URL("../../../examples/local-cluster.json", import.meta.url), "utf8"),
    );
    body.autoscaling.queueConfigs[0].expansionNodeConfigs[0].zone = "nozone";

    // Act
    const res = await handleApiRequest(cp.api, {
      method: "POST",
      path: "/clusters",
      headers: { "content-type": "application/json" },
      query: {},
      body: JSON.stringify(body),
    });

    // Assess
    expect(res.statusCode, res.body).toBe(400);
    expect(JSON.parse(res.body).issues).toEqual([
      {
        path: "autoscaling.queueConfigs[0].expansionNodeConfigs[0].zone",
        message: `"nozone" is not a zone of ${body.cloud ?? "aws"} region ${body.region}: one of local-a, local-b`,
      },
    ]);
    expect(await cp.store.listClusters()).toEqual([]);
  });
});
