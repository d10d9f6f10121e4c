import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  InsufficientCapacityError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  ServiceUnavailableError,
  ThrottledError,
  UnauthorizedError,
} from "../../../lib/ports/errors.js";
import { launchToken } from "../../../lib/ports/launch-token.js";
import { EcsApi, fromEcsError } from "../../../lib/providers/alibaba-ecs/index.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import {
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "./simulators/alibaba-ecs.js";

describe("Alibaba ECS adapter (real SDK, local ECS endpoint)", () => {
  let cloud: FakeCloud;
  let sim: EcsSimulator;
  let provider: ManagedProvider;

  beforeEach(async () => {
    const clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "i-bp", clock });
    sim = await startEcsSimulator(cloud);
    const api = new EcsApi({
      regionId: "cn-hangzhou",
      credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
      endpoint: sim.endpoint,
      protocol: "http",
      securityGroupIds: ["sg-bp1a", "sg-bp1b"],
      ramRoleName: "NowScaleNode",
    });
    provider = new ManagedProvider(api, { clock, random: () => 0.5 });
  });

  afterEach(() => sim.close());

  it("sends RunInstances with ZoneId, VSwitchId, Amount/MinAmount, ClientToken, Tag, HttpTokens and SpotStrategy", async () => {
    // Prepare
    const candidate = {
      instanceType: "ecs.c7.xlarge",
      zone: "cn-hangzhou-h",
      chargeType: "SPOT" as const,
      subnetId: "vsw-bp1abc",
    };

    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "cycle-3.0",
      candidates: [candidate],
      count: 4,
      allOrNothing: true,
      imageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
      userData: "#!/bin/sh\necho hi\n",
    });

    // Assess
    const [call] = sim.callsOf("RunInstances");
    expect(call?.request.method).toBe("POST");
    expect(call?.request.headers["x-acs-version"]).toBe("2014-05-26");
    expect(call?.request.headers.authorization).toMatch(/^ACS3-HMAC-SHA256 Credential=test-access-key-id,/);
    expect(call?.params).toEqual({
      RegionId: "cn-hangzhou",
      ZoneId: "cn-hangzhou-h",
      VSwitchId: "vsw-bp1abc",
      InstanceType: "ecs.c7.xlarge",
      ImageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
      Amount: "4",
      MinAmount: "4",
      ClientToken: launchToken("hpc1", "cycle-3.0", candidate),
      InstanceName: "nowscale-hpc1-cpu",
      InstanceChargeType: "PostPaid",
      SpotStrategy: "SpotAsPriceGo",
      HttpEndpoint: "enabled",
      HttpTokens: "required",
      "Tag.1.Key": "nowscale:cluster",
      "Tag.1.Value": "hpc1",
      "Tag.2.Key": "nowscale:queue",
      "Tag.2.Value": "cpu",
      "Tag.3.Key": "nowscale:managed",
      "Tag.3.Value": "true",
      "SecurityGroupIds.1": "sg-bp1a",
      "SecurityGroupIds.2": "sg-bp1b",
      RamRoleName: "NowScaleNode",
      UserData: Buffer.from("#!/bin/sh\necho hi\n").toString("base64"),
    });
  });

  it("asks on-demand capacity as NoSpot with MinAmount 1 when best-effort", async () => {
    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r2",
      candidates: [{ instanceType: "ecs.g7.large", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
      count: 3,
      allOrNothing: false,
      imageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
    });

    // Assess
    const params = sim.callsOf("RunInstances")[0]?.params;
    expect(params?.SpotStrategy).toBe("NoSpot");
    expect(params?.Amount).toBe("3");
    expect(params?.MinAmount).toBe("1");
    expect(params?.HttpTokens).toBe("required");
    expect(params?.VSwitchId).toBeUndefined();
  });

  it("deletes with Force and lists by the tag", async () => {
    // Prepare
    const { instances } = await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r3",
      candidates: [{ instanceType: "ecs.g7.large", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
      count: 2,
      allOrNothing: false,
      imageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
    });
    const ids = instances.map((i) => i.id);

    // Act
    const listed = await provider.list("hpc1");
    await provider.terminate(ids);

    // Assess
    expect(sim.callsOf("DescribeInstances")[0]?.params).toEqual({
      RegionId: "cn-hangzhou",
      MaxResults: "100",
      "Tag.1.Key": "nowscale:cluster",
      "Tag.1.Value": "hpc1",
    });
    expect(listed.map((i) => i.id).sort()).toEqual([...ids].sort());
    expect(listed.every((i) => i.subnetId === undefined && i.privateIp !== undefined)).toBe(true);
    expect(sim.callsOf("DeleteInstances")[0]?.params).toEqual({
      RegionId: "cn-hangzhou",
      "InstanceId.1": ids[0],
      "InstanceId.2": ids[1],
      Force: "true",
    });
  });

  it("describes by the InstanceIds JSON list", async () => {
    // Act
    await provider.describe(["i-bp1", "i-bp2"]);

    // Assess
    expect(sim.callsOf("DescribeInstances")[0]?.params).toEqual({
      RegionId: "cn-hangzhou",
      MaxResults: "100",
      InstanceIds: '["i-bp1","i-bp2"]',
    });
  });

  it("turns ECS's error body (403 OperationDenied.NoStock) into a typed error with the code as cause", async () => {
    // Prepare
    cloud.failNext("run", "capacity");

    // Act
    const result = await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r4",
      candidates: [{ instanceType: "ecs.g7.large", zone: "cn-hangzhou-i", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: false,
      imageId: "aliyun_3_x64_20G_alibase_20240101.vhd",
    });

    // Assess
    const error = result.failures[0]?.error;
    expect(error).toBeInstanceOf(InsufficientCapacityError);
    expect(error?.cause?.code).toBe("OperationDenied.NoStock");
    expect(error?.cause?.httpStatus).toBe(403);
    expect(error?.cause?.message).toBe("injected capacity fault");
  });

  it.each([
    ["OperationDenied.NoStock", 403, InsufficientCapacityError],
    ["Zone.NotOnSale", 403, InsufficientCapacityError],
    ["InvalidResourceType.NotSupported", 400, InsufficientCapacityError],
    ["QuotaExceed.ElasticQuota", 403, QuotaExceededError],
    ["Throttling.User", 400, ThrottledError],
    ["ServiceUnavailable", 503, ServiceUnavailableError],
    ["InternalError", 500, ServiceUnavailableError],
    ["InvalidInstanceId.NotFound", 404, NotFoundError],
    ["Forbidden.RAM", 403, UnauthorizedError],
    ["InvalidAccessKeyId.NotFound", 404, UnauthorizedError],
    ["IdempotentParameterMismatch", 400, InvalidRequestError],
    ["IncorrectInstanceStatus", 403, InvalidRequestError],
    ["SomethingNew", 502, ServiceUnavailableError],
  ] as const)("maps %s (HTTP %i) onto its typed error", (code, statusCode, type) => {
    // Act
    const mapped = fromEcsError(
      Object.assign(new Error(`code: ${statusCode}, m`), { code, statusCode, data: { Message: "m" } }),
    );

    // Assess
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.cause).toEqual({ code, message: "m", httpStatus: statusCode });
  });

  describe("Alibaba ECS adapter: the issue's rules (#16)", () => {
    let cloud: FakeCloud;
    let sim: EcsSimulator;
    const clock = new FakeClock();
    const api = (vSwitches?: { zoneId: string; vSwitchId: string }[]) =>
      new ManagedProvider(
        new EcsApi({
          regionId: "cn-hangzhou",
          credential: { accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET },
          endpoint: sim.endpoint,
          protocol: "http",
          ...(vSwitches === undefined ? {} : { vSwitches }),
        }),
        { clock, random: () => 0.5 },
      );
    const launch = (provider: ManagedProvider, zone: string, clusterId = "hpc1", queue = "cpu") =>
      provider.launch({
        clusterId,
        queue,
        round: "r1",
        candidates: [{ instanceType: "ecs.g7.large", zone, chargeType: "ON_DEMAND" }],
        count: 1,
        allOrNothing: true,
        imageId: "img",
      });

    beforeEach(async () => {
      cloud = new FakeCloud({ idPrefix: "i-bp", clock });
      // A region without a default VPC: RunInstances without VSwitchId fails there.
      sim = await startEcsSimulator(cloud, { defaultVpc: false });
    });
    afterEach(() => sim.close());

    it("fills a candidate without a VSwitch from the cluster's network, by zone", async () => {
      // Act
      const bare = await launch(api(), "cn-hangzhou-h");
      const filled = await launch(
        api([
          { zoneId: "cn-hangzhou-h", vSwitchId: "vsw-h" },
          { zoneId: "cn-hangzhou-i", vSwitchId: "vsw-i" },
        ]),
        "cn-hangzhou-i",
      );

      // Assess
      expect(bare.instances).toEqual([]);
      // The region's answer: no default VPC, so a VSwitch is required.
      expect(bare.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
      expect(bare.failures[0]?.error?.cause?.code).toBe("InvalidVSwitchId.NotFound");
      expect(filled.instances.map((i) => i.subnetId)).toEqual(["vsw-i"]);
      expect(sim.callsOf("RunInstances").at(-1)?.params.VSwitchId).toBe("vsw-i");
    });

    it("refuses a zone the cluster's network has no VSwitch in, naming it, before any call", async () => {
      // Act
      const result = await launch(api([{ zoneId: "cn-hangzhou-h", vSwitchId: "vsw-h" }]), "cn-hangzhou-k");

      // Assess
      expect(result.instances).toEqual([]);
      expect(result.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
      expect(String(result.failures[0]?.error)).toMatch(
        /no VSwitch in cn-hangzhou-k \(it has cn-hangzhou-h\)/,
      );
      expect(sim.callsOf("RunInstances")).toEqual([]);
    });

    it("keeps instance names within ECS's 128 characters for the longest cluster and queue names", async () => {
      // Prepare: the longest names the allow-list takes (63 characters each)
      const clusterId = `c${"x".repeat(62)}`;
      const queue = `q${"y".repeat(62)}`;

      // Act
      const result = await launch(
        api([{ zoneId: "cn-hangzhou-h", vSwitchId: "vsw-h" }]),
        "cn-hangzhou-h",
        clusterId,
        queue,
      );

      // Assess
      expect(result.instances).toHaveLength(1);
      const name = sim.callsOf("RunInstances")[0]?.params.InstanceName ?? "";
      expect(name.length).toBeLessThanOrEqual(128);
      expect(name.startsWith(`nowscale-${clusterId}-q`)).toBe(true);
    });
  });
});
