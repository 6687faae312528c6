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
say "repayment: memory per remembered payout and per merchant, a 1M-payout backlog's drain rate, before and after issue 13"
npx tsx --expose-gc bench/repayment-memory.bench.ts
say "eligibility: state memory per merchant at one million merchants, process() rate"
npx tsx --expose-gc bench/eligibility-memory.bench.ts
say "restore: one million merchants' state from the changelog, each transport, beside Kafka's ConsumerPerformance"
npx tsx bench/restore.bench.ts "${RESTORE_MERCHANTS:-1000000}"
say "failover: kill -9 of one of two instances sharing one million merchants' state, with and without standby replicas"
npx tsx bench/failover.bench.ts "${FAILOVER_MERCHANTS:-1000000}"
say "ClickHouse sink: sustained rows/s from Kafka"
npx tsx bench/clickhouse-sink.bench.ts
say "the whole pipeline: simulated traffic through repayment, eligibility and the sink, with Kafka's perf tools as the ceiling"
npx tsx bench/pipeline.bench.ts "${PIPELINE_SECONDS:-60}" "${PIPELINE_RATE:-100000}"
say "repayment alone against a Kafka Streams peer of the same rules (bench/peer), on a 1M-payout backlog, beside ConsumerPerformance"
ensure_debian mvn maven
say "building the peer (mvn package: Kafka Streams 4.4 from Maven Central, about a minute the first time)"
mvn -q -f bench/peer/pom.xml package -DskipTests
npx tsx bench/peer.bench.ts "${PEER_MERCHANTS:-20000}" "${PEER_PAYOUTS:-1000000}" "${PEER_TRANSPORTS:-kafkajs,rdkafka}"
