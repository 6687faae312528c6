#!/usr/bin/env bash
# npm run bench: sets up, brings the local stack up, and runs every benchmark. Each prints its
# figures and saves them under bench/results/. Benchmarks report; they never fail on a slow run.
source "$(dirname "$0")/setup.sh"
say "starting the local stack (holdback stack up)"
holdback stack up >/dev/null
say "registering schemas"
holdback schemas register >/dev/null
say "codec: decode and encode rates on one core"
npx tsx bench/codec.bench.ts "${CODEC_SECONDS:-5}"
say "repayment: withholding decisions at a sustained input rate, payout to readable deduction"
npx tsx bench/repayment.bench.ts "${REPAYMENT_RATE:-5000}" "${REPAYMENT_SECONDS:-60}"
