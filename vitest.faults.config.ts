import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: the fault suite (test/faults, docs in test/faults/README.md). Each scenario runs
 * the real control plane on dynalite against a simulated cloud and Slurm with faults injected, and checks
 * the five promises of issue 10; the reporter closes the run with one line per promise.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/faults/reporter.ts"],
  },
});
