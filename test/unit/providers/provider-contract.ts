import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CloudProvider, LaunchCandidate, LaunchRequest } from "../../../lib/ports/cloud-provider.js";
import {
  InsufficientCapacityError,
  InvalidRequestError,
  QuotaExceededError,
  UnauthorizedError,
} from "../../../lib/ports/errors.js";
import { CLUSTER_TAG, MANAGED_TAG, QUEUE_TAG } from "../../../lib/ports/tags.js";
import type { FakeClock, FaultKind } from "../../../lib/providers/fake/index.js";

/** The controls and views of a simulated cloud; FakeCloud has them all, the local harness maps them. */
export interface SimulatedCloud {
  /** Remaining slots for an offering. */
  setCapacity(instanceType: string, zone: string, slots: number): void;
  /** The offering starts at most `count` per call whatever the minimum asked. */
  setUnderDelivery(instanceType: string, zone: string, count: number): void;
  failNext(operation: "run", kind: FaultKind, times?: number): void;
  /** What is running (and paid for) now. */
  live():
    | { id: string; zone: string; tags: Record<string, string> }[]
    | Promise<{ id: string; zone: string; tags: Record<string, string> }[]>;
  /** Puts another owner's instance in place. */
  seed(instance: { instanceType: string; zone: string; tags: Record<string, string> }): unknown;
}

/** One adapter wired to a simulated cloud: what the contract needs to drive and observe it. */
export interface ContractHarness {
  provider: CloudProvider;
  /** The simulated cloud behind the adapter's wire (SDK mock, local HTTP server, namespace nodes). */
  cloud: SimulatedCloud;
  /** Token, minimum and instance name of every launch call that reached the cloud, in order. */
  launchInputs(): { clientToken?: string; minCount: number; name?: string }[];
  clock: FakeClock;
  /** Two valid candidates in different zones, first to try first. */
  candidates: [LaunchCandidate, LaunchCandidate];
  imageId: string;
  /** A well-formed instance id the cloud never issued. */
  missingId: string;
  /** How many launch calls reached the cloud's wire (the adapter's own record, not the fake's). */
  wireLaunchCalls(): number;
  /** The region's zones as the simulated cloud lists them, sorted. */
  zones: string[];
  /** How many zone listings (DescribeAvailabilityZones, DescribeZones) reached the cloud's wire. */
  wireZoneCalls(): number;
  close(): Promise<void>;
}

/**
 * The CloudProvider contract (lib/ports/cloud-provider.ts), run against every adapter: each adapter's
 * harness puts the same simulated cloud behind its real SDK, so one suite checks them all.
 */
