import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeAgent } from "../../../lib/agent-channels/fake.js";
import {
  type RunCommandCloudAccess,
  runCommandAgentChannel,
  runCommandAttachNetwork,
} from "../../../lib/aws/run-command-clouds.js";
import { computeUserData } from "../../../lib/control/compute-user-data.js";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import { LocalWorkflowStarter } from "../../../lib/local/workflows.js";
import type { AgentChannel } from "../../../lib/ports/agent-channel.js";
import type { CloudProvider } from "../../../lib/ports/cloud-provider.js";
import type { ClusterRecord } from "../../../lib/ports/state-store.js";
import { CLUSTER_TAG } from "../../../lib/ports/tags.js";
import { AlibabaClusterResources } from "../../../lib/providers/alibaba-ecs/cluster-resources.js";
import { createAlibabaEcsProvider } from "../../../lib/providers/alibaba-ecs/index.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { FakeCloud } from "../../../lib/providers/fake/index.js";
import { createTencentCvmProvider } from "../../../lib/providers/tencent-cvm/index.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { apiBedWith, snapshot } from "../../support/api-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";
import {
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../../unit/providers/simulators/alibaba-ecs.js";
import { shellTatAgent } from "../../unit/providers/simulators/tat-shell-agent.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../../unit/providers/simulators/tencent-cvm.js";
import { FakeAgent as FakeMasterAgent } from "../workflow/harness.js";

/**
 * Attaching an existing Slurm master on Tencent Cloud (TAT) and on Alibaba Cloud (Cloud Assistant),
 * through the API on dynalite: the probe and every later scale cycle and detach reach the master's agent
 * through the real channels (TatAgentChannel, CloudAssistantAgentChannel) and the official SDKs, against
 * the loopback simulators (signatures and every request checked against the SDK models). On the master,
 * the command runs in sh (the channel's quoting and payload pipeline really run) and a fake agent answers
 * from its Slurm state (FakeAgent). The network check reads the simulated account's VPC, subnets and
 * security groups. The master is seeded in the simulated cloud and must stay untouched.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const MASTER_IP = "10.0.0.5";
const COMPUTE_CIDR = "10.0.1.0/24";

/** The fake agent's answer to one command line the channel sent: the agent's CLI, as on the master. */
function agentAnswer(
  agent: FakeAgent,
  words: string[],
  stdin: string,
): { exitCode: number; output: string } | undefined {
  if (agent.outage === "agent") return undefined;
  // words: the agent's path, then its action and arguments (nowscale-agent <action> …).
  const [, action = "", node = ""] = words;
  if (agent.outage === "slurmctld") return { exitCode: 2, output: "" };
  if (action === "slurm-setup") return { exitCode: 0, output: JSON.stringify(agent.setup) };
  if (action === "report") return { exitCode: 0, output: JSON.stringify(reportOf(agent)) };
  if (action === "drain") {
    void agent.drain(node, words[4] ?? "");
    return { exitCode: 0, output: "" };
  }
  if (action === "resume" || action === "delete-node") {
    void (action === "resume" ? agent.resume(node) : agent.deleteNode(node));
    return { exitCode: 0, output: "" };
  }
  if (action === "sync-placeholders") {
    const wanted = (JSON.parse(stdin) as { placeholders: { name: string }[] }).placeholders.map(
      (p) => p.name,
    );
    const before = agent.placeholders ?? [];
    agent.placeholders = wanted;
    const answer = {
      created: wanted.filter((n) => !before.includes(n)),
      removed: before.filter((n) => !wanted.includes(n)),
    };
    return { exitCode: 0, output: JSON.stringify(answer) };
  }
  if (action === "set-job-notes") return { exitCode: 0, output: "" };
  return { exitCode: 64, output: "" };
}

/** FakeAgent.report()'s answer, built at once (the simulators answer commands synchronously). */
function reportOf(agent: FakeAgent) {
  return {
    schemaVersion: 1,
    agentVersion: "0.1.0",
    scheduler: "slurm",
    generatedAt: new Date().toISOString(),
    status: "ok",
    slurmVersion: "22.05.8",
    source: "json",
    jobs: agent.jobs,
    nodes: agent.nodes,
    unmanagedNodes: [],
    ignored: { jobs: 0, nodes: 0, examples: [] },
    ...(agent.placeholders === undefined ? {} : { placeholders: agent.placeholders }),
    partitions: agent.partitions.map((name, i) => ({ name, state: "UP", default: i === 0 })),
  };
}

interface CloudWorld {
  cloud: FakeCloud;
  /** The master's agent, answering over the cloud's run-command channel. */
  master: FakeAgent;
  masterId: string;
  access: RunCommandCloudAccess;
  request: Record<string, unknown> & {
    master: Record<string, unknown>;
    network: { subnetIds: string[]; securityGroupIds: string[] };
  };
  /** The provider the control plane's runtime makes for the attached cluster (lib/aws/runtime.ts). */
  provider(cluster: ClusterRecord): Promise<CloudProvider>;
  /** Makes the master's group admit slurmctld's port from the compute subnet, or not. */
  admit(open: boolean): void;
  /** The commands the master ran, in order (their actions). */
  ran(): string[];
  close(): Promise<void>;
}

async function tencentWorld(): Promise<CloudWorld> {
  const master = new FakeAgent({ now: () => Date.now(), sleep: async () => undefined });
  const cloud = new FakeCloud({ idPrefix: "ins-" });
  const sim: CvmSimulator = await startCvmSimulator(cloud);
  const s = sim.services;
  s.tatPolls = 0;
  s.vpcs.set("vpc-theirs01", {
    VpcId: "vpc-theirs01",
    VpcName: "theirs",
    CidrBlock: "10.0.0.0/16",
    tags: {},
  });
  for (const [id, cidr] of [
    ["subnet-master01", "10.0.0.0/24"],
    ["subnet-compute1", COMPUTE_CIDR],
  ] as const)
    s.subnets.set(id, {
      SubnetId: id,
      VpcId: "vpc-theirs01",
      CidrBlock: cidr,
      Zone: "ap-guangzhou-3",
      SubnetName: id,
      tags: {},
    });
  const group = (id: string) => ({
    SecurityGroupId: id,
    SecurityGroupName: id,
    tags: {},
    policies: { Ingress: [] as unknown[], Egress: [] as unknown[] },
  });
  s.securityGroups.set("sg-master01", group("sg-master01"));
  s.securityGroups.set("sg-compute1", group("sg-compute1"));
  const seeded = cloud.seed({
    id: "ins-master01",
    instanceType: "S5.LARGE8",
    zone: "ap-guangzhou-3",
    subnetId: "subnet-master01",
    privateIp: MASTER_IP,
    launchedAt: Date.now() - 86_400_000,
    tags: {},
  });
  s.instanceGroups.set(seeded.id, ["sg-master01"]);
  const tat = shellTatAgent((instanceId, words, stdin) =>
    instanceId === seeded.id ? agentAnswer(master, words, stdin) : undefined,
  );
  s.tatAgent = tat;
  const credential = { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY };
  const access: RunCommandCloudAccess = {
    clock: { now: () => Date.now(), sleep: async () => undefined },
    tencentCredential: async () => credential,
    alibabaCredential: async () => {
      throw new Error("the Alibaba key was read for a Tencent master");
    },
    tencentEndpoint: sim.endpoint,
    tencentProtocol: "http://",
  };
  return {
    cloud,
    master,
    masterId: seeded.id,
    access,
    request: {
      name: "theirs",
      cloud: "tencent",
      region: "ap-guangzhou",
      master: { channel: "tat", instanceId: seeded.id, mungeKeySecret: "theirs-munge-key" },
      network: { subnetIds: ["subnet-compute1"], securityGroupIds: ["sg-compute1"] },
      computeImageId: "img-debian12",
      autoscaling: autoscaling("ap-guangzhou-3", "S5.LARGE8", "subnet-compute1", "tencent"),
    },
    provider: async (cluster) =>
      createTencentCvmProvider({
        region: cluster.placement.region,
        securityGroupIds: cluster.attachment?.securityGroupIds ?? [],
        // As the runtime does: the compute VPC the attach recorded (CVM launches into a subnet name it).
        ...(cluster.attachment?.vpcId === undefined ? {} : { vpcId: cluster.attachment.vpcId }),
        credential,
        endpoint: sim.endpoint,
        protocol: "http://",
      }),
    admit: (open) => {
      const g = s.securityGroups.get("sg-master01");
      if (g !== undefined)
        g.policies.Ingress = open
          ? [{ Protocol: "TCP", Port: "6817", CidrBlock: COMPUTE_CIDR, Action: "ACCEPT" }]
          : [{ Protocol: "TCP", Port: "22", CidrBlock: "0.0.0.0/0", Action: "ACCEPT" }];
    },
    ran: () => tat.ran.map((r) => r.words[1] ?? ""),
    close: () => sim.close(),
  };
}

async function alibabaWorld(): Promise<CloudWorld> {
  const master = new FakeAgent({ now: () => Date.now(), sleep: async () => undefined });
  const cloud = new FakeCloud({ idPrefix: "i-" });
  const shell = shellTatAgent((instanceId, words, stdin) =>
    instanceId === "i-bp1master0001" ? agentAnswer(master, words, stdin) : undefined,
  );
  const sim: EcsSimulator = await startEcsSimulator(cloud, {
    defaultVpc: false,
    // No agent answering: the command is not found, as Cloud Assistant reports a missing binary.
    runCommand: (instanceId, script) =>
      shell(instanceId, script) ?? { exitCode: 127, output: "nowscale-agent: not found\n" },
  });
  const w = sim.world;
  w.vpcs.set("vpc-theirs01", {
    id: "vpc-theirs01",
    cidr: "10.0.0.0/16",
    name: "theirs",
    status: "Available",
    pendingDescribes: 0,
    tags: new Map(),
  });
  for (const [id, cidr] of [
    ["vsw-master01", "10.0.0.0/24"],
    ["vsw-compute1", COMPUTE_CIDR],
  ] as const)
    w.vSwitches.set(id, { id, vpcId: "vpc-theirs01", zoneId: "cn-hangzhou-h", cidr, tags: new Map() });
  for (const id of ["sg-master01", "sg-compute1"])
    w.groups.set(id, { id, vpcId: "vpc-theirs01", name: id, tags: new Map(), rules: [] });
  const seeded = cloud.seed({
    id: "i-bp1master0001",
    instanceType: "ecs.c7.large",
    zone: "cn-hangzhou-h",
    subnetId: "vsw-master01",
    privateIp: MASTER_IP,
    launchedAt: Date.now() - 86_400_000,
    tags: {},
  });
  w.placement.set(seeded.id, { vSwitchId: "vsw-master01", groupIds: ["sg-master01"] });
  const credential = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };
  const access: RunCommandCloudAccess = {
    clock: { now: () => Date.now(), sleep: async () => undefined },
    tencentCredential: async () => {
      throw new Error("the Tencent key was read for an Alibaba master");
    },
    alibabaCredential: async () => credential,
    alibabaEndpoints: { ecs: sim.endpoint, vpc: sim.endpoint },
    alibabaProtocol: "http",
  };
  return {
    cloud,
    master,
    masterId: seeded.id,
    access,
    request: {
      name: "theirs",
      cloud: "alibaba",
      region: "cn-hangzhou",
      master: { channel: "cloud-assistant", instanceId: seeded.id, mungeKeySecret: "theirs-munge-key" },
      network: { subnetIds: ["vsw-compute1"], securityGroupIds: ["sg-compute1"] },
      computeImageId: "debian_12_x64_20G_alibase_20240101.vhd",
      autoscaling: autoscaling("cn-hangzhou-h", "ecs.c7.large", "vsw-compute1", "alibaba"),
    },
    provider: async (cluster) =>
      createAlibabaEcsProvider({
        regionId: cluster.placement.region,
        credential,
        endpoint: sim.endpoint,
        protocol: "http",
        securityGroupIds: cluster.attachment?.securityGroupIds ?? [],
        // As the runtime does: the recorded compute VPC's VSwitches that the attach named.
        vSwitches: (
          await new AlibabaClusterResources({
            regionId: cluster.placement.region,
            credential,
            endpoints: { ecs: sim.endpoint, vpc: sim.endpoint },
            protocol: "http",
          }).vSwitches(cluster.attachment?.vpcId ?? "none")
        ).filter((s) => cluster.attachment?.subnetIds.includes(s.vSwitchId)),
      }),
    admit: (open) => {
      const g = w.groups.get("sg-master01");
      // The groups are apart (no shared group with InnerAccessPolicy Accept): only a rule admits.
      if (g !== undefined)
        g.rules = open
          ? [{ IpProtocol: "TCP", PortRange: "6817/6817", SourceGroupId: "sg-compute1", Policy: "Accept" }]
          : [{ IpProtocol: "TCP", PortRange: "6817/6817", SourceCidrIp: COMPUTE_CIDR, Policy: "Drop" }];
    },
    ran: () => shell.ran.map((r) => r.words[1] ?? ""),
    close: () => sim.close(),
  };
}

