#!/usr/bin/env bash
# The long run of the seeded differential test (test/unit/repayment/differential.test.ts):
#   bash scripts/differential.sh [SEEDS] [FIRST_SEED]      (default: 20000 seeds from 1)
# Splits the seeds over the machine's cores (DIFF_SHARDS to choose), one jest process per shard,
# each with DIFF_STATS=1 (how often each rule came into play). Logs go to .holdback/differential/;
# a failing shard's log lists each kind of disagreement with its seeds and a shrunk reproduction.
# `npm test` runs the same file with its default, bounded seed count.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${1:-20000}
first=${2:-1}
shards=${DIFF_SHARDS:-$(nproc 2>/dev/null || echo 2)}
(( shards > seeds )) && shards=$seeds
per=$(( (seeds + shards - 1) / shards ))
logs=.holdback/differential
mkdir -p "$logs"

echo "differential: $seeds seeds from $first in $shards shard(s); logs in $logs/"
t0=$(date +%s)
pids=()
for (( i = 0; i < shards; i++ )); do
  from=$(( first + i * per ))
  n=$(( first + seeds - from ))
  (( n > per )) && n=$per
  (( n <= 0 )) && break
  DIFF_SEEDS=$n DIFF_FIRST_SEED=$from DIFF_STATS=1 \
    npx jest --ci --selectProjects unit -- test/unit/repayment/differential.test.ts \
    > "$logs/shard-$i.log" 2>&1 &
  pids+=($!)
done

rc=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    echo "shard $i: passed ($(grep -m1 -o '[0-9]* seeds, [0-9]* steps, [0-9]* ms' "$logs/shard-$i.log" || true))"
  else
    rc=1
    echo "shard $i: FAILED: $(grep -m1 -E '[0-9]+ of [0-9]+ seeds' "$logs/shard-$i.log" | sed 's/^ *//' || true)"
    grep -E '^    == ' "$logs/shard-$i.log" | sed 's/^ */    /' || true
  fi
done
echo "differential: $(( $(date +%s) - t0 ))s"
exit $rc
