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
say "repayment live: payouts at a sustained rate, payout to readable deduction, exactly-once then at-least-once (rdkafka)"
npx tsx bench/repayment.bench.ts "${REPAYMENT_RATE:-10000}" "${REPAYMENT_SECONDS:-300}" 20000 rdkafka exactly_once
npx tsx bench/repayment.bench.ts "${REPAYMENT_RATE:-10000}" "${REPAYMENT_SECONDS:-300}" 20000 rdkafka at_least_once
say "repayment live on the kafkajs transport, exactly-once"
npx tsx bench/repayment.bench.ts "${REPAYMENT_RATE:-10000}" "${REPAYMENT_SECONDS:-300}" 20000 kafkajs exactly_once
say "eligibility live: sales and orders at 5,000/s on the wall clock, triggering event to readable decision (goal p99 <= 1 s)"
npx tsx bench/eligibility.bench.ts "${ELIGIBILITY_RATE:-5000}" "${ELIGIBILITY_SECONDS:-60}" rdkafka
say "repayment: memory per remembered payout and per merchant, a 1M-payout backlog's drain rate, before and after issue 13"
npx tsx --expose-gc bench/repayment-memory.bench.ts
say "repayment memory at 20,000 and at 1,000,000 merchants (issue 16's two sizes), 1M payouts each"
npx tsx --expose-gc bench/repayment-memory.bench.ts 20000 1000000
npx tsx --expose-gc bench/repayment-memory.bench.ts 1000000 1000000
say "eligibility: state memory per merchant at one million merchants, process() rate"
npx tsx --expose-gc bench/eligibility-memory.bench.ts
say "restore: one million merchants' state from the changelog, each transport, beside Kafka's ConsumerPerformance"
npx tsx bench/restore.bench.ts "${RESTORE_MERCHANTS:-1000000}"
say "failover: kill -9 of one of two instances sharing one million merchants' state, with and without standby replicas"
npx tsx bench/failover.bench.ts "${FAILOVER_MERCHANTS:-1000000}"
say "ClickHouse sink: sustained rows/s from Kafka"
npx tsx bench/clickhouse-sink.bench.ts
say "ClickHouse sink: a 2M-record backlog drained, beside ClickHouse inserting the same rows itself (goal: >= 100k rows/s)"
npx tsx bench/clickhouse-sink.bench.ts 200000 10 backlog
say "the whole pipeline: simulated traffic through repayment, eligibility and the sink, with Kafka's perf tools as the ceiling"
npx tsx bench/pipeline.bench.ts "${PIPELINE_SECONDS:-60}" "${PIPELINE_RATE:-100000}"
say "the whole pipeline draining a backlog (60 s of simulated traffic produced first), each transport"
npx tsx bench/pipeline.bench.ts "${PIPELINE_SECONDS:-60}" "${PIPELINE_RATE:-100000}" 2000 kafkajs backlog
npx tsx bench/pipeline.bench.ts "${PIPELINE_SECONDS:-60}" "${PIPELINE_RATE:-100000}" 2000 rdkafka backlog
say "the whole pipeline live under a load generator that is not the bottleneck: staged records replayed at 50k/s for 5 minutes (staging them takes about 11 minutes)"
npx tsx bench/pipeline.bench.ts "${REPLAY_SECONDS:-300}" "${REPLAY_RATE:-50000}" 2000 rdkafka replay
say "repayment alone against a Kafka Streams peer of the same rules (bench/peer), on a 1M-payout backlog, beside ConsumerPerformance"
ensure_debian mvn maven
say "building the peer (mvn package: Kafka Streams 4.4 from Maven Central, about a minute the first time)"
mvn -q -f bench/peer/pom.xml package -DskipTests
npx tsx bench/peer.bench.ts "${PEER_MERCHANTS:-20000}" "${PEER_PAYOUTS:-1000000}" "${PEER_TRANSPORTS:-kafkajs,rdkafka,rdkafka*2}"
say "the peer live: the same load and reader as 'repayment live', with Kafka Streams in Holdback's place"
npx tsx bench/repayment.bench.ts "${REPAYMENT_RATE:-10000}" "${REPAYMENT_SECONDS:-300}" 20000 peer exactly_once
say "compression of outputs and changelogs (rdkafka): the peer benchmark's Holdback run without and with gzip"
for codec in none gzip; do
  PEER_THREADS= BENCH_RUN_ARGS="--compression=$codec" npx tsx bench/peer.bench.ts "${PEER_MERCHANTS:-20000}" "${PEER_PAYOUTS:-1000000}" rdkafka
done
say "scaling: repayment backlog throughput and memory at 10k, 100k and 1M merchants, and on 1, 2 and 4 instances"
npx tsx bench/scaling.bench.ts "${SCALING_MERCHANTS:-10000,100000,1000000}" "${SCALING_INSTANCES:-1,2,4}" "${SCALING_PAYOUTS:-500000}" rdkafka
