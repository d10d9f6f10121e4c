import { mkdirSync, writeFileSync } from "node:fs";
import type { Reporter, TestModule } from "vitest/node";
import type { PromiseFigures } from "../support/faults/observers.js";
import { UNTRACKED_LIMIT_S } from "../support/faults/observers.js";

/** Every scenario's figures, for CI artefacts and the fixers' before/after notes. */
const FIGURES_FILE = ".test-results/faults/figures.json";

/**
 * Closes `npm run test:faults` with the five promises aggregated over every scenario, one line each:
 *   untracked max 240 s (limit 300)
 *   double launches 0
 *   busy terminated 0
 *   stranded clusters 0
 *   hostile inputs refused 100%
 * Each scenario attaches its figures to its test (`task.meta.faultFigures`, test/faults/promises.ts);
 * they are also written to .test-results/faults/figures.json (a subfolder: scripts/summarize-tests.mjs
 * reads every .test-results/*.json as a vitest report). Listed last among the reporters, it prints last.
 */
export default class FaultFiguresReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const all: PromiseFigures[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const figures = test.meta().faultFigures;
        if (figures !== undefined) all.push(figures);
      }
    }
    all.sort((a, b) => (a.scenario < b.scenario ? -1 : 1));
    const untracked = Math.max(0, ...all.map((f) => f.untrackedMaxS));
    const doubles = all.reduce((s, f) => s + f.doubleLaunches, 0);
    const busy = all.reduce((s, f) => s + f.busyTerminated, 0);
    const stranded = all.reduce((s, f) => s + f.strandedClusters, 0);
    const sent = all.reduce((s, f) => s + f.hostileSent, 0);
    const refused = all.reduce((s, f) => s + f.hostileRefused, 0);
    const percent = sent === 0 ? 0 : Math.floor((refused / sent) * 1000) / 10;
    mkdirSync(".test-results/faults", { recursive: true });
    writeFileSync(FIGURES_FILE, `${JSON.stringify({ scenarios: all }, null, 2)}\n`);
    const lines = [
      "",
      `fault suite: ${all.length} scenario(s) measured (per scenario: ${FIGURES_FILE})`,
      ...all
        .filter(
          (f) =>
            f.untrackedMaxS > UNTRACKED_LIMIT_S ||
            f.doubleLaunches + f.busyTerminated + f.strandedClusters > 0 ||
            f.hostileRefused < f.hostileSent,
        )
        .map(
          (f) =>
            `  broken in "${f.scenario}": untracked ${f.untrackedMaxS} s, double launches ${f.doubleLaunches}, busy terminated ${f.busyTerminated}, stranded ${f.strandedClusters}, hostile refused ${f.hostileRefused}/${f.hostileSent}`,
        ),
      `untracked max ${untracked} s (limit ${UNTRACKED_LIMIT_S})`,
      `double launches ${doubles}`,
      `busy terminated ${busy}`,
      `stranded clusters ${stranded}`,
      `hostile inputs refused ${percent}%`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
}
