import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LaunchCandidate } from "../../../lib/ports/cloud-provider.js";
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
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { ManagedProvider } from "../../../lib/providers/shared/managed-provider.js";
import { CvmApi, fromCvmError } from "../../../lib/providers/tencent-cvm/index.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "./simulators/tencent-cvm.js";

describe("Tencent CVM adapter (real SDK, local CVM endpoint)", () => {
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let provider: ManagedProvider;

  beforeEach(async () => {
    const clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "ins-", clock });
    sim = await startCvmSimulator(cloud);
    const api = new CvmApi({
      region: "ap-shanghai",
      credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
      endpoint: sim.endpoint,
      protocol: "http://",
      vpcId: "vpc-abc12345",
      securityGroupIds: ["sg-abc12345"],
      camRoleName: "nowscale-node",
    });
    provider = new ManagedProvider(api, { clock, random: () => 0.5 });
  });

  afterEach(() => sim.close());

  it("sends RunInstances with zone, charge type, VPC, count, token, tags and base64 user data", async () => {
    // Prepare
    const candidate = {
      instanceType: "SA2.LARGE8",
      zone: "ap-shanghai-2",
      chargeType: "SPOT" as const,
      subnetId: "subnet-abc12345",
    };

    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "cycle-9.1",
      candidates: [candidate],
      count: 2,
      allOrNothing: true,
      imageId: "img-abc12345",
      userData: "#!/bin/sh\necho hi\n",
    });

    // Assess
    const [call] = sim.callsOf("RunInstances");
    expect(call?.request.headers["x-tc-action"]).toBe("RunInstances");
    expect(call?.request.headers["x-tc-version"]).toBe("2017-03-12");
    expect(call?.request.headers["x-tc-region"]).toBe("ap-shanghai");
    expect(call?.request.headers.authorization).toMatch(/^TC3-HMAC-SHA256 Credential=test-secret-id\//);
    expect(call?.params).toEqual({
      InstanceChargeType: "SPOTPAID",
      Placement: { Zone: "ap-shanghai-2" },
      InstanceType: "SA2.LARGE8",
      ImageId: "img-abc12345",
      VirtualPrivateCloud: { VpcId: "vpc-abc12345", SubnetId: "subnet-abc12345" },
      InstanceCount: 2,
      MinCount: 2,
      InstanceName: "nowscale-hpc1-cpu",
      ClientToken: launchToken("hpc1", "cycle-9.1", candidate),
      TagSpecification: [
        {
          ResourceType: "instance",
          Tags: [
            { Key: "nowscale:cluster", Value: "hpc1" },
            { Key: "nowscale:queue", Value: "cpu" },
            { Key: "nowscale:managed", Value: "true" },
          ],
        },
      ],
      SecurityGroupIds: ["sg-abc12345"],
      CamRoleName: "nowscale-node",
      UserData: Buffer.from("#!/bin/sh\necho hi\n").toString("base64"),
    });
  });

  it("asks on-demand capacity as POSTPAID_BY_HOUR with MinCount 1 when best-effort", async () => {
    // Act
    await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r2",
      candidates: [{ instanceType: "S5.LARGE8", zone: "ap-shanghai-4", chargeType: "ON_DEMAND" }],
      count: 5,
      allOrNothing: false,
      imageId: "img-abc12345",
    });

    // Assess
    const params = sim.callsOf("RunInstances")[0]?.params;
    expect(params?.InstanceChargeType).toBe("POSTPAID_BY_HOUR");
    expect(params?.InstanceCount).toBe(5);
    expect(params?.MinCount).toBe(1);
    expect(params?.VirtualPrivateCloud).toBeUndefined();
    expect(params?.UserData).toBeUndefined();
  });

  it("terminates by InstanceIds and lists by the tag filter", async () => {
    // Prepare
    const { instances } = await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r3",
      candidates: [{ instanceType: "S5.LARGE8", zone: "ap-shanghai-4", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: false,
      imageId: "img-abc12345",
    });

    // Act
    const listed = await provider.list("hpc1");
    await provider.terminate(instances.map((i) => i.id));

    // Assess
    expect(sim.callsOf("DescribeInstances")[0]?.params).toEqual({
      Filters: [{ Name: "tag:nowscale:cluster", Values: ["hpc1"] }],
      Offset: 0,
      Limit: 100,
    });
    expect(listed.map((i) => i.id)).toEqual(instances.map((i) => i.id));
    expect(sim.callsOf("TerminateInstances")[0]?.params).toEqual({ InstanceIds: instances.map((i) => i.id) });
  });

  it("turns CVM's error answer (HTTP 200, Response.Error) into a typed error with the code as cause", async () => {
    // Prepare
    cloud.failNext("run", "capacity");

    // Act
    const result = await provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: "r4",
      candidates: [{ instanceType: "S5.LARGE8", zone: "ap-shanghai-4", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: false,
      imageId: "img-abc12345",
    });

    // Assess
    const error = result.failures[0]?.error;
    expect(error).toBeInstanceOf(InsufficientCapacityError);
    expect(error?.cause?.code).toBe("ResourceInsufficient.SpecifiedInstanceType");
    expect(error?.cause?.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ["ResourceInsufficient.SpecifiedInstanceType", InsufficientCapacityError],
    ["ResourceInsufficient.ZoneSoldOutForSpecifiedInstance", InsufficientCapacityError],
    ["ResourcesSoldOut.SpecifiedInstanceType", InsufficientCapacityError],
    ["InvalidParameterValue.InsufficientOffering", InsufficientCapacityError],
    ["ResourceInsufficient.InsufficientOfferingMinimum", InsufficientCapacityError],
    ["UnsupportedOperation.MinCountUnsupportedRegion", InvalidRequestError],
    ["LimitExceeded.InstanceQuota", QuotaExceededError],
    ["LimitExceeded.SpotQuota", QuotaExceededError],
    ["ResourceInsufficient.InsufficientGroupQuota", QuotaExceededError],
    ["RequestLimitExceeded", ThrottledError],
    ["RequestLimitExceeded.UinLimitExceeded", ThrottledError],
    ["InternalError", ServiceUnavailableError],
    ["InvalidInstanceId.NotFound", NotFoundError],
    ["AuthFailure.SignatureFailure", UnauthorizedError],
    ["UnauthorizedOperation", UnauthorizedError],
    ["InvalidParameterValue", InvalidRequestError],
    ["SomethingNew.Unknown", InvalidRequestError],
  ] as const)("maps %s onto its typed error", (code, type) => {
    // Act
    const mapped = fromCvmError(Object.assign(new Error("msg"), { code, requestId: "req-2" }));

    // Assess
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.cause).toEqual({ code, message: "msg", requestId: "req-2" });
  });

  it("maps a non-200 answer without a code by its HTTP status", () => {
    // Act
    const mapped = fromCvmError(Object.assign(new Error("Bad Gateway"), { httpCode: 502 }));

    // Assess
    expect(mapped).toBeInstanceOf(ServiceUnavailableError);
    expect(mapped.cause?.httpStatus).toBe(502);
  });
});

