// Adds up vitest JSON reports and prints the plain closing line CI reads: "N passed, N failed".
// A report that is missing or unreadable counts as one failure, so a crashed run never looks green.
import { readFileSync } from "node:fs";

let passed = 0;
let failed = 0;
const files = process.argv.slice(2).filter((f) => !f.includes("*"));
if (files.length === 0) failed++;
for (const file of files) {
  try {
    const report = JSON.parse(readFileSync(file, "utf8"));
    passed += report.numPassedTests ?? 0;
    failed += (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
    if (report.success === false && (report.numFailedTests ?? 0) === 0) failed++;
    if ((report.numPendingTests ?? 0) + (report.numTodoTests ?? 0) > 0) {
      console.error(`${file}: ${report.numPendingTests} skipped test(s)`);
    }
  } catch (error) {
    console.error(`cannot read test report ${file}: ${error.message}`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
