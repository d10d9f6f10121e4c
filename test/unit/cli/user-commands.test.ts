import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { LocalUserSecrets } from "../../../lib/local/user-secrets.js";
import type { ApiBed } from "../../support/api-bed.js";
import { cliApiBed } from "../../support/cli-api-bed.js";

/**
 * `nowscale users add|list|disable|enable|passwd|delete` (HPC-NOW userman) of the built CLI against the
 * real local API server over the API's routes on dynalite and the fake agent. The password comes from a
 * file, never an argument, and is never printed.
 */

describe("nowscale users", () => {
  const t = cliApiBed("nowscale-users");
  const run = (args: string[]) => t.run(args);
  let bed: ApiBed;
  let clusterId = "";
  let dir = "";
  beforeAll(async () => {
    ({ bed, clusterId } = t);
    dir = await mkdtemp(join(tmpdir(), "nowscale-users-cli-"));
    bed.deps.userSecrets = new LocalUserSecrets(join(dir, "secrets"));
  });

  it("adds a user with a password file, lists, disables, enables, changes the key, deletes keeping files", async () => {
    // Prepare
    const passwordFile = join(dir, "password");
    await writeFile(passwordFile, "Sup3r-secret-pass\n", { mode: 0o600 });
    const keyFile = join(dir, "id.pub");
    await writeFile(
      keyFile,
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt0Q2cXw1b1oQeSg7e2oU1v5w4eXQ8oYb2v1Y1kP5Wm a@b\n",
    );

    // Act
    const added = await run(["users", "add", "alice", clusterId, "--password-file", passwordFile]);
    const system = await run(["users", "add", "root", clusterId]);
    const noFile = await run(["users", "add", "bob", clusterId, "--password-file", join(dir, "none")]);
    const disabled = await run(["users", "disable", "alice", clusterId]);
    const listed = await run(["users", "list", clusterId]);
    const enabled = await run(["users", "enable", "alice", clusterId, "--json"]);
    const passwd = await run(["users", "passwd", "alice", clusterId, "--ssh-key-file", keyFile]);
    const nothing = await run(["users", "passwd", "alice", clusterId]);
    const deleted = await run(["users", "delete", "alice", clusterId]);

    // Assess
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain("user alice added");
    expect(added.stdout).toContain("uid 21000");
    expect(system.status).toBe(1);
    expect(system.stderr).toContain("name");
    expect(noFile.status).toBe(2);
    expect(noFile.stderr).toContain(`cannot read the password file ${join(dir, "none")}: no such file`);
    expect(disabled.stdout).toContain("user alice disabled");
    expect(listed.stdout).toMatch(/alice\s+21000\s+no\s+set\s+-/);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ name: "alice", enabled: true });
    expect(passwd.stdout).toContain("SSH key set");
    expect(nothing.status).toBe(2);
    expect(deleted.stdout).toContain("their files are kept");
    for (const r of [added, disabled, listed, enabled, passwd, deleted])
      expect(r.stdout + r.stderr).not.toContain("Sup3r-secret-pass");
    expect(bed.agent.users.size).toBe(0);
  });
});
