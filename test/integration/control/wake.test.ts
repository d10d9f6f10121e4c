import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScaleCycle } from "../../../lib/control/scale-cycle.js";
import { acceptWake, WakeWatch, wakeLeaseKey } from "../../../lib/control/wake.js";
import type { StateStore } from "../../../lib/ports/state-store.js";
import { WAKE_MIN_INTERVAL_MS } from "../../../lib/ports/wake.js";
import { type ControlBed, controlBed, T0 } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * The scaler's side of a wake on the real store (dynalite): a wake is a hint, debounced by a lease, and a
 * cycle waiting between its polls polls at once when one is honoured. What a wake causes is one ordinary
 * poll, which reads the queue from the agent: a forged wake launches nothing the queue does not call for.
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

const WINDOW = { windowMs: 50_000, pollMs: 15_000 };

/** Runs `act` once, the first time the bed's clock sleeps past `at` ms after T0. */
function at(bed: ControlBed, atMs: number, act: () => Promise<void>): void {
  const sleep = bed.clock.sleep.bind(bed.clock);
  let done = false;
  bed.clock.sleep = async (ms: number) => {
    await sleep(ms);
    if (!done && bed.clock.now() >= T0 + atMs) {
      done = true;
      await act();
    }
  };
}

/** The clock time (ms after T0) of each launch call the provider got. */
function launchTimes(bed: ControlBed): number[] {
  const times: number[] = [];
  const launch = bed.provider.launch.bind(bed.provider);
  bed.provider.launch = async (request) => {
    times.push(bed.clock.now() - T0);
    return launch(request);
  };
  return times;
}

describe("acceptWake", () => {
  it("THEN a wake naming no valid cluster, an unknown one or one not RUNNING is dropped and writes nothing", async () => {
    // Prepare
    const bed = await controlBed(db, "wk-1");
    const sleeping = await controlBed(db, "wk-sleeping");
    await sleeping.store.updateCluster("wk-sleeping", sleeping.cluster.version, {
      status: "SLEEPING",
      now: T0,
    });
    const store = bed.store;

    // Act
    const verdicts = [
      await acceptWake(store, bed.clock, { clusterId: "$(reboot)" }, "w-1"),
      await acceptWake(store, bed.clock, { clusterId: { $ne: 1 } }, "w-2"),
      await acceptWake(store, bed.clock, ["wk-1"], "w-3"),
      await acceptWake(store, bed.clock, JSON.parse('{"__proto__": {"clusterId": "wk-1"}}'), "w-4"),
      await acceptWake(store, bed.clock, { clusterId: "constructor" }, "w-5"),
      await acceptWake(sleeping.store, sleeping.clock, { clusterId: "wk-sleeping" }, "w-6"),
    ];

    // Assess
    expect(verdicts.map((v) => (v.honoured ? "honoured" : v.reason))).toEqual([
      "bad-cluster-id",
      "bad-cluster-id",
      "bad-cluster-id",
      "bad-cluster-id",
      "unknown-cluster",
      "not-running",
    ]);
    for (const id of ["constructor", "wk-sleeping", "wk-1"])
      expect(await store.readLease(wakeLeaseKey(id)), id).toBeUndefined();
  });

  it("THEN at most one wake per interval is honoured, also when fifty arrive at once", async () => {
    // Prepare
    const bed = await controlBed(db, "wk-2");
    const wake = (owner: string) => acceptWake(bed.store, bed.clock, { clusterId: "wk-2" }, owner);

    // Act
    const flood = await Promise.all(Array.from({ length: 50 }, (_, i) => wake(`flood-${i}`)));
    bed.clock.advance(WAKE_MIN_INTERVAL_MS - 1);
    const early = await wake("early");
    bed.clock.advance(1);
    const later = await wake("later");

    // Assess
    expect(flood.filter((v) => v.honoured)).toHaveLength(1);
    expect(flood.filter((v) => !v.honoured && v.reason === "debounced")).toHaveLength(49);
    expect(early).toMatchObject({ honoured: false, reason: "debounced" });
    expect(later).toMatchObject({ honoured: true, clusterId: "wk-2" });
    expect((await bed.store.readLease(wakeLeaseKey("wk-2")))?.fence).toBe(2);
  });
});