export function providerContract(name: string, makeHarness: () => Promise<ContractHarness>): void {
  describe(`CloudProvider contract: ${name}`, () => {
    let h: ContractHarness;

    beforeEach(async () => {
      h = await makeHarness();
    });

    afterEach(async () => {
      await h.close();
    });

    function request(overrides: Partial<LaunchRequest> = {}): LaunchRequest {
      return {
        clusterId: "hpc1",
        queue: "compute",
        round: "cycle-1.0",
        candidates: h.candidates,
        count: 3,
        allOrNothing: false,
        imageId: h.imageId,
        userData: "#!/bin/sh\necho hello\n",
        ...overrides,
      };
    }

    it("answers the region's zones, sorted, each candidate's among them, from one cloud call", async () => {
      // Act
      const first = await h.provider.zones();
      const again = await h.provider.zones();

      // Assess
      expect(first).toEqual(h.zones);
      expect(again).toEqual(h.zones);
      for (const c of h.candidates) expect(first).toContain(c.zone);
      expect(h.wireZoneCalls()).toBe(1);
    });

    it("names instances within every cloud's 128-character limit, cut with a stable hash of the full name", async () => {
      // Prepare: the longest names the allow-lists accept
      const cluster = `c${"a".repeat(62)}`;
      const launch = (queue: string, round: string) =>
        h.provider.launch({
          clusterId: cluster,
          queue,
          round,
          candidates: [h.candidates[0]],
          count: 1,
          allOrNothing: false,
          imageId: h.imageId,
        });

      // Act
      const first = await launch(`q${"b".repeat(62)}`, "r1");
      await launch(`q${"b".repeat(61)}c`, "r2");
      await launch(`q${"b".repeat(62)}`, "r3");
      await launch("short", "r4");

      // Assess
      expect(first.failures).toEqual([]);
      const names = h.launchInputs().map((i) => i.name);
      if (names.every((n) => n === undefined)) return; // a cloud without instance names (local)
      for (const n of names) expect(n?.length ?? 0).toBeLessThanOrEqual(128);
      expect(names[0]).toMatch(/^nowscale-caaaa.*-[0-9a-f]{8}$/);
      expect(names[1]).not.toBe(names[0]);
      expect(names[2]).toBe(names[0]);
      expect(names[3]).toBe(`nowscale-${cluster}-short`);
    });

    it("falls through to the second candidate after a capacity error on the first", async () => {
      // Prepare
      const [first, second] = h.candidates;
      h.cloud.setCapacity(first.instanceType, first.zone, 0);

      // Act
      const result = await h.provider.launch(request());

      // Assess
      expect(result.instances).toHaveLength(3);
      expect(
        result.instances.every((i) => i.zone === second.zone && i.instanceType === second.instanceType),
      ).toBe(true);
      expect(result.failures).toHaveLength(1);
      expect(result.failures[0]?.index).toBe(0);
      expect(result.failures[0]?.skipped).toBe(false);
      expect(result.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
      expect(result.failures[0]?.error.cause?.code).toBeTruthy();
      const live = await h.cloud.live();
      expect(live.map((i) => i.id).sort()).toEqual(result.instances.map((i) => i.id).sort());
    });

    it("skips an offering held unavailable after a capacity error until the TTL passes", async () => {
      // Prepare
      const [first] = h.candidates;
      h.cloud.setCapacity(first.instanceType, first.zone, 0);
      await h.provider.launch(request({ round: "cycle-1.0", count: 1 }));
      const callsAfterFirst = h.wireLaunchCalls();

      // Act
      const held = await h.provider.launch(request({ round: "cycle-2.0", count: 1 }));
      h.clock.advance(600_000);
      h.cloud.setCapacity(first.instanceType, first.zone, 5);
      const retried = await h.provider.launch(request({ round: "cycle-3.0", count: 1 }));

      // Assess
      expect(held.failures[0]?.skipped).toBe(true);
      expect(held.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
      expect(h.wireLaunchCalls()).toBe(callsAfterFirst + 2);
      expect(retried.failures).toEqual([]);
      expect(retried.instances[0]?.zone).toBe(first.zone);
    });

    it("retries throttling with backoff, then succeeds with the same token", async () => {
      // Prepare
      h.cloud.failNext("run", "throttle", 2);

      // Act
      const result = await h.provider.launch(request());

      // Assess
      expect(result.instances).toHaveLength(3);
      expect(result.failures).toEqual([]);
      expect(h.wireLaunchCalls()).toBe(3);
      expect(h.clock.sleeps).toHaveLength(2);
      const tokens = h.launchInputs().map((i) => i.clientToken);
      expect(new Set(tokens).size).toBe(1);
      expect(tokens[0]).toMatch(/^[\x21-\x7e]{1,64}$/);
    });

    it("does not retry an invalid request, and stops the walk on an auth failure", async () => {
      // Prepare
      h.cloud.failNext("run", "invalid");

      // Act
      const invalid = await h.provider.launch(request({ round: "r-invalid" }));
      // Past the invalid offering's back-off (its own test below), so both launches reach the cloud.
      h.clock.advance(30_000);
      h.cloud.failNext("run", "unauthorized");
      const before = h.wireLaunchCalls();
      const denied = await h.provider.launch(request({ round: "r-denied" }));

      // Assess
      expect(invalid.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
      expect(invalid.instances).toHaveLength(3);
      expect(h.clock.sleeps).toEqual([]);
      expect(denied.failures).toHaveLength(1);
      expect(denied.failures[0]?.error).toBeInstanceOf(UnauthorizedError);
      expect(denied.instances).toEqual([]);
      expect(h.wireLaunchCalls()).toBe(before + 1);
    });

    it("backs a failing offering off (30 s, doubling) without calling the cloud, and forgets it after a success", async () => {
      // Prepare: the first candidate refuses the request (an invalid image, say)
      h.cloud.failNext("run", "invalid");
      const one = (round: string) => h.provider.launch(request({ round, count: 1, allOrNothing: false }));

      // Act
      const failed = await one("b1");
      const callsAfterFailure = h.wireLaunchCalls();
      const held = await one("b2");
      const heldCalls = h.wireLaunchCalls() - callsAfterFailure;
      h.clock.advance(30_000);
      h.cloud.failNext("run", "invalid");
      await one("b3");
      h.clock.advance(30_000);
      const stillHeld = await one("b4");
      h.clock.advance(30_000);
      const retried = await one("b5");

      // Assess: the held offering is skipped with the error that put it on hold, the next one serves
      expect(failed.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
      expect(held.failures[0]).toMatchObject({ index: 0, skipped: true });
      expect(held.failures[0]?.error).toBeInstanceOf(InvalidRequestError);
      expect(heldCalls).toBe(1);
      expect(stillHeld.failures[0]).toMatchObject({ index: 0, skipped: true });
      expect(retried.failures).toEqual([]);
      expect(retried.instances[0]?.zone).toBe(h.candidates[0].zone);
    });

    it("reports a quota error per candidate and moves on", async () => {
      // Prepare
      h.cloud.failNext("run", "quota");

      // Act
      const result = await h.provider.launch(request());

      // Assess
      expect(result.failures[0]?.error).toBeInstanceOf(QuotaExceededError);
      expect(result.instances).toHaveLength(3);
      expect(result.instances[0]?.zone).toBe(h.candidates[1].zone);
    });

    it("leaves no surplus after an all-or-nothing shortfall", async () => {
      // Prepare
      const [first, second] = h.candidates;
      h.cloud.setUnderDelivery(first.instanceType, first.zone, 2);

      // Act
      const result = await h.provider.launch(request({ allOrNothing: true }));

      // Assess
      expect(result.failures).toHaveLength(1);
      expect(result.failures[0]?.error).toBeInstanceOf(InsufficientCapacityError);
      expect(result.instances).toHaveLength(3);
      expect(result.unreleased).toEqual([]);
      const live = await h.cloud.live();
      expect(live).toHaveLength(3);
      expect(live.every((i) => i.zone === second.zone)).toBe(true);
    });

    it("asks for MinCount = count on an all-or-nothing launch and starts nothing when it cannot", async () => {
      // Prepare
      for (const c of h.candidates) h.cloud.setCapacity(c.instanceType, c.zone, 2);

      // Act
      const result = await h.provider.launch(request({ allOrNothing: true }));

      // Assess
      expect(result.instances).toEqual([]);
      expect(result.failures.map((f) => f.error.name)).toEqual([
        "InsufficientCapacityError",
        "InsufficientCapacityError",
      ]);
      expect(await h.cloud.live()).toEqual([]);
      const mins = h.launchInputs().map((i) => i.minCount);
      expect(mins).toEqual([3, 3]);
    });

    it("takes what a best-effort launch can get from each candidate in turn", async () => {
      // Prepare
      const [first, second] = h.candidates;
      h.cloud.setCapacity(first.instanceType, first.zone, 2);

      // Act
      const result = await h.provider.launch(request({ count: 3 }));

      // Assess
      expect(result.instances.map((i) => i.zone)).toEqual([first.zone, first.zone, second.zone]);
      expect(await h.cloud.live()).toHaveLength(3);
    });

    it("starts one set of instances when the same token is used twice", async () => {
      // Prepare
      const same = request({ round: "cycle-7.2" });

      // Act
      const first = await h.provider.launch(same);
      const again = await h.provider.launch(same);

      // Assess
      expect(again.instances.map((i) => i.id).sort()).toEqual(first.instances.map((i) => i.id).sort());
      expect(await h.cloud.live()).toHaveLength(3);
    });

    it("tags every instance at creation with the cluster, the queue and the marker", async () => {
      // Act
      const result = await h.provider.launch(request({ tags: { team: "cfd" } }));

      // Assess
      for (const instance of await h.cloud.live()) {
        expect(instance.tags).toMatchObject({
          [CLUSTER_TAG]: "hpc1",
          [QUEUE_TAG]: "compute",
          [MANAGED_TAG]: "true",
          team: "cfd",
        });
      }
      expect(result.instances.every((i) => i.clusterId === "hpc1" && i.queue === "compute")).toBe(true);
    });

    it("terminates a missing instance as success, and terminating twice is fine", async () => {
      // Prepare
      const { instances } = await h.provider.launch(request({ count: 1 }));
      const id = instances[0]?.id ?? "";

      // Act
      await h.provider.terminate([id, h.missingId]);
      await h.provider.terminate([id]);
      await h.provider.terminate([h.missingId]);

      // Assess
      expect(await h.cloud.live()).toEqual([]);
      const after = await h.provider.describe([id]);
      expect(after.filter((i) => i.state !== "TERMINATED" && i.state !== "TERMINATING")).toEqual([]);
    });

    it("lists only the cluster's live instances", async () => {
      // Prepare
      const mine = await h.provider.launch(request({ clusterId: "hpc1", count: 2 }));
      await h.provider.launch(request({ clusterId: "hpc2", count: 1 }));
      await h.cloud.seed({
        instanceType: h.candidates[0].instanceType,
        zone: h.candidates[0].zone,
        tags: { owner: "someone", "nowscale:queue": "other" },
      });
      const gone = mine.instances[1]?.id ?? "";
      await h.provider.terminate([gone]);

      // Act
      const listed = await h.provider.list("hpc1");

      // Assess
      expect(listed.map((i) => i.id)).toEqual([mine.instances[0]?.id]);
      expect(listed[0]?.clusterId).toBe("hpc1");
      expect(listed[0]?.queue).toBe("compute");
      expect(listed[0]?.instanceType).toBe(h.candidates[0].instanceType);
    });

    it("describes known instances and leaves unknown ids out", async () => {
      // Prepare
      const { instances } = await h.provider.launch(request({ count: 2 }));

      // Act
      const described = await h.provider.describe([...instances.map((i) => i.id), h.missingId]);

      // Assess
      expect(described.map((i) => i.id).sort()).toEqual(instances.map((i) => i.id).sort());
      expect(described.every((i) => i.zone === h.candidates[0].zone)).toBe(true);
      expect(described.every((i) => i.privateIp !== undefined && i.launchedAt !== undefined)).toBe(true);
    });

    it("rejects a request with a name outside the allow-list before any call", async () => {
      // Act
      const attempt = h.provider.launch(request({ queue: "compute; rm -rf /" }));

      // Assess
      await expect(attempt).rejects.toBeInstanceOf(InvalidRequestError);
      expect(h.wireLaunchCalls()).toBe(0);
    });

    it("reports the instance types it can launch with their shapes", async () => {
      // Act
      const catalog = await h.provider.instanceTypes();

      // Assess
      const shape = catalog[h.candidates[0].instanceType];
      expect(shape?.vcpus).toBeGreaterThan(0);
      expect(shape?.memoryMiB).toBeGreaterThan(0);
    });
  });
}
