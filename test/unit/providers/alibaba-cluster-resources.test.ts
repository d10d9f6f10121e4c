import * as core from "@alicloud/openapi-core";
import * as teaUtil from "@alicloud/tea-util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError, ServiceUnavailableError } from "../../../lib/ports/errors.js";
import { AlibabaClusterResources } from "../../../lib/providers/alibaba-ecs/cluster-resources.js";
import { cjsDefault, clientConfig, EcsApi } from "../../../lib/providers/alibaba-ecs/ecs-api.js";
import { AlibabaUserSecrets } from "../../../lib/providers/alibaba-ecs/user-secrets.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import {
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "./simulators/alibaba-ecs.js";

const KEY = { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET };
const ZONES = ["cn-hangzhou-h", "cn-hangzhou-i"];

describe("AlibabaClusterResources (real SDKs, loopback VPC/ECS/KMS checked against the SDK models)", () => {
  let cloud: FakeCloud;
  let sim: EcsSimulator;
  let resources: AlibabaClusterResources;
  let clock: FakeClock;

  beforeEach(async () => {
    clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "i-bp", clock });
    sim = await startEcsSimulator(cloud, { defaultVpc: false });
    const at = sim.endpoint;
    resources = new AlibabaClusterResources({
      regionId: "cn-hangzhou",
      credential: KEY,
      endpoints: { ecs: at, vpc: at, kms: at },
      protocol: "http",
      encryptionKeyId: "key-hzz1234",
      clock,
    });
  });

  afterEach(() => sim.close());

  it("makes a tagged VPC, waits for it to be Available, then one /20 VSwitch per zone; a retry makes nothing more", async () => {
    // Act
    const network = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });
    const again = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });

    // Assess
    expect(again).toEqual(network);
    const [vpc] = [...sim.world.vpcs.values()];
    expect(sim.world.vpcs.size).toBe(1);
    expect(vpc?.cidr).toBe("10.42.0.0/16");
    expect(Object.fromEntries(vpc?.tags ?? [])).toEqual({
      "nowscale:cluster": "hpc1",
      "nowscale:managed": "true",
    });
    const switches = network.subnetIds.map((id) => sim.world.vSwitches.get(id));
    expect(switches.map((s) => [s?.zoneId, s?.cidr, s?.vpcId])).toEqual([
      ["cn-hangzhou-h", "10.42.0.0/20", network.vpcId],
      ["cn-hangzhou-i", "10.42.16.0/20", network.vpcId],
    ]);
    expect(sim.callsOf("CreateVpc")).toHaveLength(1);
    expect(sim.callsOf("CreateVpc")[0]?.params).toMatchObject({
      "Tag.1.Key": "nowscale:cluster",
      "Tag.1.Value": "hpc1",
      CidrBlock: "10.42.0.0/16",
    });
    // The VSwitches waited for the VPC: none was asked while it was Pending.
    expect(sim.callsOf("CreateVSwitch")).toHaveLength(2);
  });

  it("gives up waiting for a VPC that stays Pending with a retryable error", async () => {
    // Prepare: a VPC of the cluster that stays Pending
    const impatient = new AlibabaClusterResources({
      regionId: "cn-hangzhou",
      credential: KEY,
      endpoints: { ecs: sim.endpoint, vpc: sim.endpoint, kms: sim.endpoint },
      protocol: "http",
      vpcReadyTimeoutMs: 0,
      clock,
    });
    sim.world.vpcs.set("vpc-pending", {
      id: "vpc-pending",
      cidr: "10.1.0.0/16",
      name: "x",
      status: "Pending",
      pendingDescribes: Number.POSITIVE_INFINITY,
      tags: new Map([["nowscale:cluster", "slow"]]),
    });

    // Act
    const attempt = impatient.createNetwork("slow", { cidr: "10.1.0.0/16", zones: ZONES });

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(sim.callsOf("CreateVSwitch")).toHaveLength(0);
  });

  it("makes a normal security group in the VPC whose only rule admits its own members", async () => {
    // Prepare
    const { vpcId } = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });

    // Act
    const { securityGroupId } = await resources.createSecurityGroup("hpc1", vpcId);
    const again = await resources.createSecurityGroup("hpc1", vpcId);

    // Assess
    expect(again.securityGroupId).toBe(securityGroupId);
    expect(sim.world.groups.size).toBe(1);
    const group = sim.world.groups.get(securityGroupId);
    expect(group?.vpcId).toBe(vpcId);
    expect(group?.rules).toEqual([
      {
        IpProtocol: "ALL",
        PortRange: "-1/-1",
        SourceGroupId: securityGroupId,
        Policy: "accept",
        Description: "NowScale: cluster members",
      },
    ]);
    expect(sim.callsOf("CreateSecurityGroup")[0]?.params.SecurityGroupType).toBe("normal");
  });

  it("stores the secrets in KMS with random values, tagged with cluster, kind and VPC, and never returns them", async () => {
    // Act
    const munge = await resources.createSecret("hpc1", "munge-key", { vpcId: "vpc-a" });
    const agent = await resources.createSecret("hpc1", "agent-hmac-key", { vpcId: "vpc-a" });
    const again = await resources.createSecret("hpc1", "munge-key", { vpcId: "vpc-a" });

    // Assess
    expect(munge).toEqual({ secretId: "nowscale/hpc1/munge-key", secretName: "nowscale/hpc1/munge-key" });
    expect(again).toEqual(munge);
    expect(sim.callsOf("CreateSecret")).toHaveLength(2);
    const stored = sim.world.secrets.get(munge.secretId);
    expect(stored?.dataType).toBe("binary");
    expect(Buffer.from(stored?.data ?? "", "base64")).toHaveLength(1024);
    expect(stored?.encryptionKeyId).toBe("key-hzz1234");
    expect(Object.fromEntries(stored?.tags ?? [])).toEqual({
      "nowscale:cluster": "hpc1",
      "nowscale:managed": "true",
      "nowscale:secret-kind": "munge-key",
      "nowscale:vpc": "vpc-a",
    });
    const key = sim.world.secrets.get(agent.secretId);
    expect(key?.dataType).toBe("text");
    expect(key?.data.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify([munge, agent])).not.toContain(key?.data);
  });

  it("refuses a second cluster's secrets in a VPC that holds another cluster, naming network.vpcId", async () => {
    // Prepare
    await resources.createSecret("hpc1", "munge-key", { vpcId: "vpc-a" });

    // Act
    const attempt = resources.createSecret("hpc2", "munge-key", { vpcId: "vpc-a" });

    // Assess
    await expect(attempt).rejects.toThrow(InvalidRequestError);
    await expect(attempt).rejects.toThrow(/network\.vpcId: vpc-a already holds NowScale cluster hpc1/);
    expect([...sim.world.secrets.keys()]).toEqual(["nowscale/hpc1/munge-key"]);
  });

  it("lists by the nowscale:cluster tag, deletes in order, and deleting what is gone succeeds", async () => {
    // Prepare
    const network = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });
    const { securityGroupId } = await resources.createSecurityGroup("hpc1", network.vpcId);
    const munge = await resources.createSecret("hpc1", "munge-key", { vpcId: network.vpcId });
    await resources.createNetwork("other", { cidr: "10.9.0.0/16", zones: ZONES.slice(0, 1) });

    // Act
    const listed = await resources.list("hpc1");
    await resources.deleteSecret(munge.secretId);
    await resources.deleteSecurityGroup(securityGroupId);
    await resources.deleteNetwork(network);
    await resources.deleteSecret(munge.secretId);
    await resources.deleteSecurityGroup(securityGroupId);
    await resources.deleteNetwork(network);

    // Assess
    expect(listed).toEqual([
      { kind: "network", vpcId: network.vpcId, subnetIds: network.subnetIds },
      { kind: "securityGroup", securityGroupId },
      { kind: "secret", secretKind: "munge-key", secretId: munge.secretId },
    ]);
    expect(await resources.list("hpc1")).toEqual([]);
    expect(sim.world.tagged("hpc1")).toEqual([]);
    expect(sim.world.tagged("other")).toHaveLength(2);
  });

  /** The users' secrets of the simulated cloud, as the control plane makes them. */
  const userSecrets = () =>
    new AlibabaUserSecrets({
      regionId: "cn-hangzhou",
      credential: KEY,
      endpoints: { kms: sim.endpoint },
      protocol: "http",
      clock,
    });

  it("deletes a user's secret the listing misses by the id the record names, never another cluster's", async () => {
    // Prepare: alice listed; dave made just now, not listed yet; the neighbour hpc10's alice, and an id
    // of another region, named by a (corrupted) record
    const users = userSecrets();
    const alice = await users.put("hpc1", "alice", { password: "correct-horse-9" });
    const dave = await users.put("hpc1", "dave", { password: "tr0ub4dor-and-3" });
    const neighbour = await users.put("hpc10", "alice", { password: "neighbour-pass-3" });
    sim.world.unlistedSecrets.add("nowscale/hpc1/users/dave");

    // Act
    const deleted = await resources.deleteUserSecrets("hpc1", [
      alice,
      dave,
      neighbour,
      "alibaba-kms:cn-shanghai:nowscale/hpc1/users/bob",
    ]);

    // Assess
    expect(deleted.sort()).toEqual(["nowscale/hpc1/users/alice", "nowscale/hpc1/users/dave"]);
    expect([...sim.world.secrets.keys()]).toEqual(["nowscale/hpc10/users/alice"]);
  });

  it("succeeds when a user's secret the record names is already gone", async () => {
    // Prepare: erin's secret was deleted behind the record (or by an earlier attempt)
    const users = userSecrets();
    const erin = await users.put("hpc1", "erin", { password: "gone-already-5" });
    await users.remove(erin);
    const calls = sim.callsOf("DeleteSecret").length;

    // Act
    const deleted = await resources.deleteUserSecrets("hpc1", [erin]);

    // Assess: asked for again (found nothing) without an error
    expect(deleted).toEqual(["nowscale/hpc1/users/erin"]);
    expect(sim.callsOf("DeleteSecret").length).toBe(calls + 1);
    expect(sim.world.secrets.size).toBe(0);
  });

  it("answers a security group or VSwitch still holding a live instance with a retryable error", async () => {
    // Prepare
    const network = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });
    const { securityGroupId } = await resources.createSecurityGroup("hpc1", network.vpcId);
    const api = new EcsApi({
      regionId: "cn-hangzhou",
      credential: KEY,
      endpoint: sim.endpoint,
      protocol: "http",
      securityGroupIds: [securityGroupId],
    });
    await api.runInstances({
      candidate: {
        instanceType: "ecs.g7.large",
        zone: "cn-hangzhou-h",
        chargeType: "ON_DEMAND",
        subnetId: network.subnetIds[0] as string,
      },
      minCount: 1,
      maxCount: 1,
      imageId: "img",
      clientToken: "t1",
      namePrefix: "nowscale-hpc1-master",
      tags: { "nowscale:cluster": "hpc1" },
    });

    // Act
    const group = resources.deleteSecurityGroup(securityGroupId);
    const net = resources.deleteNetwork(network);

    // Assess
    await expect(group).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(net).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(sim.world.groups.has(securityGroupId)).toBe(true);
    expect(sim.world.vpcs.has(network.vpcId)).toBe(true);
  });

  it("validates the user's VSwitches and names the missing one", async () => {
    // Prepare
    const network = await resources.createNetwork("hpc1", { cidr: "10.42.0.0/16", zones: ZONES });

    // Act
    const good = resources.validateNetwork(network);
    const bad = resources.validateNetwork({
      vpcId: network.vpcId,
      subnetIds: [network.subnetIds[0] as string, "vsw-elsewhere"],
    });

    // Assess
    await expect(good).resolves.toBeUndefined();
    await expect(bad).rejects.toThrow(/network\.subnetIds\[1\]: VSwitch vsw-elsewhere does not exist/);
  });

  it("the simulator refuses a field the SDK's model does not have, and a reserved tag key", async () => {
    // Prepare: the generic client, as a misnamed request would reach the API
    const Client = cjsDefault(core.default);
    const client = new Client(
      clientConfig({ regionId: "cn-hangzhou", credential: KEY, endpoint: sim.endpoint, protocol: "http" }),
    );
    const call = (action: string, version: string, query: Record<string, string>) =>
      client.callApi(
        new core.$OpenApiUtil.Params({
          action,
          version,
          protocol: "HTTP",
          pathname: "/",
          method: "POST",
          authType: "AK",
          style: "RPC",
          reqBodyType: "formData",
          bodyType: "json",
        }),
        new core.$OpenApiUtil.OpenApiRequest({ query }),
        new teaUtil.RuntimeOptions({}) as unknown as Parameters<typeof client.callApi>[2],
      );

    // Act
    const misnamed = call("CreateVpc", "2016-04-28", { RegionId: "cn-hangzhou", CidrBlok: "10.0.0.0/8" });
    const badMember = call("CreateVpc", "2016-04-28", { "Tag.1.Name": "x" });
    const reserved = call("CreateVpc", "2016-04-28", { "Tag.1.Key": "acs:cluster", "Tag.1.Value": "x" });

    // Assess
    await expect(misnamed).rejects.toMatchObject({ code: "InvalidParameter" });
    await expect(misnamed).rejects.toThrow(/CidrBlok is not a parameter of CreateVpc/);
    await expect(badMember).rejects.toThrow(/Name is not a field of CreateVpc's Tag/);
    await expect(reserved).rejects.toMatchObject({ code: "InvalidTagKey.Malformed" });
    expect(sim.world.vpcs.size).toBe(0);
  });
});