function autoscaling(zone: string, instanceType: string, subnetId: string, catalog: string) {
  return {
    catalogs: [catalog],
    expansionBusyTime: 0,
    shrinkIdleTime: 300,
    queueConfigs: [
      { queueName: "compute", maxSize: 4, expansionNodeConfigs: [{ zone, instanceType, subnetId }] },
    ],
  };
}

/** The channel the runtime makes from a recorded endpoint (lib/aws/runtime.ts, channelTo). */
async function recordedChannel(cluster: ClusterRecord, access: RunCommandCloudAccess): Promise<AgentChannel> {
  const a = cluster.agent;
  if (a.kind !== "tat" && a.kind !== "cloud-assistant") throw new Error(`endpoint ${a.kind} recorded`);
  return runCommandAgentChannel(a, cluster.placement.region, access);
}

/** The API on dynalite, attach ports over the world's cloud, detach through the real deletion workflow. */
async function bedFor(world: CloudWorld) {
  const runtime = async (cluster: ClusterRecord) => ({
    provider: await world.provider(cluster),
    agent: await recordedChannel(cluster, world.access),
  });
  const t = await apiBedWith(db, ({ store, clock, provider }) => {
    const lifecycle = {
      store: new StateStoreLifecycleStore(store, clock),
      resources: new FakeClusterResources(),
      provider: () => provider,
      agent: new FakeMasterAgent(clock),
      clock,
      controlPlane: { store, runtime },
    };
    return new LocalWorkflowStarter(lifecycle, 8787, () => undefined, 5);
  });
  t.deps.runtime = runtime;
  t.deps.attach = {
    probe: async (request, endpoint) => {
      if (endpoint.kind !== "tat" && endpoint.kind !== "cloud-assistant")
        throw new Error("not a run command");
      return runCommandAgentChannel(endpoint, request.region, world.access, 20_000);
    },
    network: (request) => runCommandAttachNetwork(request.cloud, request.region, world.access),
  };
  return t;
}