describe("a cycle waiting between polls", () => {
  it("THEN it polls within a second of an honoured wake, not at its next scheduled poll, and launches for the new job", async () => {
    // Prepare: job 1 pending at the start; job 2 submitted and woken for at 3.5 s
    const bed = await controlBed(db, "wk-3");
    bed.agent.addPending("compute", "1", { nodes: 1, cpus: 4 });
    const launches = launchTimes(bed);
    at(bed, 3500, async () => {
      bed.agent.addPending("compute", "2", { nodes: 1, cpus: 4 });
      await acceptWake(bed.store, bed.clock, { clusterId: "wk-3" }, "wake-1");
    });
    const watch = await WakeWatch.start(bed.store, bed.clock, "wk-3");

    // Act
    const summary = await runScaleCycle(
      "wk-3",
      { ...bed.deps("inv-1"), betweenPolls: watch.betweenPolls },
      WINDOW,
    );

    // Assess
    expect(launches).toEqual([0, 4000]);
    expect(summary.launchedNodes).toBe(2);
  });

  it("THEN without a wake it polls on schedule only (the control: the same job waits for the next poll)", async () => {
    // Prepare
    const bed = await controlBed(db, "wk-4");
    bed.agent.addPending("compute", "1", { nodes: 1, cpus: 4 });
    const launches = launchTimes(bed);
    at(bed, 3500, async () => bed.agent.addPending("compute", "2", { nodes: 1, cpus: 4 }));
    const watch = await WakeWatch.start(bed.store, bed.clock, "wk-4");

    // Act
    await runScaleCycle("wk-4", { ...bed.deps("inv-1"), betweenPolls: watch.betweenPolls }, WINDOW);

    // Assess
    expect(launches).toEqual([0, 15_000]);
  });

  it("THEN a forged wake costs one poll and launches nothing the queue does not call for", async () => {
    // Prepare: one job, launched at the first poll; then a wake with nothing new, and a debounced one
    const bed = await controlBed(db, "wk-5");
    bed.agent.addPending("compute", "1", { nodes: 2, cpus: 4 });
    const launches = launchTimes(bed);
    at(bed, 2000, async () => {
      await acceptWake(bed.store, bed.clock, { clusterId: "wk-5" }, "forged-1");
      await acceptWake(bed.store, bed.clock, { clusterId: "wk-5" }, "forged-2");
    });
    const watch = await WakeWatch.start(bed.store, bed.clock, "wk-5");

    // Act
    const woken = await runScaleCycle(
      "wk-5",
      { ...bed.deps("inv-1"), betweenPolls: watch.betweenPolls },
      WINDOW,
    );

    // Assess: polls at 0, 2 (the wake), 17, 32, 47 s: one more than the schedule's four; still one launch
    expect(woken.polls).toBe(5);
    expect(launches).toEqual([0]);
    expect(bed.provider.fakeCloud.live()).toHaveLength(2);
  });

  it("THEN a store that cannot be read leaves the wait as it was: the poll comes on schedule", async () => {
    // Prepare
    const bed = await controlBed(db, "wk-6");
    const failing = new Proxy(bed.store, {
      get(target, prop, receiver) {
        if (prop === "readLease") return async () => Promise.reject(new Error("throttled"));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as StateStore;
    const watch = await WakeWatch.start(failing, bed.clock, "wk-6");
    await acceptWake(bed.store, bed.clock, { clusterId: "wk-6" }, "w-1");
    const from = bed.clock.now();

    // Act
    const result = await watch.wait(15_000);

    // Assess
    expect(result).toBe("elapsed");
    expect(bed.clock.now() - from).toBe(15_000);
  });
});
