import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeAgent as FakeSlurmAgent } from "../../../lib/agent-channels/fake.js";
import type { CloudProvider } from "../../../lib/ports/cloud-provider.js";
import { FakeClusterResources } from "../../../lib/providers/fake/fake-cluster-resources.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { createTencentCvmProvider } from "../../../lib/providers/tencent-cvm/index.js";
import { TencentUserSecrets } from "../../../lib/providers/tencent-cvm/user-secrets.js";
import type { DynamoStateStore } from "../../../lib/state/dynamo-store.js";
import { tencentLifecycleParts } from "../../../lib/tencent/lifecycle-parts.js";
import { createClusterDefinition, deleteClusterDefinition } from "../../../lib/workflow/index.js";
import { runWorkflowLocally } from "../../../lib/workflow/local-runner.js";
import type { LifecycleDeps } from "../../../lib/workflow/tasks/deps.js";
import { runLifecycleTask } from "../../../lib/workflow/tasks/dispatch.js";
import type { CreateClusterRequestInput } from "../../../lib/workflow/tasks/request.js";
import { StateStoreLifecycleStore } from "../../../lib/workflow/tasks/state-store-adapter.js";
import { freshStore, startDynalite, type TestDynamo } from "../../support/dynalite.js";
import { shellTatAgent } from "../../unit/providers/simulators/tat-shell-agent.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "../../unit/providers/simulators/tencent-cvm.js";
import { AUTOSCALING } from "./harness.js";

/**
 * A whole cluster on Tencent Cloud: the real definitions (local Step Functions runner), the real
 * lifecycle tasks with the stack's per-cloud dispatch, the DynamoDB store on dynalite, and Tencent's
 * APIs (CVM, VPC, SSM, TAT) through the official SDKs to the loopback simulator, which checks every
 * request against the SDK's models. The master's agent answers TAT commands from sh (shellTatAgent).
 * The stack's own (AWS) parts are fakes that must stay untouched.
 */

const CLUSTER = "tc-1";
const REGION = "ap-guangzhou";
const credential = { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY };

function request(overrides: Partial<CreateClusterRequestInput> = {}): CreateClusterRequestInput {
  return {
    region: REGION,
    network: { cidr: "10.42.0.0/16", zones: [`${REGION}-3`, `${REGION}-4`] },
    master: { instanceType: "S5.LARGE8", zone: `${REGION}-3`, imageId: "img-debian12" },
    agentHealthTimeoutSeconds: 60,
    ...overrides,
  };
}

