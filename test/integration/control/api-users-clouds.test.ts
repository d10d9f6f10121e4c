import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RunCommandCloudAccess,
  runCommandAgentChannel,
  runCommandUserSecrets,
} from "../../../lib/aws/run-command-clouds.js";
import { CloudUserSecrets } from "../../../lib/aws/user-secrets.js";
import type { AgentChannel } from "../../../lib/ports/agent-channel.js";
import type { UsersRequest } from "../../../lib/ports/cluster-users.js";
import type { UserSecretStore } from "../../../lib/ports/user-secrets.js";
import { FakeCloud } from "../../../lib/providers/fake/index.js";
import { apiBed } from "../../support/api-bed.js";
import { CONFIG } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import {
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../../unit/providers/simulators/alibaba-ecs.js";
import { shellTatAgent } from "../../unit/providers/simulators/tat-shell-agent.js";
import {
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../../unit/providers/simulators/tencent-cvm.js";

/**
 * Cluster users and storage on a Tencent and an Alibaba cluster through the API handler on dynalite, as
 * the deployed service does them: the password in that cloud's own secret store (Tencent SSM, Alibaba KMS
 * Secrets Manager, the loopback simulators checking every request against the SDK models and the
 * signature), tagged with the cluster; the master's agent told over TAT / Cloud Assistant with the
 * secret's id only (the command really runs in sh; a stand-in agent records its words and stdin); the
 * secret deleted with the user. The API's AWS store is never touched for these clusters.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const PASSWORD = "s3cret-Password-42";
const DATA = { protocol: "NFS 4.0", remotePath: "172.30.3.90:/", localPath: "/data" };

/** Makes the stand-in agent's set-users fail (exit 1), as a useradd that failed on the master would. */
let failSetUsers = false;

/** The stand-in agent's answers: set-users echoes the set as made, set-node-storage answers changed. */
function agentAnswer(words: string[], stdin: string): { exitCode: number; output: string } {
  const action = words[1] ?? "";
  if (action === "set-users" && failSetUsers)
    return { exitCode: 1, output: JSON.stringify({ error: "useradd failed" }) };
  if (action === "set-users") {
    const request = JSON.parse(stdin) as UsersRequest;
    const users = request.users.map(({ name, uid, enabled }) => ({ name, uid, enabled }));
    return { exitCode: 0, output: JSON.stringify({ users, added: [], removed: [], updated: [] }) };
  }
  if (action === "set-node-storage")
    return { exitCode: 0, output: JSON.stringify({ ok: true, changed: true }) };
  return { exitCode: 64, output: JSON.stringify({ error: `unexpected ${action}` }) };
}

/** An AWS store that must not be reached for a Tencent or Alibaba cluster. */
const noAws: UserSecretStore = {
  put: async () => {
    throw new Error("AWS Secrets Manager was written for another cloud's cluster");
  },
  remove: async () => {
    throw new Error("AWS Secrets Manager was deleted from for another cloud's cluster");
  },
};

interface CloudCase {
  cloud: "tencent" | "alibaba";
  region: string;
  masterId: string;
  /** The master's command runs (words, stdin), in order. */
  ran: () => { words: string[]; stdin: string }[];
  access: RunCommandCloudAccess;
  /** The secret's value and tags in the simulated store, or undefined when it is not there. */
  secret: (name: string) => { value: string; tags: Record<string, string> } | undefined;
  secretCalls: () => string[];
  close: () => Promise<void>;
}

async function tencentCase(): Promise<CloudCase> {
  const cloud = new FakeCloud({ idPrefix: "ins-" });
  const sim = await startCvmSimulator(cloud);
  const master = cloud.seed({ instanceType: "S5.LARGE8", zone: "ap-guangzhou-3", tags: {} });
  const tat = shellTatAgent((id, words, stdin) => (id === master.id ? agentAnswer(words, stdin) : undefined));
  sim.services.tatAgent = tat;
  return {
    cloud: "tencent",
    region: "ap-guangzhou",
    masterId: master.id,
    ran: () => tat.ran,
    access: {
      clock: { now: () => Date.now(), sleep: async () => undefined },
      tencentCredential: async () => ({ secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY }),
      alibabaCredential: async () => {
        throw new Error("the Alibaba key was read for a Tencent cluster");
      },
      tencentEndpoint: sim.endpoint,
      tencentProtocol: "http://",
    },
    secret: (name) => {
      const s = sim.services.secrets.get(name);
      return s === undefined ? undefined : { value: s.SecretString ?? "", tags: s.tags };
    },
    secretCalls: () =>
      sim.calls
        .filter((c) => /Secret/.test(c.action))
        .map((c) => `${c.action} ${String(c.params.SecretName)}`),
    close: () => sim.close(),
  };
}

async function alibabaCase(): Promise<CloudCase> {
  const cloud = new FakeCloud({ idPrefix: "i-" });
  let masterId = "";
  const shell = shellTatAgent((id, words, stdin) =>
    id === masterId ? agentAnswer(words, stdin) : undefined,
  );
  const sim = await startEcsSimulator(cloud, {
    runCommand: (id, script) => shell(id, script) ?? { exitCode: 127, output: "not found\n" },
  });
  masterId = cloud.seed({ instanceType: "ecs.c7.large", zone: "cn-hangzhou-h", tags: {} }).id;
  return {
    cloud: "alibaba",
    region: "cn-hangzhou",
    masterId,
    ran: () => shell.ran,
    access: {
      clock: { now: () => Date.now(), sleep: async () => undefined },
      tencentCredential: async () => {
        throw new Error("the Tencent key was read for an Alibaba cluster");
      },
      alibabaCredential: async () => ({
        accessKeyId: TEST_ACCESS_KEY_ID,
        accessKeySecret: TEST_ACCESS_KEY_SECRET,
      }),
      alibabaEndpoints: { ecs: sim.endpoint, vpc: sim.endpoint, kms: sim.endpoint },
      alibabaProtocol: "http",
    },
    secret: (name) => {
      const s = sim.world.secrets.get(name);
      return s === undefined ? undefined : { value: s.data, tags: Object.fromEntries(s.tags) };
    },
    secretCalls: () =>
      sim.calls
        .filter((c) => /Secret/.test(c.action))
        .map((c) => `${c.action} ${String(c.params.SecretName)}`),
    close: () => sim.close(),
  };
}

/** The API over dynalite with a RUNNING cluster placed on the case's cloud, reached as the runtime does. */
async function bed(c: CloudCase) {
  const t = await apiBed(db);
  const { cluster } = await t.store.createCluster({
    clusterId: "hpc1",
    name: "hpc1",
    placement: { cloud: c.cloud, region: c.region, imageId: "img-compute" },
    autoscaling: CONFIG,
    now: t.clock.now(),
  });
  await t.store.updateCluster("hpc1", cluster.version, {
    status: "RUNNING",
    resources: [
      { type: "masterInstance", id: c.masterId, createdAt: t.clock.now() },
      { type: "vpc", id: "vpc-hpc1", createdAt: t.clock.now() },
    ],
    now: t.clock.now(),
  });
  const kind = c.cloud === "tencent" ? "tat" : "cloud-assistant";
  t.deps.runtime = async (record) => ({
    provider: t.provider,
    agent: await runCommandAgentChannel({ kind, instanceId: c.masterId }, record.placement.region, {
      ...c.access,
      pollMs: 1,
    }),
  });
  t.deps.userSecrets = new CloudUserSecrets(noAws, (cloud, region) =>
    runCommandUserSecrets(cloud, region, c.access),
  );
  return t;
}

const CASES = [
  {
    name: "Tencent (SSM, TAT)",
    make: tencentCase,
    secretName: "nowscale-hpc1-users-alice",
    prefix: "tencent-ssm:ap-guangzhou:",
  },
  {
    name: "Alibaba (KMS Secrets Manager, Cloud Assistant)",
    make: alibabaCase,
    secretName: "nowscale/hpc1/users/alice",
    prefix: "alibaba-kms:cn-hangzhou:",
  },
] as const;

describe.each(CASES)("users on a $name cluster through the API", ({ make, secretName, prefix }) => {
  it("add stores the password in the cloud's store, tagged; the master gets the id only; passwd merges; delete removes it", async () => {
    // Prepare
    const c = await make();
    try {
      const t = await bed(c);

      // Act
      const added = await t.call("POST", "/clusters/hpc1/users", { name: "alice", password: PASSWORD });
      const stored = c.secret(secretName);
      const key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt0Q2cXw1b1oQeSg7e2oU1v5w4eXQ8oYb2v1Y1kP5Wm alice@laptop";
      const passwd = await t.call("PUT", "/clusters/hpc1/users/alice/credentials", { sshKey: key });
      const merged = c.secret(secretName);
      const deleted = await t.call("DELETE", "/clusters/hpc1/users/alice");

      // Assess
      expect(added.status).toBe(200);
      expect(added.body).toMatchObject({ name: "alice", uid: 21000, hasPassword: true });
      expect(JSON.parse(stored?.value ?? "{}")).toEqual({ password: PASSWORD });
      expect(stored?.tags).toMatchObject({
        "nowscale:cluster": "hpc1",
        "nowscale:managed": "true",
        "nowscale:secret-kind": "cluster-user",
        "nowscale:vpc": "vpc-hpc1",
      });
      const sets = c.ran().filter((r) => r.words[1] === "set-users");
      expect(sets).toHaveLength(3);
      expect(JSON.parse(sets[0]?.stdin ?? "{}")).toEqual({
        users: [{ name: "alice", uid: 21000, enabled: true, secret: `${prefix}${secretName}` }],
        purge: [],
      });
      expect(JSON.stringify(c.ran())).not.toContain(PASSWORD);
      expect(passwd.status).toBe(200);
      expect(passwd.body).toMatchObject({ hasPassword: true, hasKey: true });
      expect(JSON.parse(merged?.value ?? "{}")).toEqual({ password: PASSWORD, sshKey: key });
      expect(deleted.status).toBe(200);
      expect(JSON.parse(sets[2]?.stdin ?? "{}")).toEqual({ users: [], purge: [] });
      expect(c.secret(secretName)).toBeUndefined();
      const record = await t.store.getCluster("hpc1");
      expect(JSON.stringify(record)).not.toContain(PASSWORD);
      expect(record?.users?.[0]).toMatchObject({ name: "alice", hasPassword: false });
      expect(record?.users?.[0]?.secretId).toBeUndefined();
    } finally {
      await c.close();
    }
  });

  it("a master that fails set-users leaves no secret behind and no user in the record", async () => {
    // Prepare
    const c = await make();
    try {
      const t = await bed(c);
      failSetUsers = true;

      // Act
      const added = await t.call("POST", "/clusters/hpc1/users", { name: "alice", password: PASSWORD });

      // Assess
      expect(added.status).toBe(502);
      expect(added.body.error).toContain("useradd failed");
      expect(c.secret(secretName)).toBeUndefined();
      expect(c.secretCalls().some((s) => s.startsWith("CreateSecret"))).toBe(true);
      expect((await t.store.getCluster("hpc1"))?.users ?? []).toEqual([]);
    } finally {
      failSetUsers = false;
      await c.close();
    }
  });

  it("storage add tells the running master over its run-command channel", async () => {
    // Prepare
    const c = await make();
    try {
      const t = await bed(c);

      // Act
      const added = await t.call("POST", "/clusters/hpc1/storage", DATA);

      // Assess
      expect(added.status).toBe(200);
      expect(added.body.runningNodes).toBe("synced");
      const told = c.ran().filter((r) => r.words[1] === "set-node-storage");
      expect(told).toHaveLength(1);
      expect(JSON.parse(told[0]?.stdin ?? "{}").storage).toEqual([DATA]);
    } finally {
      await c.close();
    }
  });
});

describe("users on a cluster whose agent channel cannot manage users", () => {
  it("is refused (501) before any secret is stored", async () => {
    // Prepare
    const c = await tencentCase();
    try {
      const t = await bed(c);
      const real = t.deps.runtime;
      t.deps.runtime = async (record) => {
        const { provider, agent } = await real(record);
        // The channel without set-users (its other calls as they are).
        return {
          provider,
          agent: Object.assign(Object.create(agent) as AgentChannel, { setUsers: undefined }),
        };
      };

      // Act
      const added = await t.call("POST", "/clusters/hpc1/users", { name: "alice", password: PASSWORD });

      // Assess
      expect(added.status).toBe(501);
      expect(added.body.error ?? added.body.message).toContain("cannot manage users (nothing was stored)");
      expect(c.secretCalls()).toEqual([]);
      expect((await t.store.getCluster("hpc1"))?.users ?? []).toEqual([]);
    } finally {
      await c.close();
    }
  });
});
