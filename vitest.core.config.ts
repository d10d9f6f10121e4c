import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The property tests (fast-check) take seconds per run where the example tests take milliseconds. A
 * mutation run (stryker.config.mjs) runs the covering tests of each mutant and stops at the first
 * failure, so running the example tests first finds most kills without waiting for the properties.
 */
class ExamplesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const slow = (f: TestSpecification) => /properties\.test\.ts$/.test(f.moduleId);
    return [...sorted.filter((f) => !slow(f)), ...sorted.filter(slow)];
  }
}

// The core's unit tests alone: what the mutation run measures lib/core against.
export default defineConfig({
  test: {
    include: ["test/unit/core/**/*.test.ts"],
    testTimeout: 30_000,
    sequence: { sequencer: ExamplesFirst },
  },
});
