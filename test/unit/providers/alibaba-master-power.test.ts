import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidRequestError, NotFoundError, UnauthorizedError } from "../../../lib/ports/errors.js";
import { MANAGED_TAG, ROLE_TAG } from "../../../lib/ports/tags.js";
import { AlibabaMasterPower } from "../../../lib/providers/alibaba-ecs/master-power.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import {
  type EcsSimulator,
  startEcsSimulator,
  TEST_ACCESS_KEY_ID,
  TEST_ACCESS_KEY_SECRET,
} from "./simulators/alibaba-ecs.js";

/**
 * Sleep's master stop and wake's start on Alibaba: the real SDK against the loopback ECS, whose requests
 * are checked against the SDK's own models (wire names of StopInstancesRequest, StartInstancesRequest)
 * and ACS3-signed with the test key.
 */
describe("AlibabaMasterPower (real SDK, local ECS endpoint)", () => {
  let cloud: FakeCloud;
  let sim: EcsSimulator;
  let power: AlibabaMasterPower;
  const masterTags = { [MANAGED_TAG]: "true", [ROLE_TAG]: "master", "nowscale:cluster": "hpc1" };

  beforeEach(async () => {
    cloud = new FakeCloud({ idPrefix: "i-", clock: new FakeClock() });
    sim = await startEcsSimulator(cloud);
    power = new AlibabaMasterPower({
      regionId: "cn-hangzhou",
      credential: async () => ({ accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: TEST_ACCESS_KEY_SECRET }),
      endpoint: sim.endpoint,
      protocol: "http",
    });
  });

  afterEach(() => sim.close());

  it("stops a master in economical mode (StopCharging), starts it again, idempotent both ways", async () => {
    // Prepare
    const master = cloud.seed({ instanceType: "ecs.g7.large", zone: "cn-hangzhou-h", tags: masterTags });
    // Act
    await power.stop([master.id]);
    await power.stop([master.id]);
    const asleep = await power.describe([master.id]);
    await power.start([master.id]);
    await power.start([master.id]);
    const awake = await power.describe([master.id]);
    // Assess
    const stops = sim.callsOf("StopInstances").map((c) => c.params);
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({
      RegionId: "cn-hangzhou",
      "InstanceId.1": master.id,
      StoppedMode: "StopCharging",
      ForceStop: "false",
    });
    const starts = sim.callsOf("StartInstances").map((c) => c.params);
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ RegionId: "cn-hangzhou", "InstanceId.1": master.id });
    expect(asleep).toMatchObject([{ id: master.id, power: "stopped", stoppedMode: "StopCharging" }]);
    expect(awake).toMatchObject([{ id: master.id, power: "running" }]);
    expect(awake[0]?.stoppedMode).toBeUndefined();
  });

  it("refuses an instance that is not a NowScale master, and sends no stop", async () => {
    // Prepare
    const other = cloud.seed({
      instanceType: "ecs.g7.large",
      zone: "cn-hangzhou-h",
      tags: { owner: "someone" },
    });
    // Act
    const failed = await power.stop([other.id]).catch((e: unknown) => e);
    // Assess
    expect(failed).toBeInstanceOf(InvalidRequestError);
    expect((failed as Error).message).toContain(`${MANAGED_TAG}=true`);
    expect(sim.callsOf("StopInstances")).toHaveLength(0);
  });

  it("answers NotFoundError for an unknown instance and UnauthorizedError for a wrong key", async () => {
    // Prepare
    const wrongKey = new AlibabaMasterPower({
      regionId: "cn-hangzhou",
      credential: async () => ({ accessKeyId: TEST_ACCESS_KEY_ID, accessKeySecret: "not-the-secret" }),
      endpoint: sim.endpoint,
      protocol: "http",
    });
    // Act
    const missing = await power.start(["i-nothere"]).catch((e: unknown) => e);
    const refused = await wrongKey.stop(["i-1"]).catch((e: unknown) => e);
    // Assess
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect(sim.callsOf("StartInstances")).toHaveLength(0);
  });
});
