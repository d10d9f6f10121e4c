import { plan } from "../lib/core/index.js";
import { gc } from "./harness.js";
import { benchConfig, benchState } from "./plan-workload.js";

/**
 * Run as a child process by plan.bench.ts: prints the peak RSS growth (MiB) that one plan() call
 * causes over a process that already holds the config and state. maxRSS is a high-water mark, so a
 * fresh process per size is the honest way to see the peak, garbage included.
 */
const [policy, size] = process.argv.slice(2);
const config = benchConfig(policy === "packed" ? "packed" : "thpc");
const state = benchState(Number(size));
gc();
const before = process.resourceUsage().maxRSS;
const decision = plan(config, state, Date.parse("2026-01-01T02:00:00Z"));
const after = process.resourceUsage().maxRSS;
process.stdout.write(
  `${JSON.stringify({ peakMiB: (after - before) / 1024, launches: decision.launches.length })}\n`,
);
