#!/usr/bin/env bash
# README command two: sets up everything and runs every test against the real local stack.
#   npm test
# Lint and type checks, unit tests (no services), integration tests (real Kafka, registry,
# ClickHouse, Prometheus, Alertmanager), fault tests (processes and the broker killed and
# restarted; run alone), cluster fault tests (a three-node Kafka beside the stack: brokers killed
# and restarted, changelogs lost and rebuilt, instances soaked and cut off through Toxiproxy),
# secure-stack tests (the stack secured beside it: TLS, SASL, passwords), then the stack's own
# life-cycle checks. A stack that was
# already running is reused and left running; one this script started is stopped at the end.
source "$(dirname "$0")/setup.sh"

ensure_debian docker-compose docker-compose
# libfaketime: the clock-skew test runs a processor 5 hours ahead and behind.
ensure_debian faketime faketime

# Toxiproxy, the fault proxy of the network-partition test (a Go module, built once).
TOXIPROXY="$ROOT/.holdback/cache/go/bin/toxiproxy-server"
if [ ! -x "$TOXIPROXY" ]; then
  command -v go >/dev/null 2>&1 || ensure_debian go golang-go
  say "installing Toxiproxy 2.5.0 (go install github.com/Shopify/toxiproxy/v2/cmd/server, about a minute)"
  GOPATH="$ROOT/.holdback/cache/go" GOBIN="$ROOT/.holdback/cache/go/bin" \
    GOCACHE="$ROOT/.holdback/cache/go/build-cache" GOFLAGS="-modcacherw -buildvcs=false" \
    go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0
  mv "$ROOT/.holdback/cache/go/bin/server" "$TOXIPROXY"
else
  say "Toxiproxy is installed"
fi

# The producer examples in Python, Go and Java (examples/), which an integration test runs:
# a venv, a go build and a mvn package, each rebuilt only when its sources changed.
source "$ROOT/scripts/examples-setup.sh"

# Current ClickHouse engines in process (chDB: 25.8, the compose image's, and 26.9) for the SQL
# checks of the migrations; the local server is 18.16.
source "$ROOT/scripts/chdb-setup.sh"

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

mkdir -p .holdback
rm -f .holdback/jest-main.json .holdback/jest-fault.json .holdback/jest-cluster.json .holdback/jest-secure.json
say "running unit and integration tests (jest)"
set +e
npx jest --ci --selectProjects unit integration --json --outputFile=.holdback/jest-main.json 2>&1
main_rc=$?
say "running fault tests: processes and the broker killed, paused, restarted (jest, in band)"
npx jest --ci --selectProjects fault --runInBand --json --outputFile=.holdback/jest-fault.json 2>&1
fault_rc=$?

say "running cluster fault tests: a three-node Kafka beside the stack (test/cluster/cluster.env): brokers killed and restarted, changelogs lost and rebuilt, three instances soaked"
cluster_rc=0
(
  set -a; . test/cluster/cluster.env; set +a
  HOLDBACK_HOME="$ROOT/$HOLDBACK_HOME"
  # The jars are the same: share the stack's download cache.
  mkdir -p "$HOLDBACK_HOME" && ln -sfn "$ROOT/.holdback/cache" "$HOLDBACK_HOME/cache"
  # A failed start leaves nothing running: what did start is stopped.
  holdback stack up kafka kafka-2 kafka-3 || { holdback stack down kafka; exit 1; }
  npx jest --ci --selectProjects cluster --runInBand --forceExit --json --outputFile="$ROOT/.holdback/jest-cluster.json" 2>&1
  rc=$?
  say "stopping the three-node cluster"
  holdback stack down kafka
  exit $rc
) || cluster_rc=$?

say "running secure-stack tests: the stack secured beside it (test/secure/secure.env): Kafka on SASL_SSL and mTLS, the registry and ClickHouse on HTTPS with passwords"
secure_rc=0
(
  set -a; . test/secure/secure.env; set +a
  HOLDBACK_HOME="$ROOT/$HOLDBACK_HOME"
  mkdir -p "$HOLDBACK_HOME" && ln -sfn "$ROOT/.holdback/cache" "$HOLDBACK_HOME/cache"
  holdback stack up --secure || { holdback stack down; exit 1; }
  # What a client of it sets: addresses, CA, users, and every secret as a *_FILE path.
  set -a; . "$HOLDBACK_HOME/secure/client.env"; set +a
  npx jest --ci --selectProjects secure --runInBand --forceExit --json --outputFile="$ROOT/.holdback/jest-secure.json" 2>&1
  rc=$?
  say "stopping the secured stack"
  holdback stack down
  exit $rc
) || secure_rc=$?
set -e

lifecycle_rc=0
say "stack life cycle: a second 'stack up' changes nothing"
holdback stack up > .holdback/second-up.log 2>&1 || lifecycle_rc=1
cat .holdback/second-up.log
if ! grep -q 'already running' .holdback/second-up.log || grep -q 'started (pid' .holdback/second-up.log; then
  echo "FAIL: a second 'holdback stack up' did not leave the running stack alone" >&2
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

# Each failure again, briefly, then the closing line CI reads: N passed, N failed (the life-cycle
# check counts as one test). A long run's failure otherwise scrolls out of the tail a CI log keeps.
node -e '
  const files = process.argv.slice(1, 5);
  const runs = files.map((f) => { try { return require(f); } catch { return null; } });
  const lifecycleOk = process.argv[5] === "0";
  const plain = (t) => String(t).replace(/\x1b\[[0-9;]*m/g, "");
  const brief = (t) => plain(t).split("\n").filter((l) => l.trim() !== "" && !/node_modules\/|node:internal|<anonymous>/.test(l)).slice(0, 25).map((l) => "    " + l).join("\n");
  let passed = lifecycleOk ? 1 : 0, failed = lifecycleOk ? 0 : 1;
  runs.forEach((r, i) => {
    if (!r) { failed++; console.log(`FAILED: no results in ${files[i]} (that jest run did not finish)`); return; }
    passed += r.numPassedTests;
    failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
    for (const suite of r.testResults) {
      const file = suite.name.replace(process.cwd() + "/", "");
      const failedTests = suite.assertionResults.filter((a) => a.status === "failed");
      for (const a of failedTests) console.log(`FAILED: ${file} > ${a.fullName}\n${brief(a.failureMessages.join("\n"))}`);
      if (failedTests.length === 0 && suite.status === "failed") console.log(`FAILED: ${file}\n${brief(suite.message)}`);
    }
  });
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$ROOT/.holdback/jest-main.json" "$ROOT/.holdback/jest-fault.json" "$ROOT/.holdback/jest-cluster.json" "$ROOT/.holdback/jest-secure.json" "$lifecycle_rc"
[ "$main_rc" = 0 ] && [ "$fault_rc" = 0 ] && [ "$cluster_rc" = 0 ] && [ "$secure_rc" = 0 ] && [ "$lifecycle_rc" = 0 ]
