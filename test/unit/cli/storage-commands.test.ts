import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ApiBed } from "../../support/api-bed.js";
import { cliApiBed } from "../../support/cli-api-bed.js";

/**
 * `nowscale storage add|list|delete` and `nowscale init-scripts set|show` of the built CLI against the
 * real local API server over the API's routes on dynalite: what they send is what the cluster record
 * keeps, and the API's refusal (naming the field) reaches the user.
 */

describe("nowscale storage and init-scripts", () => {
  const t = cliApiBed("nowscale-storage");
  const run = (args: string[]) => t.run(args);
  let bed: ApiBed;
  let clusterId = "";
  beforeAll(() => {
    ({ bed, clusterId } = t);
  });

  it("adds, lists and deletes a mount; a hostile path is refused naming the field", async () => {
    // Act
    const added = await run([
      "storage",
      "add",
      clusterId,
      "--remote",
      "10.0.0.9:/export",
      "--local",
      "/data",
    ]);
    const hostile = await run([
      "storage",
      "add",
      clusterId,
      "--remote",
      "10.0.0.9:/x",
      "--local",
      "/d;reboot",
    ]);
    const listed = await run(["storage", "list", clusterId]);
    const deleted = await run(["storage", "delete", "/data", clusterId, "--json"]);

    // Assess
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain("storage 10.0.0.9:/export on /data added");
    expect(added.stdout).toContain("running nodes: synced");
    expect(bed.agent.storage).toEqual([]);
    expect(hostile.status).toBe(1);
    expect(hostile.stderr).toContain("localPath");
    expect(listed.stdout).toMatch(/\/data\s+NFS 4\.0\s+10\.0\.0\.9:\/export/);
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout)).toMatchObject({ storage: [], runningNodes: "synced" });
    expect((await bed.store.getCluster(clusterId))?.nodeSetup?.storage).toEqual([]);
  });

  it("refuses a mount path segment past the 255-byte file-name limit, naming localPath and the limit; accepts 255", async () => {
    // Prepare
    const before = (await bed.store.getCluster(clusterId))?.nodeSetup?.storage ?? [];

    // Act
    const tooLong = await run([
      "storage",
      "add",
      clusterId,
      "--remote",
      "10.0.0.9:/export",
      "--local",
      `/mnt/${"a".repeat(300)}`,
    ]);
    const atLimit = await run([
      "storage",
      "add",
      clusterId,
      "--remote",
      "10.0.0.9:/export",
      "--local",
      `/mnt/${"b".repeat(255)}`,
    ]);

    // Assess
    expect(tooLong.status).toBe(1);
    expect(tooLong.stderr).toContain("localPath");
    expect(tooLong.stderr).toMatch(/at most 255 bytes \(the file-name limit\); one has 300/);
    expect(atLimit.status, atLimit.stderr).toBe(0);
    const after = (await bed.store.getCluster(clusterId))?.nodeSetup?.storage ?? [];
    expect(after.map((s) => s.localPath)).toEqual([
      ...before.map((s) => s.localPath),
      `/mnt/${"b".repeat(255)}`,
    ]);
    expect((await run(["storage", "delete", `/mnt/${"b".repeat(255)}`, clusterId])).status).toBe(0);
  });

  it("sets init scripts from a URL and a local file (inline), shows them, and clears them", async () => {
    // Prepare
    const file = join(t.stateDir, "init.sh");
    writeFileSync(file, "#!/bin/bash\ntouch /tmp/ready\n");

    // Act
    const set = await run([
      "init-scripts",
      "set",
      clusterId,
      "--script",
      "s3://b/a.sh",
      "--script",
      file,
      "--timeout",
      "90",
    ]);
    const shown = await run(["init-scripts", "show", clusterId]);
    const stored = (await bed.store.getCluster(clusterId))?.nodeSetup?.initScripts;
    const neither = await run(["init-scripts", "set", clusterId]);
    const plainHttp = await run(["init-scripts", "set", clusterId, "--script", "http://example.com/a.sh"]);
    const missing = await run(["init-scripts", "set", clusterId, "--script", join(t.stateDir, "none.sh")]);
    const cleared = await run(["init-scripts", "set", clusterId, "--clear"]);

    // Assess
    expect(set.status, set.stderr).toBe(0);
    expect(shown.stdout).toContain("s3://b/a.sh");
    expect(shown.stdout).toContain("inline: #!/bin/bash (29 characters)");
    expect(stored).toEqual([
      { url: "s3://b/a.sh", timeoutS: 90 },
      { inline: "#!/bin/bash\ntouch /tmp/ready\n", timeoutS: 90 },
    ]);
    expect(neither.status).toBe(2);
    expect(plainHttp.status).toBe(2);
    expect(plainHttp.stderr).toContain(
      "http:// is not accepted: give an https:// or s3:// URL, or a local file",
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/none\.sh: not an https:\/\/ or s3:\/\/ URL, and no such file$/m);
    expect(cleared.status, cleared.stderr).toBe(0);
    expect((await bed.store.getCluster(clusterId))?.nodeSetup?.initScripts).toEqual([]);
  });
});