describe("Tencent CVM's own launch and terminate rules (issue 16)", () => {
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let provider: ManagedProvider;

  beforeEach(async () => {
    const clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "ins-", clock });
    sim = await startCvmSimulator(cloud);
    const api = new CvmApi({
      region: "ap-shanghai",
      credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
      endpoint: sim.endpoint,
      protocol: "http://",
      clock,
    });
    provider = new ManagedProvider(api, { clock, random: () => 0.5 });
  });

  afterEach(() => sim.close());

  const launch = (count: number, allOrNothing: boolean, chargeType: "SPOT" | "ON_DEMAND" = "ON_DEMAND") =>
    provider.launch({
      clusterId: "hpc1",
      queue: "cpu",
      round: `r-${count}-${allOrNothing}-${chargeType}`,
      candidates: [{ instanceType: "S5.LARGE8", zone: "ap-shanghai-4", chargeType }],
      count,
      allOrNothing,
      imageId: "img-abc12345",
    });

  it("confirms an all-or-nothing launch by describe: a LAUNCH_FAILED member is a capacity event, all released", async () => {
    // Prepare: both ids come back, then one of them ends LAUNCH_FAILED.
    sim.failLaunchOfNext(1);

    // Act
    const result = await launch(2, true);

    // Assess
    expect(result.instances).toEqual([]);
    expect(result.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
    expect(sim.callsOf("DescribeInstances").length).toBeGreaterThan(0);
    expect(cloud.live()).toEqual([]);
    expect(result.unreleased).toEqual([]);
  });

  it("keeps a confirmed all-or-nothing launch whole", async () => {
    // Act
    const result = await launch(2, true);

    // Assess
    expect(result.instances).toHaveLength(2);
    expect(result.failures).toEqual([]);
    expect(cloud.live()).toHaveLength(2);
  });

  it("does not hold a best-effort launch up with a describe", async () => {
    // Act
    const result = await launch(3, false);

    // Assess
    expect(result.instances).toHaveLength(3);
    expect(sim.callsOf("RunInstances")[0]?.params.MinCount).toBe(1);
    expect(sim.callsOf("DescribeInstances")).toEqual([]);
  });

  it("terminates a batch mixing spot and pay-as-you-go in one call per charge type", async () => {
    // Prepare
    const spot = (await launch(2, false, "SPOT")).instances.map((i) => i.id);
    const onDemand = (await launch(2, false, "ON_DEMAND")).instances.map((i) => i.id);

    // Act
    await provider.terminate([spot[0] ?? "", onDemand[0] ?? "", spot[1] ?? "", onDemand[1] ?? ""]);

    // Assess
    const batches = sim.callsOf("TerminateInstances").map((c) => c.params.InstanceIds);
    expect(batches).toEqual([
      [spot[0], spot[1]],
      [onDemand[0], onDemand[1]],
    ]);
    expect(cloud.live()).toEqual([]);
  });

  it("names instances within CVM's 128 characters, with room for CVM's -<n> suffix", async () => {
    // Prepare
    const long = "c".repeat(63);

    // Act
    await provider.launch({
      clusterId: long,
      queue: "q".repeat(63),
      round: "r-long",
      candidates: [{ instanceType: "S5.LARGE8", zone: "ap-shanghai-4", chargeType: "ON_DEMAND" }],
      count: 1,
      allOrNothing: false,
      imageId: "img-abc12345",
    });

    // Assess
    const name = String(sim.callsOf("RunInstances")[0]?.params.InstanceName);
    expect(name.length).toBeLessThanOrEqual(124);
    expect(name.startsWith(`nowscale-${long}`)).toBe(true);
  });
});

