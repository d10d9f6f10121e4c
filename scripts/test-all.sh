#!/usr/bin/env bash
# The full test suite: build, lint, typecheck, unit + integration tests, the fault suite, then the
# real-Slurm suite.
# Each vitest run writes a JSON report; the last line is the plain total "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
out=.test-results
rm -rf "$out" && mkdir -p "$out"
status=0

step() { echo; echo "== $*"; }

step "build"
npm run build || status=1
step "lint (biome)"
npx biome check . || status=1
step "typecheck"
npm run typecheck || status=1

step "unit and integration tests"
npx vitest run --reporter=default --reporter=json --outputFile="$out/unit.json" || status=1

step "coverage gate (lib/core, lib/providers/shared)"
# Its tests already ran above: the gate counts as one check of its own in the closing line.
if npx vitest run --config vitest.coverage.config.ts --coverage --reporter=dot; then
  echo '{"numPassedTests":1,"numFailedTests":0}' > "$out/coverage-gate.json"
else
  echo '{"numPassedTests":0,"numFailedTests":1}' > "$out/coverage-gate.json"
  status=1
fi

step "fault suite (the five promises under injected faults)"
# The figures reporter goes last: the run ends with one line per promise.
npx vitest run --config vitest.faults.config.ts --reporter=default --reporter=json \
  --outputFile="$out/faults.json" --reporter=./test/faults/reporter.ts || status=1

if [ -f vitest.slurm.config.ts ]; then
  step "real-Slurm suite"
  npx vitest run --config vitest.slurm.config.ts --reporter=default --reporter=json --outputFile="$out/slurm.json" || status=1
fi

echo
node scripts/summarize-tests.mjs "$out"/*.json || status=1
exit "$status"