describe("a cluster on Tencent Cloud, created, scaled, shrunk and deleted by the workflows", () => {
  let db: TestDynamo;
  let store: DynamoStateStore;
  let clock: FakeClock;
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let aws: FakeClusterResources;
  let deps: LifecycleDeps;

  beforeAll(async () => {
    db = await startDynalite();
  });
  afterAll(async () => {
    await db.close();
  });

  beforeEach(async () => {
    ({ store } = await freshStore(db));
    clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "ins-", clock });
    sim = await startCvmSimulator(cloud);
    aws = new FakeClusterResources();
    const report = await new FakeSlurmAgent(clock).report();
    // The agent answers once its master is up: the one RUNNING instance tagged as the master.
    sim.services.tatAgent = shellTatAgent((instanceId, words) => {
      if (cloud.get(instanceId)?.tags["nowscale-role"] !== "master") return undefined;
      return words[1] === "report"
        ? { exitCode: 0, output: JSON.stringify(report) }
        : { exitCode: 0, output: "" };
    });
    await store.createCluster({
      clusterId: CLUSTER,
      name: "tencent one",
      placement: { cloud: "tencent", region: REGION, imageId: "img-debian12" },
      autoscaling: AUTOSCALING,
      now: clock.now(),
    });
    const notAws = (): CloudProvider => {
      throw new Error("the AWS provider was asked for a Tencent cluster");
    };
    deps = {
      store: new StateStoreLifecycleStore(store, clock),
      clock,
      region: "us-east-1",
      resources: aws,
      provider: notAws,
      agent: {
        isHealthy: async () => {
          throw new Error("the AWS agent was asked for a Tencent cluster");
        },
        drainAll: async () => false,
      },
      clouds: {
        tencent: tencentLifecycleParts({
          credential: async () => credential,
          clock,
          camRoleName: "nowscale-node",
          endpoint: sim.endpoint,
          protocol: "http://",
        }),
      },
    };
  });

  afterEach(() => sim.close());

  const run = (kind: "create" | "delete", input: Record<string, unknown> = {}) =>
    runWorkflowLocally(
      kind === "create" ? createClusterDefinition() : deleteClusterDefinition(),
      { clusterId: CLUSTER, ...input },
      (i) => runLifecycleTask(deps, i),
    );

  /** Everything of the cluster's left in the simulated account. */
  const leftovers = () => ({
    ...sim.services.inventory(),
    instances: cloud
      .live()
      .filter((i) => i.tags["nowscale:cluster"] === CLUSTER)
      .map((i) => i.id),
  });
  const nothing = { vpcs: [], subnets: [], securityGroups: [], secrets: [], instances: [] };

  it("creates the network, group, secrets and master on Tencent, then scales, shrinks and deletes it all", async () => {
    // Act: create
    const created = await run("create", { request: request() });

    // Assess: RUNNING, everything on Tencent and recorded, nothing on AWS
    const record = await store.getCluster(CLUSTER);
    expect(created.status, record?.reason).toBe("SUCCEEDED");
    expect(record?.status).toBe("RUNNING");
    expect(aws.live()).toEqual([]);
    const made = sim.services.inventory();
    expect(made).toMatchObject({ vpcs: [expect.any(String)], securityGroups: [expect.any(String)] });
    expect(made.subnets).toHaveLength(2);
    expect(made.secrets.sort()).toEqual([
      `nowscale-${CLUSTER}-agent-hmac-key`,
      `nowscale-${CLUSTER}-munge-key`,
    ]);
    const [vpcId = ""] = made.vpcs;
    const [securityGroupId = ""] = made.securityGroups;
    const masterSubnet = [...sim.services.subnets.values()].find((s) => s.Zone === `${REGION}-3`);
    const [run1] = sim.callsOf("RunInstances");
    expect(run1?.params).toMatchObject({
      Placement: { Zone: `${REGION}-3` },
      VirtualPrivateCloud: { VpcId: vpcId, SubnetId: masterSubnet?.SubnetId },
      SecurityGroupIds: [securityGroupId],
      CamRoleName: "nowscale-node",
      InstanceChargeType: "POSTPAID_BY_HOUR",
    });
    // The master reads its secrets from Tencent's SSM by name with its role: no value in the user data.
    const userData = Buffer.from(String(run1?.params.UserData), "base64").toString("utf8");
    expect(userData).toContain(`NOWSCALE_SECRET_NAME='nowscale-${CLUSTER}-munge-key'`);
    expect(userData).not.toContain("aws secretsmanager");
    for (const secret of sim.services.secrets.values())
      expect(userData).not.toContain((secret.SecretBinary ?? secret.SecretString ?? "").slice(0, 24));
    expect(record?.resources.map((r) => r.type).sort()).toEqual([
      "masterInstance",
      "secret:agent-hmac-key",
      "secret:munge-key",
      "securityGroup",
      "subnet",
      "subnet",
      "vpc",
    ]);

    // Act: scale (three computes, as the scaler's Tencent provider launches them) and shrink (one goes)
    const computes = createTencentCvmProvider({
      region: REGION,
      credential,
      endpoint: sim.endpoint,
      protocol: "http://",
      clock,
      securityGroupIds: [securityGroupId],
      vpcId,
    });
    const scaled = await computes.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: "r-1",
      candidates: [
        {
          instanceType: "S5.LARGE8",
          zone: `${REGION}-4`,
          chargeType: "SPOT",
          subnetId: made.subnets[1] ?? "",
        },
      ],
      count: 3,
      allOrNothing: false,
      imageId: "img-debian12",
    });
    expect(scaled.instances).toHaveLength(3);
    await computes.terminate([scaled.instances[0]?.id ?? ""]);
    expect(leftovers().instances).toHaveLength(3);

    // Act: a user added while it ran (their secret in SSM, tagged), then delete
    await new TencentUserSecrets({
      region: REGION,
      credential,
      endpoint: sim.endpoint,
      protocol: "http://",
    }).put(CLUSTER, "alice", { password: "s3cret-Password-42" });
    expect(sim.services.secrets.has("nowscale-tc-1-users-alice")).toBe(true);
    const deleted = await run("delete");

    // Assess: nothing left anywhere (the user's secret too), the secrets disabled before their deletion
    expect(deleted.status, (await store.getCluster(CLUSTER))?.reason).toBe("SUCCEEDED");
    expect((await store.getCluster(CLUSTER))?.status).toBe("DELETED");
    expect(leftovers()).toEqual(nothing);
    expect(sim.services.secrets.has("nowscale-tc-1-users-alice")).toBe(false);
    expect(sim.callsOf("DisableSecret")).toHaveLength(3);
  });

  it("creates, scales and deletes on an account without partial delivery (MinCount refused), leaving nothing", async () => {
    // Prepare: CVM refuses every RunInstances that carries MinCount, as where partial delivery is unsupported.
    sim.refuseMinCount();

    // Act: create (the master's all-or-nothing launch falls back to a call without MinCount)
    const created = await run("create", { request: request() });

    // Assess
    expect(created.status, (await store.getCluster(CLUSTER))?.reason).toBe("SUCCEEDED");
    const made = sim.services.inventory();
    const [vpcId = ""] = made.vpcs;
    expect(leftovers().instances).toHaveLength(1);

    // Act: scale best-effort over two candidates; the first can give only 1 of 3, so without MinCount none
    const computes = createTencentCvmProvider({
      region: REGION,
      credential,
      endpoint: sim.endpoint,
      protocol: "http://",
      clock,
      securityGroupIds: made.securityGroups,
      vpcId,
      warn: () => undefined,
    });
    cloud.setCapacity("S5.LARGE8", `${REGION}-4`, 1);
    const candidates = [
      {
        instanceType: "S5.LARGE8",
        zone: `${REGION}-4`,
        chargeType: "SPOT" as const,
        subnetId: made.subnets[1] ?? "",
      },
      {
        instanceType: "S5.LARGE8",
        zone: `${REGION}-3`,
        chargeType: "SPOT" as const,
        subnetId: made.subnets[0] ?? "",
      },
    ];
    const scaled = await computes.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: "r-1",
      candidates,
      count: 3,
      allOrNothing: false,
      imageId: "img-debian12",
    });
    const refusedBefore = sim.callsOf("RunInstances").filter((c) => c.params.MinCount !== undefined).length;
    const again = await computes.launch({
      clusterId: CLUSTER,
      queue: "compute",
      round: "r-2",
      candidates: candidates.slice(1),
      count: 1,
      allOrNothing: true,
      imageId: "img-debian12",
    });

    // Assess: the rest went to the next candidate; the second launch paid no refused call
    expect(scaled.instances.map((i) => i.zone)).toEqual([`${REGION}-3`, `${REGION}-3`, `${REGION}-3`]);
    expect(again.instances).toHaveLength(1);
    expect(sim.callsOf("RunInstances").filter((c) => c.params.MinCount !== undefined)).toHaveLength(
      refusedBefore,
    );
    expect(leftovers().instances).toHaveLength(5);

    // Act: delete
    const deleted = await run("delete");

    // Assess
    expect(deleted.status, (await store.getCluster(CLUSTER))?.reason).toBe("SUCCEEDED");
    expect(leftovers()).toEqual(nothing);
  });

  it("removes exactly what it made when the master cannot start (no capacity)", async () => {
    // Prepare
    cloud.failNext("run", "capacity");

    // Act
    const result = await run("create", { request: request() });

    // Assess
    expect(result.status).toBe("FAILED");
    const record = await store.getCluster(CLUSTER);
    expect(record?.status).toBe("FAILED");
    expect(record?.reason).toMatch(/InsufficientCapacityError/);
    expect(record?.resources).toEqual([]);
    expect(leftovers()).toEqual(nothing);
  });

  it("treats a master that ends LAUNCH_FAILED after RunInstances as a capacity failure and removes everything", async () => {
    // Prepare: RunInstances answers the id; DescribeInstances then shows it LAUNCH_FAILED.
    sim.failLaunchOfNext(1);

    // Act
    const result = await run("create", { request: request() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/^InsufficientCapacityError: .*started 0 of 1/);
    expect(sim.callsOf("RunCommand")).toEqual([]);
    expect(leftovers()).toEqual(nothing);
  });

  it("removes the network and group when the second secret cannot be made", async () => {
    // Prepare: SSM's secret quota is reached by the second one.
    sim.services.failNext("CreateSecret", "LimitExceeded.SecretCount", 1);

    // Act
    const result = await run("create", { request: request() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/QuotaExceededError: SSM LimitExceeded/);
    expect(sim.callsOf("CreateSecret")).toHaveLength(2);
    expect(leftovers()).toEqual(nothing);
  });

  it("removes the network when the security group cannot be made (quota)", async () => {
    // Prepare
    sim.services.failNext("CreateSecurityGroup", "LimitExceeded");

    // Act
    const result = await run("create", { request: request() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/QuotaExceededError: VPC LimitExceeded/);
    expect(sim.callsOf("CreateSecret")).toEqual([]);
    expect(leftovers()).toEqual(nothing);
  });

  it("terminates the master and removes everything when its agent never answers over TAT", async () => {
    // Prepare: no TAT agent on any instance
    sim.services.tatAgent = undefined;

    // Act
    const result = await run("create", { request: request() });

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/health|agent/i);
    expect(sim.callsOf("RunCommand").length).toBeGreaterThan(1);
    expect(leftovers()).toEqual(nothing);
  });

  it("refuses a Tencent request for another region than the cluster's, before making anything", async () => {
    // Act
    const result = await run("create", { request: request({ region: "ap-shanghai" }) });

    // Assess
    expect(result.status).toBe("FAILED");
    expect((await store.getCluster(CLUSTER))?.reason).toMatch(/region/);
    expect(sim.calls.filter((c) => c.action.startsWith("Create"))).toEqual([]);
  });
});
