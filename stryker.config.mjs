// Mutation testing of the scaling core (issue 14): `npm run test:mutation`. Mutates lib/core (not the
// instance-type catalogs, which are data) and runs only the core's unit tests (vitest.core.config.ts),
// at most two test processes (the machine is shared). Kept out of the CI run
// (test:all): it takes longer than the CI budget. The HTML and JSON reports go to reports/mutation/.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.core.config.ts" },
  mutate: ["lib/core/**/*.ts", "!lib/core/catalogs/**"],
  coverageAnalysis: "perTest",
  concurrency: 2,
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
  thresholds: { high: 85, low: 75, break: null },
};
