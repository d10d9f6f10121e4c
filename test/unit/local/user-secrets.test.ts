import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LocalUserSecrets } from "../../../lib/local/user-secrets.js";

describe("the local mode's users' secret files", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("removes a deleted cluster's files only, and nothing when the directory is missing", async () => {
    // Prepare
    dir = await mkdtemp(join(tmpdir(), "nowscale-user-secrets-"));
    const store = new LocalUserSecrets(join(dir, "users"));
    await store.put("c-1", "alice", { password: "p1" });
    await store.put("c-1", "bob", { password: "p2" });
    await store.put("c-10", "alice", { password: "p3" });
    // Not a user's file of c-1: a name outside the allow-list, another extension.
    await writeFile(join(dir, "users", "c-1.Not Valid.json"), "{}");
    await writeFile(join(dir, "users", "c-1.alice.json.new"), "{}");

    // Act
    const removed = await store.removeCluster("c-1");
    const missing = await new LocalUserSecrets(join(dir, "none")).removeCluster("c-1");

    // Assess
    expect(removed).toEqual(["alice", "bob"]);
    expect((await readdir(join(dir, "users"))).sort()).toEqual([
      "c-1.Not Valid.json",
      "c-1.alice.json.new",
      "c-10.alice.json",
    ]);
    expect(missing).toEqual([]);
    await expect(store.removeCluster("../etc")).rejects.toThrow(/invalid cluster name/);
  });
});
