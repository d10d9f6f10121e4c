import { Client as VpcClient } from "tencentcloud-sdk-nodejs/tencentcloud/services/vpc/v20170312/vpc_client.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError, ServiceUnavailableError } from "../../../lib/ports/errors.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import {
  TencentClusterResources,
  tencentSecretName,
} from "../../../lib/providers/tencent-cvm/cluster-resources.js";
import { TencentUserSecrets } from "../../../lib/providers/tencent-cvm/user-secrets.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "./simulators/tencent-cvm.js";

describe("Tencent cluster resources (real SDKs, local VPC and SSM endpoints)", () => {
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let resources: TencentClusterResources;
  const credential = { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY };

  beforeEach(async () => {
    cloud = new FakeCloud({ idPrefix: "ins-", clock: new FakeClock() });
    sim = await startCvmSimulator(cloud);
    resources = new TencentClusterResources({
      region: "ap-guangzhou",
      credential,
      endpoint: sim.endpoint,
      protocol: "http://",
    });
  });

  afterEach(() => sim.close());

  it("makes a tagged VPC with one subnet per zone, in order, and finds the same one when retried", async () => {
    // Prepare
    const spec = { cidr: "10.42.0.0/16", zones: ["ap-guangzhou-3", "ap-guangzhou-4"] };

    // Act
    const first = await resources.createNetwork("tc-1", spec);
    const again = await resources.createNetwork("tc-1", spec);

    // Assess
    expect(again).toEqual(first);
    expect(sim.services.inventory().vpcs).toEqual([first.vpcId]);
    const subnets = first.subnetIds.map((id) => sim.services.subnets.get(id));
    expect(subnets.map((s) => [s?.Zone, s?.CidrBlock])).toEqual([
      ["ap-guangzhou-3", "10.42.0.0/20"],
      ["ap-guangzhou-4", "10.42.16.0/20"],
    ]);
    expect(sim.services.vpcs.get(first.vpcId)?.tags).toMatchObject({ "nowscale:cluster": "tc-1" });
    expect(sim.callsOf("CreateVpc")).toHaveLength(1);
    expect(sim.callsOf("DescribeVpcs")[0]?.params.Filters).toEqual([
      { Name: "tag:nowscale:cluster", Values: ["tc-1"] },
    ]);
  });

  it("completes the subnets a crashed step left missing instead of making a second VPC", async () => {
    // Prepare: the first attempt's CreateSubnets failed after CreateVpc.
    sim.services.failNext("CreateSubnets", "InternalError");
    const spec = { cidr: "10.42.0.0/16", zones: ["ap-guangzhou-3"] };
    await expect(resources.createNetwork("tc-1", spec)).rejects.toBeInstanceOf(ServiceUnavailableError);

    // Act
    const network = await resources.createNetwork("tc-1", spec);

    // Assess
    expect(sim.services.inventory().vpcs).toEqual([network.vpcId]);
    expect(network.subnetIds).toHaveLength(1);
  });

  it("makes a members-only security group with open egress, the same rules when retried", async () => {
    // Act
    const { securityGroupId } = await resources.createSecurityGroup("tc-1", "vpc-any");
    const again = await resources.createSecurityGroup("tc-1", "vpc-any");

    // Assess
    expect(again.securityGroupId).toBe(securityGroupId);
    const group = sim.services.securityGroups.get(securityGroupId);
    expect(group?.policies).toEqual({
      Ingress: [{ Protocol: "ALL", Port: "all", SecurityGroupId: securityGroupId, Action: "ACCEPT" }],
      Egress: [{ Protocol: "ALL", Port: "all", CidrBlock: "0.0.0.0/0", Action: "ACCEPT" }],
    });
    expect(sim.services.inventory().securityGroups).toEqual([securityGroupId]);
  });

  it("stores the secrets in SSM with fresh values it never returns, tagged, once", async () => {
    // Act
    const munge = await resources.createSecret("tc-1", "munge-key", { vpcId: "vpc-1" });
    const agent = await resources.createSecret("tc-1", "agent-hmac-key", { vpcId: "vpc-1" });
    const again = await resources.createSecret("tc-1", "munge-key", { vpcId: "vpc-1" });

    // Assess
    expect(munge).toEqual({ secretId: "nowscale-tc-1-munge-key", secretName: "nowscale-tc-1-munge-key" });
    expect(again).toEqual(munge);
    const stored = sim.services.secrets.get(munge.secretId);
    expect(Buffer.from(stored?.SecretBinary ?? "", "base64")).toHaveLength(1024);
    expect(sim.services.secrets.get(agent.secretId)?.SecretString?.length).toBeGreaterThanOrEqual(32);
    expect(stored?.tags).toEqual({
      "nowscale:cluster": "tc-1",
      "nowscale:managed": "true",
      "nowscale:secret-kind": "munge-key",
      "nowscale:vpc": "vpc-1",
    });
    expect(JSON.stringify([munge, agent])).not.toContain(stored?.SecretBinary?.slice(0, 16));
  });

  it("refuses a VPC that holds another cluster's secrets, naming network.vpcId, and makes nothing", async () => {
    // Prepare
    await resources.createSecret("tc-other", "munge-key", { vpcId: "vpc-1" });

    // Act
    const failure = await resources
      .createSecret("tc-1", "munge-key", { vpcId: "vpc-1" })
      .catch((error: Error) => error);

    // Assess
    expect(failure).toBeInstanceOf(InvalidRequestError);
    expect((failure as Error).message).toMatch(/^network\.vpcId: vpc-1 already holds/);
    expect(sim.services.inventory().secrets).toEqual([tencentSecretName("tc-other", "munge-key")]);
  });

  it("lists what exists by the cluster tag alone and deletes all of it, twice without error", async () => {
    // Prepare
    const network = await resources.createNetwork("tc-1", {
      cidr: "10.42.0.0/16",
      zones: ["ap-guangzhou-3"],
    });
    const { securityGroupId } = await resources.createSecurityGroup("tc-1", network.vpcId);
    const munge = await resources.createSecret("tc-1", "munge-key", { vpcId: network.vpcId });
    const agent = await resources.createSecret("tc-1", "agent-hmac-key", { vpcId: network.vpcId });
    await resources.createNetwork("tc-2", { cidr: "10.43.0.0/16", zones: ["ap-guangzhou-3"] });

    // Act
    const listed = await resources.list("tc-1");
    for (let round = 0; round < 2; round++) {
      await resources.deleteSecret(munge.secretId);
      await resources.deleteSecret(agent.secretId);
      await resources.deleteSecurityGroup(securityGroupId);
      await resources.deleteNetwork(network);
    }

    // Assess
    expect(listed).toEqual([
      { kind: "network", ...network },
      { kind: "securityGroup", securityGroupId },
      { kind: "secret", secretKind: "munge-key", secretId: munge.secretId },
      { kind: "secret", secretKind: "agent-hmac-key", secretId: agent.secretId },
    ]);
    expect(await resources.list("tc-1")).toEqual([]);
    expect(sim.services.inventory().vpcs).toHaveLength(1);
    // SSM deletes a disabled secret only: each deletion disabled it first.
    expect(sim.callsOf("DisableSecret").length).toBeGreaterThanOrEqual(2);
  });

  /** The users' secrets of the simulated cloud, as the control plane makes them. */
  const userSecrets = () =>
    new TencentUserSecrets({
      region: "ap-guangzhou",
      credential,
      endpoint: sim.endpoint,
      protocol: "http://",
    });

  it("deletes a user's secret the listing misses by the id the record names, never another cluster's", async () => {
    // Prepare: alice listed; dave made just now, not listed yet; the neighbour tc-10's alice, and an id
    // of another region, named by a (corrupted) record
    const users = userSecrets();
    const alice = await users.put("tc-1", "alice", { password: "correct-horse-9" });
    const dave = await users.put("tc-1", "dave", { password: "tr0ub4dor-and-3" });
    const neighbour = await users.put("tc-10", "alice", { password: "neighbour-pass-3" });
    sim.services.unlistedSecrets.add("nowscale-tc-1-users-dave");

    // Act
    const deleted = await resources.deleteUserSecrets("tc-1", [
      alice,
      dave,
      neighbour,
      "tencent-ssm:ap-shanghai:nowscale-tc-1-users-bob",
    ]);

    // Assess
    expect(deleted.sort()).toEqual(["nowscale-tc-1-users-alice", "nowscale-tc-1-users-dave"]);
    expect([...sim.services.secrets.keys()]).toEqual(["nowscale-tc-10-users-alice"]);
  });

  it("succeeds when a user's secret the record names is already gone", async () => {
    // Prepare: erin's secret was deleted behind the record (or by an earlier attempt)
    const users = userSecrets();
    const erin = await users.put("tc-1", "erin", { password: "gone-already-5" });
    await users.remove(erin);
    const calls = sim.callsOf("DeleteSecret").length;

    // Act
    const deleted = await resources.deleteUserSecrets("tc-1", [erin]);

    // Assess: asked for again (found nothing) without an error
    expect(deleted).toEqual(["nowscale-tc-1-users-erin"]);
    expect(sim.callsOf("DeleteSecret").length).toBe(calls + 1);
    expect(sim.services.secrets.size).toBe(0);
  });

  it("waits (retryable) while a subnet still has instances, and deletes it once they are gone", async () => {
    // Prepare
    const network = await resources.createNetwork("tc-1", {
      cidr: "10.42.0.0/16",
      zones: ["ap-guangzhou-3"],
    });
    const [node] = cloud.run({
      instanceType: "S5.LARGE8",
      zone: "ap-guangzhou-3",
      chargeType: "ON_DEMAND",
      imageId: "img-1",
      minCount: 1,
      maxCount: 1,
      tags: {},
      subnetId: network.subnetIds[0] ?? "",
    });

    // Act
    const busy = resources.deleteNetwork(network);

    // Assess
    await expect(busy).rejects.toBeInstanceOf(ServiceUnavailableError);
    cloud.terminate([node?.id ?? ""]);
    await resources.deleteNetwork(network);
    expect(sim.services.inventory()).toMatchObject({ vpcs: [], subnets: [] });
  });

  it("names the subnet of the user's network that does not exist or lies in another VPC", async () => {
    // Prepare
    const mine = await resources.createNetwork("tc-1", { cidr: "10.42.0.0/16", zones: ["ap-guangzhou-3"] });
    const other = await resources.createNetwork("tc-2", { cidr: "10.43.0.0/16", zones: ["ap-guangzhou-3"] });
    const [good = ""] = mine.subnetIds;
    const [foreign = ""] = other.subnetIds;

    // Act
    const missing = await resources
      .validateNetwork({ vpcId: mine.vpcId, subnetIds: [good, "subnet-nope"] })
      .catch((error: Error) => error);
    const elsewhere = await resources
      .validateNetwork({ vpcId: mine.vpcId, subnetIds: [foreign] })
      .catch((error: Error) => error);

    // Assess
    expect(missing).toBeInstanceOf(InvalidRequestError);
    expect((missing as Error).message).toMatch(/^network\.subnetIds\[1\]: subnet subnet-nope does not exist/);
    expect((elsewhere as Error).message).toMatch(/^network\.subnetIds\[0\]: .* not in network\.vpcId/);
    await expect(
      resources.validateNetwork({ vpcId: mine.vpcId, subnetIds: [good] }),
    ).resolves.toBeUndefined();
  });

  it("answers a request with a field the SDK's model does not declare as the real API does", async () => {
    // Prepare: the real SDK client, a field misspelt as a caller might (VpcID for VpcId).
    const vpc = new VpcClient({
      credential,
      region: "ap-guangzhou",
      profile: { httpProfile: { endpoint: sim.endpoint, protocol: "http://" } },
    });

    // Act
    const misspelt = vpc.DeleteVpc({ VpcID: "vpc-1" } as unknown as { VpcId: string });

    // Assess
    await expect(misspelt).rejects.toMatchObject({ code: "UnknownParameter", message: /VpcID/ });
    expect(sim.services.inventory().vpcs).toEqual([]);
  });
});
