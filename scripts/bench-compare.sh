#!/usr/bin/env bash
# Runs benchmarks on a base commit and on the work tree, one after the other in one run on the
# same stack, and prints their figures side by side (issue 12: "before and after in one run").
#   bash scripts/bench-compare.sh [base-ref=HEAD~1]
# The base is checked out as a git worktree under .holdback/bench-base (sharing node_modules),
# built, and benchmarked first. Figures are saved in each tree's bench/results/ and the table in
# bench/results/compare.json. Sizes: REPAYMENT_RATE (5000), REPAYMENT_SECONDS (30),
# BACKLOG_SECONDS (20), COMPARE_TRANSPORTS ("kafkajs rdkafka").
source "$(dirname "$0")/setup.sh"
base_ref=${1:-HEAD~1}
base_dir="$ROOT/.holdback/bench-base"
say "base: $(git rev-parse --short "$base_ref") ($base_ref) in $base_dir"
if [ -d "$base_dir" ]; then git worktree remove --force "$base_dir"; fi
git worktree add --detach "$base_dir" "$base_ref" >/dev/null
ln -s "$ROOT/node_modules" "$base_dir/node_modules"
mkdir -p "$base_dir/.holdback" && ln -s "$ROOT/.holdback/cache" "$base_dir/.holdback/cache"
(cd "$base_dir" && npx tsc -p tsconfig.build.json)
holdback stack up >/dev/null
holdback schemas register >/dev/null
rate=${REPAYMENT_RATE:-5000}; seconds=${REPAYMENT_SECONDS:-30}; backlog=${BACKLOG_SECONDS:-20}
for tree in "$base_dir" "$ROOT"; do
  for transport in ${COMPARE_TRANSPORTS:-kafkajs rdkafka}; do
    say "$(basename "$tree"): repayment at ${rate}/s for ${seconds}s on $transport"
    (cd "$tree" && npx tsx bench/repayment.bench.ts "$rate" "$seconds" 20000 "$transport")
    say "$(basename "$tree"): pipeline backlog of ${backlog}s on $transport"
    (cd "$tree" && npx tsx bench/pipeline.bench.ts "$backlog" 100000 2000 "$transport" backlog)
  done
done
node - "$base_dir" "$ROOT" ${COMPARE_TRANSPORTS:-kafkajs rdkafka} <<'JS'
const [base, head, ...transports] = process.argv.slice(2);
const read = (tree, f) => { try { return require(`${tree}/bench/results/${f}`); } catch { return null; } };
const rows = [];
for (const t of transports) {
  for (const [tree, name] of [[base, 'before'], [head, 'after']]) {
    const r = read(tree, `repayment-${t}.json`);
    const b = read(tree, `pipeline-backlog${t === 'kafkajs' ? '' : `-${t}`}.json`);
    rows.push({
      transport: t,
      tree: name,
      repaymentDecisionsPerSecond: r?.decisionsPerSecond,
      repaymentP50Ms: r?.latencyMs?.p50,
      repaymentP99Ms: r?.latencyMs?.p99,
      repaymentComplete: r?.complete,
      backlogRecords: b?.producedRecords,
      backlogDrainPerSecond: b?.endToEndPerSecond,
      consumerPerfCeilingPerSecond: b?.ceiling?.kafkaConsumerPerfPerSecond,
    });
  }
}
console.table(rows);
require('node:fs').writeFileSync(`${head}/bench/results/compare.json`, JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + '\n');
JS
git worktree remove --force "$base_dir"
