import { describe, expect, it } from "vitest";
import { ServiceUnavailableError } from "../../../lib/ports/errors.js";
import { MANAGED_TAG, ROLE_TAG } from "../../../lib/ports/tags.js";
import { type PoweredInstance, planPower } from "../../../lib/providers/shared/master-power.js";

/** The CVM/ECS stop-start planner: what is sent for each state the master may be caught in. */
const master = (power: PoweredInstance["power"], cloudState: string): PoweredInstance => ({
  id: "m-1",
  tags: { [MANAGED_TAG]: "true", [ROLE_TAG]: "master" },
  power,
  cloudState,
});

describe("planPower", () => {
  it("stops only a running master and starts only a stopped one; the same direction's transition sends nothing", () => {
    // Act / Assess
    expect(planPower("CVM", "stop", ["m-1"], [master("running", "RUNNING")])).toEqual(["m-1"]);
    expect(planPower("CVM", "stop", ["m-1"], [master("stopping", "STOPPING")])).toEqual([]);
    expect(planPower("CVM", "stop", ["m-1"], [master("stopped", "STOPPED")])).toEqual([]);
    expect(planPower("ECS", "start", ["m-1"], [master("stopped", "Stopped")])).toEqual(["m-1"]);
    expect(planPower("ECS", "start", ["m-1"], [master("starting", "Starting")])).toEqual([]);
    expect(planPower("ECS", "start", ["m-1"], [master("running", "Running")])).toEqual([]);
  });

  it("answers a retryable error for a master caught in the opposite transition or pending", () => {
    // Act
    const startWhileStopping = (() => {
      try {
        return planPower("ECS", "start", ["m-1"], [master("stopping", "Stopping")]);
      } catch (e) {
        return e;
      }
    })();
    // Assess
    expect(startWhileStopping).toBeInstanceOf(ServiceUnavailableError);
    expect((startWhileStopping as ServiceUnavailableError).retryable).toBe(true);
    expect((startWhileStopping as Error).message).toContain("m-1 is Stopping");
    expect(() => planPower("CVM", "stop", ["m-1"], [master("other", "PENDING")])).toThrow(
      ServiceUnavailableError,
    );
  });
});