const WORLDS = [
  ["Tencent Cloud over TAT", tencentWorld, "tat"],
  ["Alibaba Cloud over Cloud Assistant", alibabaWorld, "cloud-assistant"],
] as const;

describe.each(WORLDS)("attach on %s", (_name, makeWorld, channel) => {
  let world: CloudWorld;
  afterEach(async () => {
    await world.close();
  });

  it("attaches, scales a pending job onto the cloud over the recorded channel, then detaches; the master untouched", async () => {
    // Prepare
    world = await makeWorld();
    world.admit(true);
    const t = await bedFor(world);
    // Act: attach
    const res = await t.call("POST", "/clusters/attach", world.request);
    const id = res.body.clusterId as string;
    const stored = await t.store.getCluster(id);
    // Assess
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.checks.map((c: { check: string }) => c.check)).toEqual([
      "agent",
      "slurm",
      "partition",
      "network",
      "network",
      "network",
      "network",
    ]);
    expect(res.body.checks[0].message).toContain(
      channel === "tat" ? "over Tencent TAT" : "over Alibaba Cloud Assistant",
    );
    expect(res.body.checks.map((c: { message: string }) => c.message).join("\n")).toContain(
      "let TCP 6817 (slurmctld) in from the compute subnets or security groups",
    );
    expect(stored?.agent).toEqual({ kind: channel, instanceId: world.masterId });
    expect(stored?.attachment).toMatchObject({
      channel,
      instanceId: world.masterId,
      controllerAddress: MASTER_IP,
      vpcId: "vpc-theirs01",
    });
    expect(await t.store.acquireLease(`master#${channel}#${world.masterId}`, "other", 1000, Date.now())).toBe(
      undefined,
    );
    expect(world.ran()).toEqual(["slurm-setup"]);

    // Act: one scale cycle as the scaler runs it, its ports from the recorded cluster (the runtime's).
    world.master.addPending("compute", "42", { cpus: 1, at: t.clock.now() });
    const cluster = (await t.store.getCluster(id)) as ClusterRecord;
    const ports = await t.deps.runtime(cluster);
    const summary = await runScaleCycle(
      id,
      {
        store: t.store,
        clock: t.clock,
        metrics: t.metrics,
        owner: "scaler-1",
        userData: computeUserData,
        ...ports,
      },
      { windowMs: 0 },
    );
    const launched = world.cloud.list(CLUSTER_TAG, id);
    // Assess
    expect(summary.outcome).toBe("done");
    expect(summary.launchedNodes).toBe(1);
    expect(launched.map((i) => i.subnetId)).toEqual([world.request.network.subnetIds[0]]);
    expect(world.ran()).toContain("report");

    // Act: the node joins; then detach (DELETE) through the deletion workflow, the same channel.
    const node = launched[0]?.id ?? "";
    world.master.join(node, "compute", launched[0]?.instanceType ?? "", launched[0]?.zone ?? "");
    world.master.jobs = [];
    const detach = await t.call("DELETE", `/clusters/${id}`);
    await t.workflows.idle();
    // Assess
    expect(detach.status).toBe(202);
    expect((await t.store.getCluster(id))?.status).toBe("DELETED");
    expect(world.cloud.get(node)?.state).toBe("TERMINATED");
    expect(world.cloud.get(world.masterId)?.state).toBe("RUNNING");
    expect(world.master.nodes).toEqual([]);
    expect(world.ran()).toEqual(expect.arrayContaining(["drain", "delete-node"]));
    // The claim is released: the master attaches again.
    expect((await t.call("POST", "/clusters/attach", world.request)).status).toBe(201);
  });

  it("refuses a bad instance id, an unreachable master and a closed security group with the field named; nothing stored", async () => {
    // Prepare
    world = await makeWorld();
    world.admit(false);
    const t = await bedFor(world);
    const before = await snapshot(db, t.tables);
    const badId = structuredClone(world.request);
    // Each a well-formed id of the other cloud: only the channel's own allow-list refuses it.
    badId.master.instanceId = channel === "tat" ? "i-0abc1234" : "ins-abcdefgh";
    const wrongCloud = { ...structuredClone(world.request), cloud: "aws", region: "us-east-1" };
    const noId = structuredClone(world.request);
    delete noId.master.instanceId;
    // Act
    const bad = await t.call("POST", "/clusters/attach", badId);
    const mismatched = await t.call("POST", "/clusters/attach", wrongCloud);
    const missing = await t.call("POST", "/clusters/attach", noId);
    const closed = await t.call("POST", "/clusters/attach", world.request);
    world.master.outage = "agent";
    world.admit(true);
    const unreachable = await t.call("POST", "/clusters/attach", world.request);
    world.master.outage = "none";
    const otherSubnet = structuredClone(world.request);
    otherSubnet.network.subnetIds = ["subnet-nowhere1"];
    const noSubnet = await t.call("POST", "/clusters/attach", otherSubnet);
    // Assess
    expect(bad.status).toBe(400);
    expect(bad.body.issues.map((i: { path: string }) => i.path)).toEqual(["master.instanceId"]);
    expect(mismatched.status).toBe(400);
    expect(mismatched.body.issues.map((i: { path: string }) => i.path)).toContain("master.channel");
    expect(missing.body.issues.map((i: { path: string }) => i.path)).toEqual(["master.instanceId"]);
    expect(closed.status).toBe(422);
    expect(closed.body.issues).toEqual([
      {
        path: "master.instanceId",
        message: expect.stringContaining(
          `the master's security groups (sg-master01) do not let TCP 6817 (slurmctld) in from network.subnetIds[0]`,
        ),
      },
    ]);
    expect(closed.body.error).toContain("add an inbound rule");
    expect(unreachable.status).toBe(422);
    expect(unreachable.body.issues[0].path).toBe("master.instanceId");
    expect(unreachable.body.error).toContain(`check that ${world.masterId} is a running`);
    expect(noSubnet.status).toBe(422);
    expect(noSubnet.body.issues[0]).toMatchObject({ path: "network.subnetIds[0]" });
    expect(await snapshot(db, t.tables)).toBe(before);
    expect(world.cloud.get(world.masterId)?.state).toBe("RUNNING");
    expect(world.cloud.list(CLUSTER_TAG, "c-1")).toEqual([]);
  });
});
