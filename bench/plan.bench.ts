import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { plan } from "../lib/core/index.js";
import { type BenchModule, type BenchRow, heapUsedMiB, timeRuns } from "./harness.js";
import { benchConfig, benchState } from "./plan-workload.js";

const NOW = Date.parse("2026-01-01T02:00:00Z");
const SIZES = [1_000, 10_000, 100_000];

/** Heap the decision for `pending` jobs keeps (input excluded), measured after forced GCs. */
function decisionHeapMiB(policy: "thpc" | "packed", pending: number): number {
  const config = benchConfig(policy);
  const state = benchState(pending);
  const before = heapUsedMiB();
  const decision = plan(config, state, NOW);
  const after = heapUsedMiB();
  // Used after the second measurement so the decision is still reachable when it is taken.
  void decision.launches;
  return after - before;
}

/** Peak RSS growth of one plan() call, in a fresh process (see plan-peak-memory.ts). */
function peakMiB(policy: "thpc" | "packed", pending: number): number {
  const script = fileURLToPath(new URL("./plan-peak-memory.js", import.meta.url));
  const out = execFileSync(process.execPath, ["--expose-gc", script, policy, String(pending)], {
    encoding: "utf8",
  });
  return (JSON.parse(out) as { peakMiB: number }).peakMiB;
}

/** Plan latency and memory for 1k, 10k and 100k pending jobs over 50 queues of 20 entries each. */
const bench: BenchModule = {
  title:
    "plan: pending jobs over 50 queues × 20 entries (targets: 100k in < 100 ms for thpc, < 250 ms for packed)",
  async run() {
    const rows: BenchRow[] = [];
    for (const policy of ["thpc", "packed"] as const) {
      const config = benchConfig(policy);
      for (const pending of SIZES) {
        const state = benchState(pending);
        const { median: ms, min } = await timeRuns(
          () => plan(config, state, NOW),
          pending >= 100_000 ? 7 : 11,
          2,
        );
        const decision = plan(config, state, NOW);
        const launched = decision.launches.reduce((n, l) => n + l.count, 0);
        const heapMiB = decisionHeapMiB(policy, pending);
        const peak = peakMiB(policy, pending);
        rows.push({
          name: `plan ${pending / 1000}k pending jobs (${policy})`,
          ms,
          minMs: min,
          heapMiB,
          extra: {
            launched,
            "peak RSS +MiB": peak.toFixed(1),
            "peak KiB/job": ((peak * 1024) / pending).toFixed(2),
            "decision KiB/job": ((heapMiB * 1024) / pending).toFixed(2),
          },
          ...(pending === 100_000 ? { targetMs: policy === "thpc" ? 100 : 250 } : {}),
          ...(pending === 100_000 && policy === "thpc" ? { headline: true } : {}),
        });
      }
    }
    return rows;
  },
};
export default bench;
