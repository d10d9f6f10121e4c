import { describe, expect, it } from "vitest";
import { CloudUserSecrets } from "../../../lib/aws/user-secrets.js";
import { SecretStoreError, type UserSecretStore } from "../../../lib/ports/user-secrets.js";

/** A store recording what it was asked, answering ids of its own kind. */
function recording(prefix: string): UserSecretStore & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    put: async (clusterId, user, _value, scope) => {
      log.push(`put ${clusterId} ${user} ${scope?.region ?? ""}`);
      return `${prefix}nowscale-${clusterId}-users-${user}`;
    },
    remove: async (id) => {
      log.push(`remove ${id}`);
    },
  };
}

/**
 * The deployed API's users' secrets (lib/aws/user-secrets.ts CloudUserSecrets): a cluster's placement
 * picks the store, the id picks it back for removal, and a cloud the stack is not set up for is refused
 * before any store is written.
 */
describe("CloudUserSecrets", () => {
  it("puts a Tencent or Alibaba cluster's secret in that cloud's store in its region, others in AWS", async () => {
    // Prepare
    const aws = recording("arn:aws:secretsmanager:eu-west-1:1:secret:");
    const others = new Map<string, UserSecretStore & { log: string[] }>();
    const store = new CloudUserSecrets(aws, (cloud, region) => {
      const key = `${cloud}:${region}`;
      if (!others.has(key))
        others.set(key, recording(cloud === "tencent" ? `tencent-ssm:${region}:` : `alibaba-kms:${region}:`));
      return others.get(key);
    });
    const value = { password: "s3cret-Password-42" };

    // Act
    const t = await store.put("hpc1", "alice", value, { cloud: "tencent", region: "ap-guangzhou" });
    const a = await store.put("hpc2", "bob", value, { cloud: "alibaba", region: "cn-hangzhou" });
    const w = await store.put("hpc3", "carol", value, { cloud: "aws", region: "eu-west-1" });
    await store.remove(t);
    await store.remove(a);
    await store.remove(w);

    // Assess
    expect(others.get("tencent:ap-guangzhou")?.log).toEqual(["put hpc1 alice ap-guangzhou", `remove ${t}`]);
    expect(others.get("alibaba:cn-hangzhou")?.log).toEqual(["put hpc2 bob cn-hangzhou", `remove ${a}`]);
    expect(aws.log).toEqual(["put hpc3 carol eu-west-1", `remove ${w}`]);
  });

  it("refuses a cloud the stack has no store for, writing nothing anywhere", async () => {
    // Prepare
    const aws = recording("arn:");
    const store = new CloudUserSecrets(aws, () => undefined);

    // Act
    const failure = await store
      .put("hpc1", "alice", { password: "s3cret-Password-42" }, { cloud: "tencent", region: "ap-guangzhou" })
      .catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(SecretStoreError);
    expect((failure as Error).message).toContain("no tencent secret store for users");
    expect((failure as Error).message).not.toContain("s3cret");
    expect(aws.log).toEqual([]);
  });
});
