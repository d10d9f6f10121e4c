import { defineConfig } from "vitest/config";

/**
 * Coverage gate for the pure core and the providers' shared behaviour, measured by their own unit tests
 * (`npm run test:coverage`, part of `npm run test:all`). The thresholds sit at the figures measured when
 * the gate was set (docs/architecture.md): a change that leaves new code there untested fails it.
 */
export default defineConfig({
  test: {
    include: ["test/unit/core/**/*.test.ts", "test/unit/providers/**/*.test.ts"],
    testTimeout: 30_000,
    coverage: {
      provider: "v8",
      include: ["lib/core/**/*.ts", "lib/providers/shared/**/*.ts"],
      exclude: ["lib/core/catalogs/**"],
      reporter: ["text-summary", "text"],
      thresholds: {
        // Measured 2026-11-30 after the session's merges: core 99.5 % lines, 98.9 statements, 97.7
        // functions, 94.3 branches (fast-check draws move branches a little); providers/shared 91.9,
        // 88.2, 92.7, 78.0. The bar sits at those figures: new untested code there fails the gate.
        "lib/core/**/*.ts": { lines: 99.4, statements: 98.8, functions: 97.7, branches: 94 },
        "lib/providers/shared/**/*.ts": { lines: 91.9, statements: 88.2, functions: 92.6, branches: 78 },
      },
    },
  },
});
