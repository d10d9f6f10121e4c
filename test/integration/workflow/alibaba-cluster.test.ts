import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeAgent as FakeSlurmAgent } from "../../../lib/agent-channels/fake.js";
import { alibabaLifecycleParts } from "../../../lib/alibaba/lifecycle-parts.js";
import type { ConfigInput } from "../../../lib/core/config.js";
import { EcsApi } from "../../../lib/providers/alibaba-ecs/ecs-api.js";
import { AlibabaUserSecrets } from "../../../lib/providers/alibaba-ecs/user-secrets.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import { createClusterDefinition, deleteClusterDefinition } from "../../../lib/workflow/index.js";
import { runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import type { LifecycleDeps } from "../../../lib/workflow/tasks/deps.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import type { CreateClusterRequestInput } from "../../../lib/workflow/tasks/request.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";
import {
  type CommandOutcome,
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "../../unit/providers/simulators/alibaba-ecs.js";

/**
 * A whole cluster on Alibaba Cloud, with the same Step Functions definitions as on AWS, run by the local
 * runner: the real lifecycle tasks with Alibaba's parts (AlibabaClusterResources, the ECS provider, the
 * agent through Cloud Assistant) against the loopback ECS/VPC/KMS simulator (ACS3 signatures and the
 * SDK models checked), the control plane's DynamoDB store on dynalite, and a fake agent answering
 * Cloud Assistant's commands. Every path ends with nothing of the cluster left in the simulated cloud,
 * and the neighbour's network and secret untouched.
 */

const CLUSTER = "ali-1";
const REGION = "cn-hangzhou";
const ZONES = ["cn-hangzhou-h", "cn-hangzhou-i"];
const KEY = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };

const AUTOSCALING: ConfigInput = {
  catalogs: ["alibaba"],
  queueConfigs: [
    {
      queueName: "compute",
      expansionNodeConfigs: [
        { zone: "cn-hangzhou-i", instanceType: "ecs.c7.xlarge", chargeType: "ON_DEMAND" },
      ],
    },
  ],
};

function request(): CreateClusterRequestInput {
  return {
    region: REGION,
    network: { cidr: "10.42.0.0/16", zones: ZONES },
    master: { instanceType: "ecs.c7.xlarge", zone: ZONES[0] as string, imageId: "debian_12_x64_20G_alibase" },
    agentHealthTimeoutSeconds: 120,
  };
}

let db: TestDynamo;
let store: DynamoStateStore;
let sim: EcsSimulator;
let cloud: FakeCloud;
let clock: FakeClock;
/** What the master's shell answers to Cloud Assistant: the fake agent's report, or no agent at all. */
let agentUp: boolean;
let deps: LifecycleDeps;

beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

beforeEach(async () => {
  clock = new FakeClock();
  cloud = new FakeCloud({ idPrefix: "i-bp", clock });
  agentUp = true;
  const report = JSON.stringify(await new FakeSlurmAgent(clock).report());
  const runCommand = (_instanceId: string, script: string): CommandOutcome => {
    if (!agentUp) return { exitCode: 127, output: "sh: 1: node: not found\n" };
    // The only command the lifecycle sends: the report (health check, drain's listing).
    expect(script).toBe("'node' '/opt/nowscale/nowscale-agent.js' 'report'");
    return { exitCode: 0, output: report };
  };
  sim = await startEcsSimulator(cloud, { defaultVpc: false, runCommand });
  // A neighbour: another cluster's network and secret, which nothing here may touch.
  sim.world.vpcs.set("vpc-neighbour", {
    id: "vpc-neighbour",
    cidr: "10.9.0.0/16",
    name: "n",
    status: "Available",
    pendingDescribes: 0,
    tags: new Map([["nowscale:cluster", "other"]]),
  });
  sim.world.secrets.set("nowscale/other/munge-key", {
    name: "nowscale/other/munge-key",
    data: "eA==",
    dataType: "binary",
    tags: new Map([["nowscale:cluster", "other"]]),
  });
  ({ store } = await freshStore(db));
  await store.createCluster({
    clusterId: CLUSTER,
    name: "alibaba one",
    placement: { cloud: "alibaba", region: REGION, imageId: "debian_12_x64_20G_alibase" },
    autoscaling: AUTOSCALING,
    now: clock.now(),
  });
  const parts = await alibabaLifecycleParts({
    credential: async () => KEY,
    endpoints: { ecs: sim.endpoint, vpc: sim.endpoint, kms: sim.endpoint },
    protocol: "http",
    clock,
    ramRoleName: "NowScaleNode",
  })({ region: REGION });
  deps = { ...parts, store: new StateStoreLifecycleStore(store, clock), clock, region: REGION };
});

afterEach(() => sim.close());

function run(kind: "create" | "delete") {
  const definition = kind === "create" ? createClusterDefinition() : deleteClusterDefinition();
  const input = kind === "create" ? { clusterId: CLUSTER, request: request() } : { clusterId: CLUSTER };
  return runWorkflowLocally(definition, input, (i) => runLifecycleTask(deps, i));
}

/** Everything of the cluster still in the simulated cloud. */
function leftovers(): string[] {
  const instances = cloud.live().filter((i) => i.tags["nowscale:cluster"] === CLUSTER);
  return [...sim.world.tagged(CLUSTER), ...instances.map((i) => `instance ${i.id}`)];
}

function neighbourUntouched() {
  expect(sim.world.vpcs.has("vpc-neighbour")).toBe(true);
  expect(sim.world.secrets.has("nowscale/other/munge-key")).toBe(true);
}

/** The compute provider the scaler uses: the cluster's security group, and its VSwitches by zone. */
async function computeProvider(): Promise<ManagedProvider> {
  const [network] = (await deps.resources.list(CLUSTER)).filter((r) => r.kind === "network");
  const group = (await deps.resources.list(CLUSTER)).find((r) => r.kind === "securityGroup");
  if (network?.kind !== "network" || group?.kind !== "securityGroup") throw new Error("no network");
  return new ManagedProvider(
    new EcsApi({
      regionId: REGION,
      credential: KEY,
      endpoint: sim.endpoint,
      protocol: "http",
      securityGroupIds: [group.securityGroupId],
      vSwitches: network.subnetIds.map((id) => ({
        vSwitchId: id,
        zoneId: sim.world.vSwitches.get(id)?.zoneId ?? "",
      })),
    }),
    { clock },
  );
}

describe("a whole cluster on Alibaba Cloud, on the real workflow definitions", () => {
  it("creates, scales up, shrinks and deletes, leaving nothing of the cluster", async () => {
    // Act: create
    const created = await run("create");

    // Assess
    expect(created.status, (await store.getCluster(CLUSTER))?.reason).toBe("SUCCEEDED");
    const record = await store.getCluster(CLUSTER);
    expect(record?.status).toBe("RUNNING");
    expect(record?.resources.map((r) => r.type).sort()).toEqual([
      "masterInstance",
      "secret:agent-hmac-key",
      "secret:munge-key",
      "securityGroup",
      "subnet",
      "subnet",
      "vpc",
    ]);
    const [vpc] = [...sim.world.vpcs.values()].filter((v) => v.tags.get("nowscale:cluster") === CLUSTER);
    const group = [...sim.world.groups.values()][0];
    const [master] = cloud.live();
    expect(master?.tags["nowscale:queue"]).toBe("master");
    expect(sim.world.placement.get(master?.id ?? "")).toEqual({
      vSwitchId: [...sim.world.vSwitches.values()].find((s) => s.zoneId === ZONES[0])?.id,
      groupIds: [group?.id],
    });
    expect(group?.vpcId).toBe(vpc?.id);
    // The master's user data names the secrets, never their values.
    const launchInput = cloud.calls.find((c) => c.operation === "run")?.input as { userData?: string };
    const userData = launchInput.userData;
    expect(userData).toContain("nowscale/ali-1/munge-key");
    for (const secret of sim.world.secrets.values()) expect(userData).not.toContain(secret.data.slice(0, 40));
    // ... read from KMS with the RAM role's key (no AWS CLI), the metadata service kept from jobs.
    expect(userData).toContain("alibaba_secret 'nowscale/ali-1/munge-key'");
    expect(userData).not.toContain("aws secretsmanager");
    expect(userData).toContain("-d 100.100.100.200/32");
    // The health check went through Cloud Assistant.
    expect(sim.callsOf("RunCommand").length).toBeGreaterThan(0);

    // Act: scale up (a candidate with no VSwitch of its own, as the autoscaling configuration has it)
    const compute = await computeProvider();
    const launched = await compute.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: "cycle-1",
      candidates: [{ instanceType: "ecs.c7.xlarge", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
      count: 2,
      allOrNothing: false,
      imageId: "debian_12_x64_20G_alibase",
    });

    // Assess
    expect(launched.instances).toHaveLength(2);
    const zoneI = [...sim.world.vSwitches.values()].find((s) => s.zoneId === "cn-hangzhou-i")?.id;
    expect(launched.instances.map((i) => i.subnetId)).toEqual([zoneI, zoneI]);

    // Act: shrink by one
    await compute.terminate([launched.instances[0]?.id as string]);

    // Assess
    expect(cloud.live().filter((i) => i.tags["nowscale:queue"] === "compute")).toHaveLength(1);

    // Act: a user added while it ran (their secret in KMS, tagged), then delete
    const userSecret = await new AlibabaUserSecrets({
      regionId: REGION,
      credential: KEY,
      endpoints: { kms: sim.endpoint },
      protocol: "http",
    }).put(CLUSTER, "alice", { password: "s3cret-Password-42" });
    expect(sim.world.secrets.has("nowscale/ali-1/users/alice")).toBe(true);
    const deleted = await run("delete");

    // Assess: the user's secret went with the cluster
    expect(userSecret).toBe("alibaba-kms:cn-hangzhou:nowscale/ali-1/users/alice");
    expect(deleted.status, (await store.getCluster(CLUSTER))?.reason).toBe("SUCCEEDED");
    expect((await store.getCluster(CLUSTER))?.status).toBe("DELETED");
    expect(leftovers()).toEqual([]);
    expect(sim.world.secrets.has("nowscale/ali-1/users/alice")).toBe(false);
    neighbourUntouched();
  });

  it("removes network, group and secrets when the master finds no capacity", async () => {
    // Prepare
    sim.world.failNext("RunInstances", 403, "OperationDenied.NoStock", 10);

    // Act
    const result = await run("create");

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/InsufficientCapacity|NoStock/);
    expect(sim.callsOf("CreateSecret")).toHaveLength(2);
    expect(leftovers()).toEqual([]);
    neighbourUntouched();
  });

  it("terminates the master and removes everything when its agent never answers", async () => {
    // Prepare
    agentUp = false;

    // Act
    const result = await run("create");

    // Assess
    expect(result.status).toBe("FAILED");
    expect(cloud.calls.filter((c) => c.operation === "run")).toHaveLength(1);
    expect(leftovers()).toEqual([]);
    neighbourUntouched();
  });

  it("removes the network and group when the secrets cannot be written (a RAM denial, not retried)", async () => {
    // Prepare
    sim.world.failNext("CreateSecret", 403, "Forbidden.RAM", 10);

    // Act
    const result = await run("create");

    // Assess
    expect(result.status).toBe("FAILED");
    expect(result.retried.filter((s) => s === "CreateSecrets")).toEqual([]);
    expect(sim.callsOf("RunInstances")).toEqual([]);
    expect(leftovers()).toEqual([]);
    neighbourUntouched();
  });

  it("finds by tag and removes a VPC made before a VSwitch failed, which nothing had recorded", async () => {
    // Prepare
    sim.world.failNext("CreateVSwitch", 400, "InvalidCidrBlock.Malformed", 10);

    // Act
    const result = await run("create");

    // Assess
    expect(result.status).toBe("FAILED");
    expect(sim.callsOf("CreateVpc")).toHaveLength(1);
    expect(leftovers()).toEqual([]);
    neighbourUntouched();
  });

  it("retries a throttled security group and makes one group only", async () => {
    // Prepare
    sim.world.failNext("CreateSecurityGroup", 400, "Throttling.User", 2);

    // Act
    const result = await run("create");

    // Assess
    expect(result.status).toBe("SUCCEEDED");
    expect(result.retried.filter((s) => s === "CreateSecurityGroup")).toHaveLength(2);
    expect(sim.world.groups.size).toBe(1);
    // The VPC, two VSwitches, the group, two secrets and the master.
    expect(leftovers()).toHaveLength(7);
  });
});
