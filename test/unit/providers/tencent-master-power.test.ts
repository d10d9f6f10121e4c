import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CloudProviderError,
  InvalidRequestError,
  NotFoundError,
  UnauthorizedError,
} from "../../../lib/ports/errors.js";
import { MANAGED_TAG, ROLE_TAG } from "../../../lib/ports/tags.js";
import { FakeClock, FakeCloud } from "../../../lib/providers/fake/index.js";
import { TencentMasterPower } from "../../../lib/providers/tencent-cvm/master-power.js";
import {
  type CvmSimulator,
  startCvmSimulator,
  TEST_SECRET_ID,
  TEST_SECRET_KEY,
} from "./simulators/tencent-cvm.js";

/**
 * Sleep's master stop and wake's start on Tencent: the real SDK against the loopback CVM, whose requests
 * are checked against the SDK's own models (StoppedMode, StopType) and TC3-signed with the test key.
 */
describe("TencentMasterPower (real SDK, local CVM endpoint)", () => {
  let cloud: FakeCloud;
  let sim: CvmSimulator;
  let power: TencentMasterPower;
  const masterTags = { [MANAGED_TAG]: "true", [ROLE_TAG]: "master", "nowscale:cluster": "hpc1" };

  beforeEach(async () => {
    cloud = new FakeCloud({ idPrefix: "ins-", clock: new FakeClock() });
    sim = await startCvmSimulator(cloud);
    power = new TencentMasterPower({
      region: "ap-shanghai",
      credential: async () => ({ secretId: TEST_SECRET_ID, secretKey: TEST_SECRET_KEY }),
      endpoint: sim.endpoint,
      protocol: "http://",
    });
  });

  afterEach(() => sim.close());

  it("stops a master with STOP_CHARGING, starts it again, and is idempotent both ways", async () => {
    // Prepare
    const master = cloud.seed({ instanceType: "SA2.MEDIUM4", zone: "ap-shanghai-2", tags: masterTags });
    // Act
    await power.stop([master.id]);
    await power.stop([master.id]);
    const asleep = await power.describe([master.id]);
    await power.start([master.id]);
    await power.start([master.id]);
    const awake = await power.describe([master.id]);
    // Assess
    expect(sim.callsOf("StopInstances").map((c) => c.params)).toEqual([
      { InstanceIds: [master.id], StopType: "SOFT_FIRST", StoppedMode: "STOP_CHARGING" },
    ]);
    expect(sim.callsOf("StartInstances").map((c) => c.params)).toEqual([{ InstanceIds: [master.id] }]);
    expect(asleep).toMatchObject([{ id: master.id, power: "stopped", stopChargingMode: "STOP_CHARGING" }]);
    expect(awake).toMatchObject([{ id: master.id, power: "running", stopChargingMode: "NOT_APPLICABLE" }]);
  });

  it("refuses an instance that is not a NowScale master, and sends no stop", async () => {
    // Prepare
    const compute = cloud.seed({
      instanceType: "SA2.MEDIUM4",
      zone: "ap-shanghai-2",
      tags: { [MANAGED_TAG]: "true", "nowscale:cluster": "hpc1" },
    });
    // Act
    const failed = await power.stop([compute.id]).catch((e: unknown) => e);
    // Assess
    expect(failed).toBeInstanceOf(InvalidRequestError);
    expect((failed as Error).message).toContain(`${ROLE_TAG}=master`);
    expect(sim.callsOf("StopInstances")).toHaveLength(0);
  });

  it("answers NotFoundError for an unknown instance and UnauthorizedError for a wrong key", async () => {
    // Prepare
    const wrongKey = new TencentMasterPower({
      region: "ap-shanghai",
      credential: async () => ({ secretId: TEST_SECRET_ID, secretKey: "not-the-key" }),
      endpoint: sim.endpoint,
      protocol: "http://",
    });
    // Act
    const missing = await power.start(["ins-nothere"]).catch((e: unknown) => e);
    const refused = await wrongKey.stop(["ins-1"]).catch((e: unknown) => e);
    // Assess
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect(sim.callsOf("StartInstances")).toHaveLength(0);
  });

  it("passes a missing key on as the deployment's error, not a cloud error, and sends nothing", async () => {
    // Prepare
    const noKey = new TencentMasterPower({
      region: "ap-shanghai",
      credential: async () =>
        Promise.reject(new Error("secret NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN has no secretKey")),
      endpoint: sim.endpoint,
      protocol: "http://",
    });
    // Act
    const failed = await noKey.stop(["ins-1"]).catch((e: unknown) => e);
    // Assess
    expect(failed).not.toBeInstanceOf(CloudProviderError);
    expect((failed as Error).message).toBe("secret NOWSCALE_TENCENT_CREDENTIALS_SECRET_ARN has no secretKey");
    expect(sim.calls).toHaveLength(0);
  });

  it("sends nothing for no instance", async () => {
    // Act
    await power.stop([]);
    await power.start([]);
    // Assess
    expect(sim.calls).toHaveLength(0);
  });
});
