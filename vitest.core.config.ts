import { defineConfig } from "vitest/config";

// The core's unit tests alone: what the mutation run (stryker.config.mjs) measures lib/core against.
export default defineConfig({
  test: {
    include: ["test/unit/core/**/*.test.ts"],
    testTimeout: 30_000,
  },
});
