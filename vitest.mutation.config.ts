import { defineConfig } from "vitest/config";

/**
 * What a mutation run (stryker.config.mjs) tests lib/core against: the core's unit tests without the
 * fast-check property suites. Those draw new random inputs on every run, so a mutant's fate could change
 * from one run to the next, and they cost seconds per mutant where the example tests cost milliseconds
 * (with them a run takes hours on two shared cores). The score measured without them is a lower bound of
 * the score with them. `npx vitest run test/unit/core` runs them all.
 */
export default defineConfig({
  test: {
    include: ["test/unit/core/**/*.test.ts"],
    exclude: ["test/unit/core/**/*properties.test.ts"],
    testTimeout: 30_000,
  },
});
