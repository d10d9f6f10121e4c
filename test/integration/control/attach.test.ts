import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readySetup } from "../../../lib/agent-channels/fake.js";
import { LocalWorkflowStarter } from "../../../lib/local/workflows.js";
import { AgentUnreachableError } from "../../../lib/ports/agent-channel.js";
import { CLUSTER_TAG, QUEUE_TAG } from "../../../lib/ports/tags.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { type ApiBed, apiBed, apiBedWith, snapshot, VALID_ATTACH } from "../../support/api-bed.js";
import { CONFIG, T0 } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { FakeAgent as FakeMasterAgent } from "../workflow/harness.js";

/**
 * Attaching an existing Slurm master (`POST /clusters/attach`) and detaching it (`POST .../detach`, or
 * DELETE): every check before anything is stored, one RUNNING record after, and a detach that retires
 * only what NowScale launched, through the real deletion workflow (local runner), never the master.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

// biome-ignore lint/suspicious/noExplicitAny: the tests poke bad values into a body
type MutableBody = any;

/** The API bed with the fake agent as the master being attached. */
async function attachBed(): Promise<ApiBed> {
  const t = await apiBed(db);
  t.deps.attach = { probe: async () => t.agent };
  return t;
}

describe("attach", () => {
  it("attaches a ready master: one RUNNING record, origin attached, what was checked in the answer", async () => {
    // Prepare
    const t = await attachBed();
    // Act
    const res = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    const stored = await t.store.getCluster(res.body.clusterId);
    const events = await t.store.listEvents(res.body.clusterId);
    // Assess
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: "RUNNING", origin: "attached", agent: { kind: "http" } });
    expect(res.body.checks.map((c: { check: string }) => c.check)).toEqual(["agent", "slurm", "partition"]);
    expect(res.body.checks[2].message).toBe("partition compute takes nodes through NodeSet nowscale_compute");
    expect(res.body.userMust.join("\n")).toContain("not checked");
    expect(stored).toMatchObject({
      origin: "attached",
      status: "RUNNING",
      agent: {
        kind: "http",
        url: "http://10.0.0.5:8787",
        keySecretArn: "nowscale/attached/theirs/agent-key",
      },
      attachment: {
        channel: "http",
        controllerAddress: "10.0.0.5",
        controllerPort: 6817,
        mungeKeySecret: "nowscale/attached/theirs/munge-key",
        slurmVersion: "22.05.8",
        attachedAt: T0,
      },
    });
    expect(stored?.resources).toEqual([]);
    expect(t.workflows.started).toEqual([]);
    expect(events[0]?.message).toContain("attached: Slurm 22.05.8, slurmctld 10.0.0.5:6817");
    expect(t.agent.calls.map((c) => c.action)).toEqual(["health", "slurmSetup"]);
  });

  it("refuses bad input with 400 naming the field, and changes nothing", async () => {
    // Prepare
    const t = await attachBed();
    const before = await snapshot(db, t.tables);
    const noUrl = structuredClone(VALID_ATTACH) as MutableBody;
    delete noUrl.master.url;
    const badUrl = structuredClone(VALID_ATTACH) as MutableBody;
    badUrl.master.url = "http://user:pw@10.0.0.5:8787/x";
    const badSecret = structuredClone(VALID_ATTACH) as MutableBody;
    badSecret.master.mungeKeySecret = "a;rm -rf /";
    const ssmNoId = structuredClone(VALID_ATTACH) as MutableBody;
    ssmNoId.master = { channel: "ssm", mungeKeySecret: "k" };
    const awsNoNetwork = { ...structuredClone(VALID_ATTACH), cloud: "aws", region: "us-east-1" };
    const tencentSecret = structuredClone(awsNoNetwork) as MutableBody;
    tencentSecret.cloud = "tencent";
    tencentSecret.network = { subnetIds: ["subnet-1"], securityGroupIds: ["sg-1"] };
    // Act
    const answers = {
      noUrl: await t.call("POST", "/clusters/attach", noUrl),
      badUrl: await t.call("POST", "/clusters/attach", badUrl),
      badSecret: await t.call("POST", "/clusters/attach", badSecret),
      ssmNoId: await t.call("POST", "/clusters/attach", ssmNoId),
      awsNoNetwork: await t.call("POST", "/clusters/attach", awsNoNetwork),
      tencentSecret: await t.call("POST", "/clusters/attach", tencentSecret),
      unknown: await t.call("POST", "/clusters/attach", { ...VALID_ATTACH, extra: 1 }),
      badConfig: await t.call("POST", "/clusters/attach", {
        ...VALID_ATTACH,
        autoscaling: { ...CONFIG, queueConfigs: [{ queueName: "a;b", expansionNodeConfigs: [] }] },
      }),
    };
    // Assess
    const paths = Object.fromEntries(
      Object.entries(answers).map(([k, a]) => [
        k,
        [a.status, a.body.issues.map((i: { path: string }) => i.path)],
      ]),
    );
    expect(paths).toEqual({
      noUrl: [400, ["master.url"]],
      badUrl: [400, ["master.url"]],
      badSecret: [400, ["master.mungeKeySecret"]],
      ssmNoId: [400, ["master.instanceId"]],
      awsNoNetwork: [400, ["network.subnetIds", "network.securityGroupIds"]],
      tencentSecret: [400, ["master.mungeKeySecret"]],
      unknown: [400, ["extra"]],
      badConfig: [400, expect.arrayContaining(["autoscaling.queueConfigs[0].queueName"])],
    });
    expect(answers.noUrl.body.error).toContain("master.url: the http channel needs the agent's URL");
    expect(await snapshot(db, t.tables)).toBe(before);
    expect(t.agent.calls).toEqual([]);
  });

  it("an unreachable agent is 422 naming master.url with what to check, and nothing is stored", async () => {
    // Prepare
    const t = await attachBed();
    const before = await snapshot(db, t.tables);
    t.agent.outage = "agent";
    const ssm = {
      ...structuredClone(VALID_ATTACH),
      master: { channel: "ssm", instanceId: "mi-0abc", mungeKeySecret: "k" },
    };
    // Act
    const http = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    const overSsm = await t.call("POST", "/clusters/attach", ssm);
    // Assess
    expect(http.status).toBe(422);
    expect(http.body.issues).toEqual([
      { path: "master.url", message: expect.stringContaining("fake agent is down") },
    ]);
    expect(http.body.error).toContain("nowscale-agent install");
    expect(http.body.error).toContain("401: it does not");
    expect(overSsm.status).toBe(422);
    expect(overSsm.body.issues[0].path).toBe("master.instanceId");
    expect(overSsm.body.error).toContain("mi-0abc is online in SSM");
    expect(await snapshot(db, t.tables)).toBe(before);
  });

  it("a Slurm that is not ready is 422 naming the partition's queue or the master; nothing is stored", async () => {
    // Prepare
    const t = await attachBed();
    const before = await snapshot(db, t.tables);
    const twoQueues = {
      ...VALID_ATTACH,
      autoscaling: {
        ...CONFIG,
        queueConfigs: [
          ...(CONFIG.queueConfigs ?? []),
          { queueName: "burst", expansionNodeConfigs: [{ zone: "zone-a", instanceType: "c5.xlarge" }] },
        ],
      },
    };
    // Act: burst has no NodeSet; then configless is off; then Slurm is 21.08; then slurmctld is down.
    const noNodeSet = await t.call("POST", "/clusters/attach", twoQueues);
    t.agent.setup = { ...readySetup(["compute"]), slurmctldParameters: [] };
    const notConfigless = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    t.agent.setup = { ...readySetup(["compute"]), slurmVersion: "21.08.8" };
    const old = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    t.agent.setup = readySetup(["compute"]);
    t.agent.outage = "slurmctld";
    const down = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    // Assess
    expect(noNodeSet.status).toBe(422);
    expect(noNodeSet.body.issues).toEqual([
      {
        path: "autoscaling.queueConfigs[1].queueName",
        message: "slurmctld has no partition burst (it has compute)",
      },
    ]);
    expect(notConfigless.body.issues).toEqual([
      { path: "master", message: expect.stringContaining("SlurmctldParameters lacks enable_configless") },
    ]);
    expect(old.body.issues[0].message).toContain("Slurm 21.08.8 is older than 22.05");
    expect(down.status).toBe(422);
    expect(down.body.error).toContain("slurmctld did not answer");
    expect(await snapshot(db, t.tables)).toBe(before);
  });

  it("a master already attached is 409 naming the cluster; a second master attaches beside it", async () => {
    // Prepare
    const t = await attachBed();
    const first = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    // Act
    const again = await t.call("POST", "/clusters/attach", { ...VALID_ATTACH, name: "again" });
    const other = await t.call("POST", "/clusters/attach", {
      ...VALID_ATTACH,
      master: { ...VALID_ATTACH.master, url: "http://10.0.0.6:8787" },
    });
    // Assess
    expect(first.status).toBe(201);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe(
      `this master is already attached as cluster ${first.body.clusterId}: detach it first`,
    );
    expect(other.status).toBe(201);
    expect((await t.store.listClusters()).map((c) => c.name)).toEqual(["theirs", "theirs"]);
  });

  it("DELETE and detach of an attached cluster start the deletion workflow; detach of a created one is 409", async () => {
    // Prepare
    const t = await attachBed();
    const attached = (await t.call("POST", "/clusters/attach", VALID_ATTACH)).body.clusterId as string;
    const created = await t.runningCluster();
    // Act
    const detach = await t.call("POST", `/clusters/${attached}/detach`);
    const refused = await t.call("POST", `/clusters/${created}/detach`);
    const withBody = await t.call("POST", `/clusters/${attached}/detach`, {});
    // Assess
    expect(detach.status).toBe(202);
    expect(detach.body).toMatchObject({ status: "DELETING", origin: "attached" });
    expect(t.workflows.started.map((s) => s.name)).toEqual(["create-c-2", `delete-${attached}-2`]);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toContain("was created by NowScale: DELETE deletes it");
    expect(withBody.status).toBe(400);
  });

  it("the documented example (examples/attach-aws.json, a hybrid mi- master over SSM) attaches", async () => {
    // Prepare
    const t = await attachBed();
    t.agent.setup = readySetup(["burst"]);
    const example = JSON.parse(
      readFileSync(new URL("../../../examples/attach-aws.json", import.meta.url), "utf8"),
    );
    // Act
    const res = await t.call("POST", "/clusters/attach", example);
    // Assess
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.agent).toEqual({ kind: "ssm" });
    expect(res.body.attachment).toMatchObject({
      channel: "ssm",
      instanceId: "mi-0123456789abcdef0",
      controllerAddress: "10.20.0.5",
      subnetIds: ["subnet-0aaaaaaaaaaaaaaa1"],
      securityGroupIds: ["sg-0aaaaaaaaaaaaaaa1"],
    });
    // Over SSM the setup's answer is the round trip: no separate health call.
    expect(t.agent.calls.map((c) => c.action)).toEqual(["slurmSetup"]);
  });

  it.each([
    ["attach-tencent.json", "tat", "ins-1a2b3c4d"],
    ["attach-alibaba.json", "cloud-assistant", "i-bp1a2b3c4d5e6f7g8h9i"],
  ])(
    "the documented example examples/%s attaches over its cloud's run-command channel",
    async (file, channel, instanceId) => {
      // Prepare
      const t = await attachBed();
      t.agent.setup = readySetup(["burst"]);
      const example = JSON.parse(readFileSync(new URL(`../../../examples/${file}`, import.meta.url), "utf8"));
      // Act
      const res = await t.call("POST", "/clusters/attach", example);
      // Assess
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.agent).toEqual({ kind: channel });
      expect(res.body.attachment).toMatchObject({ channel, instanceId, controllerAddress: "10.20.0.5" });
      expect(await t.store.getCluster(res.body.clusterId)).toMatchObject({
        agent: { kind: channel, instanceId },
      });
      expect(t.agent.calls.map((c) => c.action)).toEqual(["slurmSetup"]);
    },
  );

  it("without attach ports the route is 501 (a control plane that cannot reach masters)", async () => {
    // Prepare
    const t = await apiBed(db);
    // Act
    const res = await t.call("POST", "/clusters/attach", VALID_ATTACH);
    // Assess
    expect(res.status).toBe(501);
    expect(await t.store.listClusters()).toEqual([]);
  });
});

