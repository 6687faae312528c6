#!/usr/bin/env bash
# README command two: sets up everything and runs every test against the real local stack.
#   npm test
# Lint and type checks, unit tests (no services), integration tests (real Kafka, registry,
# ClickHouse, Prometheus, Alertmanager), then the stack's own life-cycle checks. A stack that was
# already running is reused and left running; one this script started is stopped at the end.
source "$(dirname "$0")/setup.sh"

ensure_debian docker-compose docker-compose

say "lint and type checks"
npx eslint . --max-warnings=0
npx prettier --check . --log-level=warn
npx tsc -p tsconfig.json --noEmit

started_stack=0
if ! holdback stack status >/dev/null 2>&1; then
  started_stack=1
  say "starting the local stack (holdback stack up)"
  t0=$(date +%s)
  holdback stack up
  say "stack up took $(( $(date +%s) - t0 ))s"
else
  say "the local stack is already running; reusing it"
fi

results=.holdback/jest-results.json
mkdir -p .holdback
say "running jest (unit and integration)"
set +e
npx jest --ci --json --outputFile="$results" --testLocationInResults=false 2>&1
jest_rc=$?
set -e

lifecycle_rc=0
say "stack life cycle: a second 'stack up' changes nothing"
if ! holdback stack up | tee .holdback/second-up.log | grep -q 'already running'; then lifecycle_rc=1; fi
if grep -q 'started (pid' .holdback/second-up.log; then
  echo "FAIL: a second 'holdback stack up' restarted a component" >&2
  lifecycle_rc=1
fi
if [ "$started_stack" = 1 ]; then
  say "stopping the stack this run started; no process may remain"
  holdback stack down
  if pgrep -af "$ROOT/.holdback/run" >/dev/null; then
    echo "FAIL: processes left behind after 'holdback stack down':" >&2
    pgrep -af "$ROOT/.holdback/run" >&2
    lifecycle_rc=1
  fi
fi

# The closing line CI reads: N passed, N failed.
node -e '
  const r = require(process.argv[1]);
  const extra = Number(process.argv[2]);
  console.log(`tests: ${r.numPassedTests + (extra ? 0 : 1)} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites + extra} failed`);
' "$ROOT/$results" "$lifecycle_rc"
[ "$jest_rc" = 0 ] && [ "$lifecycle_rc" = 0 ]