describe("Tencent CVM on an account without partial delivery (MinCount refused, issue 16)", () => {
  let clock: FakeClock;
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let warnings: string[];

  const newProvider = () =>
    new ManagedProvider(
      new CvmApi({
        region: "ap-shanghai",
        credential: { secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY },
        endpoint: sim.endpoint,
        protocol: "http://",
        clock,
        warn: (message) => warnings.push(message),
      }),
      { clock, random: () => 0.5 },
    );

  beforeEach(async () => {
    clock = new FakeClock();
    cloud = new FakeCloud({ idPrefix: "ins-", clock });
    sim = await startCvmSimulator(cloud);
    warnings = [];
  });

  afterEach(() => sim.close());

  const zoneA: LaunchCandidate = {
    instanceType: "S5.LARGE8",
    zone: "ap-shanghai-4",
    chargeType: "ON_DEMAND",
  };
  const zoneB: LaunchCandidate = {
    instanceType: "S5.LARGE8",
    zone: "ap-shanghai-3",
    chargeType: "ON_DEMAND",
  };
  const request = (count: number, allOrNothing: boolean, round = "r1", candidates = [zoneA, zoneB]) => ({
    clusterId: "hpc1",
    queue: "cpu",
    round,
    candidates,
    count,
    allOrNothing,
    imageId: "img-abc12345",
  });
  const runCalls = () =>
    sim.callsOf("RunInstances").map((c) => ({
      zone: (c.params.Placement as { Zone: string }).Zone,
      count: c.params.InstanceCount,
      minCount: c.params.MinCount,
    }));

  it("best-effort: retries the refused candidate without MinCount, confirms by describe, passes the rest on", async () => {
    // Prepare: the candidate's plain call starts 4, one of which ends LAUNCH_FAILED.
    sim.refuseMinCount();
    sim.failLaunchOfNext(1);

    // Act
    const result = await newProvider().launch(request(4, false));

    // Assess
    expect(runCalls()).toEqual([
      { zone: "ap-shanghai-4", count: 4, minCount: 1 },
      { zone: "ap-shanghai-4", count: 4, minCount: undefined },
      { zone: "ap-shanghai-3", count: 1, minCount: undefined },
    ]);
    expect(result.instances.map((i) => i.zone).sort()).toEqual([
      "ap-shanghai-3",
      "ap-shanghai-4",
      "ap-shanghai-4",
      "ap-shanghai-4",
    ]);
    expect(result.failures.map((f) => [f.index, f.error.constructor])).toEqual([
      [0, InsufficientCapacityError],
    ]);
    expect(sim.callsOf("DescribeInstances").length).toBeGreaterThan(0);
    expect(
      cloud
        .live()
        .map((i) => i.id)
        .sort(),
    ).toEqual(result.instances.map((i) => i.id).sort());
    expect(result.unreleased).toEqual([]);
  });

  it("best-effort: a candidate that cannot start the whole count without MinCount gives none, the next all", async () => {
    // Prepare
    sim.refuseMinCount();
    cloud.setCapacity("S5.LARGE8", "ap-shanghai-4", 2);

    // Act
    const result = await newProvider().launch(request(3, false));

    // Assess
    expect(result.instances.map((i) => i.zone)).toEqual(["ap-shanghai-3", "ap-shanghai-3", "ap-shanghai-3"]);
    expect(result.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
    expect(cloud.live()).toHaveLength(3);
  });

  it("all-or-nothing: a short set without MinCount is confirmed by describe and terminated, the next candidate delivers", async () => {
    // Prepare: the first candidate's plain call starts 3, one ends LAUNCH_FAILED.
    sim.refuseMinCount();
    sim.failLaunchOfNext(1);
    const provider = newProvider();

    // Act
    const result = await provider.launch(request(3, true));

    // Assess
    expect(runCalls()).toEqual([
      { zone: "ap-shanghai-4", count: 3, minCount: 3 },
      { zone: "ap-shanghai-4", count: 3, minCount: undefined },
      { zone: "ap-shanghai-3", count: 3, minCount: undefined },
    ]);
    expect(result.instances.map((i) => i.zone)).toEqual(["ap-shanghai-3", "ap-shanghai-3", "ap-shanghai-3"]);
    expect(result.failures.map((f) => [f.index, f.error.constructor])).toEqual([
      [0, InsufficientCapacityError],
    ]);
    expect(
      cloud
        .live()
        .map((i) => i.id)
        .sort(),
    ).toEqual(result.instances.map((i) => i.id).sort());
    expect(result.unreleased).toEqual([]);
    expect((await provider.unavailableOfferings()).map((o) => o.zone)).toEqual(["ap-shanghai-4"]);
  });

  it("remembers the refusal: two launches pay one refused call, and it is logged once", async () => {
    // Prepare
    sim.refuseMinCount();
    const provider = newProvider();

    // Act
    const first = await provider.launch(request(2, false, "r1", [zoneA]));
    const second = await provider.launch(request(2, true, "r2", [zoneA]));

    // Assess
    expect(first.instances).toHaveLength(2);
    expect(second.instances).toHaveLength(2);
    expect(runCalls().filter((c) => c.minCount !== undefined)).toHaveLength(1);
    expect(runCalls()).toHaveLength(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("UnsupportedOperation.MinCountUnsupportedRegion");
    expect(warnings[0]).toContain("ap-shanghai");
  });

  it("keeps the launch idempotent without MinCount: the same round, again or after a cold start, starts nothing new", async () => {
    // Prepare
    sim.refuseMinCount();
    const first = await newProvider().launch(request(2, false, "r1", [zoneA]));
    const provider = newProvider();

    // Act
    const coldStart = await provider.launch(request(2, false, "r1", [zoneA]));
    const again = await provider.launch(request(2, false, "r1", [zoneA]));

    // Assess
    const ids = first.instances.map((i) => i.id).sort();
    expect(coldStart.instances.map((i) => i.id).sort()).toEqual(ids);
    expect(again.instances.map((i) => i.id).sort()).toEqual(ids);
    expect(cloud.live()).toHaveLength(2);
  });

  it("remembers a charge type's refusal for that charge type only", async () => {
    // Prepare: spot refuses MinCount, pay-as-you-go takes it.
    sim.refuseMinCount("UnsupportedOperation.MinCountUnsupportedChargeType", "SPOTPAID");
    const provider = newProvider();
    const spot = { ...zoneA, chargeType: "SPOT" as const };

    // Act
    const spotResult = await provider.launch(request(2, false, "r1", [spot]));
    const onDemand = await provider.launch(request(2, false, "r2", [zoneA]));
    const spotAgain = await provider.launch(request(1, false, "r3", [spot]));

    // Assess
    expect([spotResult, onDemand, spotAgain].map((r) => r.instances.length)).toEqual([2, 2, 1]);
    expect(sim.callsOf("RunInstances").map((c) => [c.params.InstanceChargeType, c.params.MinCount])).toEqual([
      ["SPOTPAID", 1],
      ["SPOTPAID", undefined],
      ["POSTPAID_BY_HOUR", 1],
      ["SPOTPAID", undefined],
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("SPOT instances in ap-shanghai");
  });

  it("takes the generic account refusal for MinCount's only when the plain call then goes through", async () => {
    // Prepare: the first launch's plain call fails for authorization, the second goes through.
    sim.refuseMinCount("OperationDenied.AccountNotSupported");
    cloud.failNext("run", "unauthorized");
    const provider = newProvider();

    // Act
    const denied = await provider.launch(request(1, false, "r1", [zoneA]));
    const second = await provider.launch(request(1, false, "r2", [zoneB]));
    const third = await provider.launch(request(1, false, "r3", [zoneB]));

    // Assess
    expect(denied.failures[0]?.error).toBeInstanceOf(UnauthorizedError);
    expect([second, third].map((r) => r.instances.length)).toEqual([1, 1]);
    // r1: refused, plain call denied; r2: refused (not remembered after r1), plain call; r3: plain only.
    expect(runCalls().map((c) => c.minCount)).toEqual([1, undefined, 1, undefined, undefined]);
    expect(warnings).toHaveLength(1);
    expect(cloud.live()).toHaveLength(2);
  });
});