describe("detach through the real deletion workflow (local runner)", () => {
  async function detachBed(resources: FakeClusterResources = new FakeClusterResources()) {
    const t = await apiBedWith(db, ({ store, clock, provider }) => {
      const lifecycle = {
        store: new StateStoreLifecycleStore(store, clock),
        resources,
        provider: () => provider,
        agent: new FakeMasterAgent(clock),
        clock,
        controlPlane: { store, runtime: async () => ({ provider, agent: bedAgent() }) },
      };
      return new LocalWorkflowStarter(lifecycle, 8787, () => undefined, 5);
    });
    const bedAgent = () => t.agent;
    t.deps.attach = { probe: async () => t.agent };
    return t;
  }

  it("retires only NowScale's nodes, waits for a running job, leaves the master and the user's nodes, then DELETED", async () => {
    // Prepare: the user's master is an instance of the same cloud, even tagged with the cluster's id
    // (the worst case); it predates the attach.
    const t = await detachBed();
    const id = (await t.call("POST", "/clusters/attach", VALID_ATTACH)).body.clusterId as string;
    const master = t.provider.fakeCloud.seed({
      instanceType: "c5.xlarge",
      zone: "zone-a",
      launchedAt: T0 - 86_400_000,
      tags: { [CLUSTER_TAG]: id, [QUEUE_TAG]: "compute" },
    });
    const launched = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 2 });
    const [idle, busy] = launched.body.nodes as [string, string];
    t.agent.join(idle, "compute", "c5.xlarge", "zone-a");
    t.agent.join(busy, "compute", "c5.xlarge", "zone-a");
    const running = t.agent.nodes.find((n) => n.name === busy);
    if (running !== undefined) Object.assign(running, { state: "ALLOCATED", cpusAllocated: 4 });
    t.agent.placeholders = ["ph-0123456789abcdef"];
    // The user's own node: no record, no NowScale features.
    t.agent.nodes.push({
      ...structuredClone(t.agent.nodes[0]),
      name: "own1",
      features: ["mine"],
      queue: "compute",
    } as never);
    // Act: detach; once the busy node is drained its job ends.
    const res = await t.call("DELETE", `/clusters/${id}`);
    await until(() => t.agent.calls.some((c) => c.action === "drain" && c.node === busy));
    const terminatedWhileBusy = t.provider.fakeCloud.get(busy)?.state;
    if (running !== undefined) Object.assign(running, { state: "DRAINED", cpusAllocated: 0 });
    await t.workflows.idle();
    // Assess
    expect(res.status).toBe(202);
    expect(terminatedWhileBusy).toBe("RUNNING");
    expect((await t.store.getCluster(id))?.status).toBe("DELETED");
    expect(t.provider.fakeCloud.get(idle)?.state).toBe("TERMINATED");
    expect(t.provider.fakeCloud.get(busy)?.state).toBe("TERMINATED");
    expect(t.provider.fakeCloud.get(master.id)?.state).toBe("RUNNING");
    const terminated = t.provider.calls.flatMap((c) => (c.method === "terminate" ? c.instanceIds : []));
    expect(terminated).not.toContain(master.id);
    expect(t.agent.nodes.map((n) => n.name)).toEqual(["own1"]);
    expect(
      t.agent.calls.filter((c) => c.action === "drain").map((c) => (c as { node: string }).node),
    ).not.toContain("own1");
    expect(t.agent.placeholders).toEqual([]);
    expect(await t.store.listNodes(id)).toEqual([]);
    // The claim is released: the master can be attached again.
    expect((await t.call("POST", "/clusters/attach", VALID_ATTACH)).status).toBe(201);
  });

  it("deletes the users' secrets of the detached cluster once its nodes are retired, and no other's", async () => {
    // Prepare: users made on the attached master left their secrets in NowScale's store
    const resources = new WithUserSecrets();
    const t = await detachBed(resources);
    const id = (await t.call("POST", "/clusters/attach", VALID_ATTACH)).body.clusterId as string;
    const launched = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 1 });
    const node = launched.body.nodes[0] as string;
    t.agent.join(node, "compute", "c5.xlarge", "zone-a");
    resources.nodesLeft = () => (t.provider.fakeCloud.get(node)?.state === "TERMINATED" ? 0 : 1);
    resources.userSecrets.set(`nowscale/${id}/users/alice`, id);
    resources.userSecrets.set(`nowscale/${id}/users/bob`, id);
    resources.userSecrets.set("nowscale/other-1/users/alice", "other-1");
    // The record names alice's secret (a listing may not show a user added just before)
    const record = await t.store.getCluster(id);
    const alice = { name: "alice", uid: 2001, enabled: true, createdAt: 1, hasPassword: true, hasKey: false };
    await t.store.updateCluster(id, record?.version ?? 0, {
      users: [
        { ...alice, secretId: `arn:aws:secretsmanager:us-east-1:1:secret:nowscale/${id}/users/alice-AbCdEf` },
      ],
      now: 1,
    });
    // Act
    await t.call("DELETE", `/clusters/${id}`);
    await t.workflows.idle();
    // Assess
    expect((await t.store.getCluster(id))?.status).toBe("DELETED");
    expect([...resources.userSecrets.keys()]).toEqual(["nowscale/other-1/users/alice"]);
    // After the node was retired, not while it ran; with the ids the record names.
    expect(resources.userSecretsGoneWhen).toEqual([
      {
        clusterId: id,
        nodesLeft: 0,
        recorded: [`arn:aws:secretsmanager:us-east-1:1:secret:nowscale/${id}/users/alice-AbCdEf`],
      },
    ]);
    expect(await t.store.listNodes(id)).toEqual([]);
  });

  it("an unreachable agent retires nothing; the detach goes on once it answers", async () => {
    // Prepare
    const t = await detachBed();
    const id = (await t.call("POST", "/clusters/attach", VALID_ATTACH)).body.clusterId as string;
    const launched = await t.call("POST", `/clusters/${id}/nodes`, { queue: "compute", count: 1 });
    const node = launched.body.nodes[0] as string;
    t.agent.join(node, "compute", "c5.xlarge", "zone-a");
    t.agent.outage = "agent";
    // Act
    await t.call("DELETE", `/clusters/${id}`);
    await until(() => t.agent.calls.filter((c) => c.action === "report").length >= 5);
    const duringOutage = t.provider.fakeCloud.get(node)?.state;
    t.agent.outage = "none";
    await t.workflows.idle();
    // Assess
    expect(duringOutage).toBe("RUNNING");
    expect(t.provider.fakeCloud.get(node)?.state).toBe("TERMINATED");
    expect((await t.store.getCluster(id))?.status).toBe("DELETED");
  });

  it("the teardown steps refuse an attached cluster even when run by hand", async () => {
    // Prepare
    const t = await detachBed();
    const id = (await t.call("POST", "/clusters/attach", VALID_ATTACH)).body.clusterId as string;
    const { runLifecycleTask } = await import("../../../lib/workflow/tasks/dispatch.js");
    const lifecycle = {
      store: new StateStoreLifecycleStore(t.store, t.clock),
      resources: new FakeClusterResources(),
      provider: () => t.provider,
      agent: new FakeMasterAgent(t.clock),
      clock: t.clock,
    };
    // Act
    const outcomes = await Promise.all(
      ["drain", "deleteSecrets", "deleteNetwork"].map((task) =>
        runLifecycleTask(lifecycle, { task, clusterId: id }).then(
          () => "ran",
          (e: Error) => e.name,
        ),
      ),
    );
    const terminate = await runLifecycleTask(lifecycle, {
      task: "terminateInstances",
      clusterId: id,
      which: "all",
    }).then(
      () => "ran",
      (e: Error) => e.name,
    );
    // Assess
    expect([...outcomes, terminate]).toEqual(Array(4).fill("AttachedClusterError"));
    expect(t.provider.calls.filter((c) => c.method === "terminate")).toEqual([]);
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new AgentUnreachableError("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The fake cloud's resources plus users' secrets in its store (name → cluster), as AWS's are found by tag. */
class WithUserSecrets extends FakeClusterResources {
  readonly userSecrets = new Map<string, string>();
  readonly userSecretsGoneWhen: { clusterId: string; nodesLeft: number; recorded: string[] }[] = [];
  nodesLeft: () => number = () => -1;

  async deleteUserSecrets(clusterId: string, recorded: readonly string[]): Promise<string[]> {
    const names = [...this.userSecrets].filter(([, c]) => c === clusterId).map(([n]) => n);
    for (const n of names) this.userSecrets.delete(n);
    this.userSecretsGoneWhen.push({ clusterId, nodesLeft: this.nodesLeft(), recorded: [...recorded] });
    return names;
  }
}
