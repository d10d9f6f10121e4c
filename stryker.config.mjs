// Mutation testing of the scaling core (issue 14): `npm run test:mutation`. Mutates lib/core (not the
// instance-type catalogs, which are data) and runs the core's example unit tests against each mutant
// (vitest.mutation.config.ts says why the property suites are left out), at most two test processes
// (the machine is shared). Not part of test:all. Reports (HTML, JSON) go to reports/mutation/;
// `npm run test:mutation -- --incremental` re-tests only mutants whose code or tests changed.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
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
