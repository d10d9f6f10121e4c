import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalControlPlane } from "../../../lib/local/control-plane.js";
import { startScalerLoop } from "../../../lib/local/scaler-loop.js";
import { sleep } from "../../../lib/providers/local/netns.js";
import { controlBed } from "../../support/control-bed.js";
import { startDynalite, type TestDynamo } from "../../support/dynalite.js";

/**
 * The local mode's scaler loop with wakes, on the real store (dynalite), a fake agent and cloud, and real
 * timers: a wake runs the woken cluster's cycle at once, and woken cycles never push the scheduled ticks
 * back (the schedule is the safety net of every cluster and of the reconciler).
 */

let db: TestDynamo;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db.close();
});

describe("the local scaler loop", () => {
  it("THEN a wake runs the cluster's cycle at once and the scheduled ticks keep their times", async () => {
    // Prepare: a RUNNING cluster; every cycle reads the agent's report once, so reports time the cycles
    const bed = await controlBed(db, "loop-1");
    const started = Date.now();
    const reports: number[] = [];
    const report = bed.agent.report.bind(bed.agent);
    bed.agent.report = async () => {
      reports.push(Date.now() - started);
      return report();
    };
    const cp = {
      store: bed.store,
      agent: bed.agent,
      cloud: bed.provider,
      // The cluster's cloud and agent, as the local control plane gives them per cluster.
      runtime: async () => ({ provider: bed.provider, agent: bed.agent }),
      metrics: bed.metrics,
      userData: () => undefined,
    } as unknown as LocalControlPlane;
    const lines: string[] = [];
    const loop = startScalerLoop(cp, 3000, (line) => lines.push(line));

    // Act: wakes at 0.5 s and 4 s (more than the debounce apart), then let the schedule run to 7 s
    let verdicts: unknown[] = [];
    try {
      await sleep(500);
      const first = await loop.wake({ clusterId: "loop-1" });
      const unknown = await loop.wake({ clusterId: "loop-none" });
      await sleep(4000 - (Date.now() - started));
      const second = await loop.wake({ clusterId: "loop-1" });
      verdicts = [first, unknown, second];
      await sleep(7000 - (Date.now() - started));
    } finally {
      await loop.stop();
    }

    // Assess: cycles at the wakes, and scheduled ones near 3 s and 6 s (the interval runs from the end of
    // the scheduled tick), not 3 s after each wake (3.5 s and 7 s)
    expect(verdicts).toEqual([
      { honoured: true, clusterId: "loop-1" },
      { honoured: false, reason: "unknown-cluster", clusterId: "loop-none" },
      { honoured: true, clusterId: "loop-1" },
    ]);
    const near = (t: number, within: number) => reports.some((r) => r >= t && r <= t + within);
    expect(near(500, 600), JSON.stringify(reports)).toBe(true);
    expect(near(4000, 600), JSON.stringify(reports)).toBe(true);
    expect(near(2950, 500), JSON.stringify(reports)).toBe(true);
    expect(near(5950, 800), JSON.stringify(reports)).toBe(true);
    expect(lines.filter((l) => l.startsWith("wake loop-1"))).toHaveLength(2);
  }, 30_000);
});
