import { plan } from "../lib/core/index.js";
import { type BenchModule, type BenchRow, heapUsedMiB, timeMedian } from "./harness.js";
import { benchConfig, benchState } from "./plan-workload.js";

const NOW = Date.parse("2026-01-01T02:00:00Z");

/** Plan latency and memory for 1k, 10k and 100k pending jobs over 50 queues of 20 entries each. */
const bench: BenchModule = {
  title: "plan: pending jobs over 50 queues × 20 entries (target: 100k in < 250 ms)",
  async run() {
    const rows: BenchRow[] = [];
    for (const policy of ["thpc", "packed"] as const) {
      const config = benchConfig(policy);
      for (const pending of [1_000, 10_000, 100_000]) {
        const state = benchState(pending);
        const ms = await timeMedian(() => plan(config, state, NOW), pending >= 100_000 ? 5 : 9, 2);
        const before = heapUsedMiB();
        const decision = plan(config, state, NOW);
        const heapMiB = heapUsedMiB() - before;
        const launched = decision.launches.reduce((n, l) => n + l.count, 0);
        rows.push({
          name: `plan ${pending / 1000}k pending jobs (${policy})`,
          ms,
          heapMiB,
          extra: {
            launched,
            skipped: decision.skipped.length,
            "KiB/job": ((heapMiB * 1024) / pending).toFixed(2),
          },
          ...(pending === 100_000 ? { targetMs: 250 } : {}),
        });
      }
    }
    return rows;
  },
};
export default bench;
