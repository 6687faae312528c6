#!/usr/bin/env python3
"""Holdback producer example in Python (confluent-kafka, the platform's own client).

Produces one FUNDED loan and three SCHEDULED payouts for one merchant, in the contract's wire
format (docs/contract.md), then reads the deductions `holdback run repayment` wrote for them and
checks each amount and balance. Exits 0 when every deduction is as the contract says, 1 otherwise
(with the reason), 2 on bad arguments.

    python produce_and_read.py --run-id demo1
    python produce_and_read.py --bootstrap-servers 127.0.0.1:19092 \
        --registry-url http://127.0.0.1:18081/apis/ccompat/v7 --topic-prefix "" --run-id demo1

See examples/README.md for what each setting means.
"""

import argparse
import json
import os
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

# The contract's topics (docs/contract.md). A prefix is prepended to each topic name, not to the
# subjects: values are registered under `<contract topic>-value` whatever the prefix, as Holdback
# itself looks them up.
LOANS = "lending.loans.v1"
PAYOUTS = "marketplace.payouts.v1"
DEDUCTIONS = "holdback.deductions.v1"

# The loan and payouts every example produces; the deductions follow from docs/contract.md:
# each payout withholds floor(gross * rate_bps / 10000), capped by the balance.
PRINCIPAL, FEE, RATE_BPS = 100_000, 10_000, 1000
GROSS = [250_000, 120_000, 99_999]


def expected_deductions():
    balance = PRINCIPAL + FEE
    out = []
    for gross in GROSS:
        amount = min(gross * RATE_BPS // 10_000, balance)
        balance -= amount
        out.append((amount, balance))
    return out


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap-servers", default=env("BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    p.add_argument(
        "--registry-url", default=env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7")
    )
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""))
    p.add_argument("--run-id", default=env("RUN_ID") or f"py-{uuid.uuid4().hex[:12]}")
    p.add_argument("--timeout", type=float, default=float(env("TIMEOUT_SECONDS", "60")))
    return p.parse_args()


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    args = parse_args()
    deadline = time.monotonic() + args.timeout
    prefix = args.topic_prefix
    merchant = f"{args.run_id}-merchant"
    loan_id = f"{args.run_id}-loan"
    payout_ids = [f"{args.run_id}-payout-{i + 1}" for i in range(len(GROSS))]

    registry = SchemaRegistryClient({"url": args.registry_url})
    # Holdback registers the schemas (`holdback schemas register`); a producer only uses them:
    # never register from here, take the subject's latest version as the writer schema. Its id
    # goes in the 5-byte header (magic byte 0, 4-byte big-endian id) before the Avro body.
    serializer = AvroSerializer(
        registry,
        schema_str=None,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": lambda ctx, _record: f"{ctx.topic[len(prefix):]}-value",
        },
    )
    deserializer = AvroDeserializer(registry)  # the writer schema comes from the header's id

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            # Exactly once into the log: no duplicates on retry, nothing reordered, acks=all.
            "enable.idempotence": True,
            "acks": "all",
            # Holdback co-partitions the inputs by merchant_id: a merchant's loans and payouts must
            # land in the same partition number of every input topic, and that partition must be
            # the one Holdback's own producers pick. librdkafka's default (consistent_random, CRC32)
            # would pick another one; murmur2_random is the Java client's murmur2 for keyed records.
            "partitioner": "murmur2_random",
        }
    )
    partitions = set()

    def delivered(err, msg):
        if err is not None:
            fail(f"produce to {msg.topic()} failed: {err}")
        partitions.add(msg.partition())
        print(f"produced {msg.topic()} partition {msg.partition()} offset {msg.offset()}")

    def send(topic, value):
        full = prefix + topic
        body = serializer(value, SerializationContext(full, MessageField.VALUE))
        # The key is the merchant_id as UTF-8 bytes (no key schema).
        producer.produce(full, key=merchant.encode("utf-8"), value=body, on_delivery=delivered)

    funded_at = int(time.time() * 1000) - 3_600_000  # an hour ago; payouts a minute apart after it
    send(
        LOANS,
        {
            "event_id": f"{loan_id}-funded",
            "loan_id": loan_id,
            "merchant_id": merchant,
            "type": "FUNDED",
            "occurred_at": funded_at,
            "principal_minor": PRINCIPAL,
            "fee_minor": FEE,
            "holdback_rate_bps": RATE_BPS,
            "minimum_payment_minor": 0,
            "period_days": 30,
            "currency": "USD",
        },
    )
    for i, (payout_id, gross) in enumerate(zip(payout_ids, GROSS)):
        send(
            PAYOUTS,
            {
                "event_id": f"{payout_id}-scheduled",
                "merchant_id": merchant,
                "payout_id": payout_id,
                "type": "SCHEDULED",
                "gross_amount_minor": gross,
                "withheld_minor": None,
                "currency": "USD",
                "occurred_at": funded_at + (i + 1) * 60_000,
            },
        )
    if producer.flush(max(1.0, deadline - time.monotonic())) > 0:
        fail("timed out producing (is Kafka up at %s?)" % args.bootstrap_servers)
    if len(partitions) != 1:
        fail(f"the merchant's records went to several partitions: {sorted(partitions)}")
    partition = partitions.pop()

    # Deductions are written in transactions: read only committed ones. Every partition from the
    # start, without a consumer group (nothing to commit), keeping this merchant's records.
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": f"holdback-example-{args.run_id}",  # required by the client; never joined
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    topic = prefix + DEDUCTIONS
    metadata = consumer.list_topics(topic, timeout=10)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        fail(f"no topic {topic}")
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.topics[topic].partitions])

    seen = {}
    try:
        while len(seen) < len(payout_ids) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise KafkaException(msg.error())
            if msg.key() != merchant.encode("utf-8"):
                continue
            d = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
            print(
                f"read deduction {d['type']} {d['payout_id']} amount {d['amount_minor']} "
                f"balance after {d['balance_after_minor']} (partition {msg.partition()})"
            )
            if d["payout_id"] in seen:
                fail(f"a second deduction for {d['payout_id']}: {d}")
            seen[d["payout_id"]] = (d, msg.partition())
    finally:
        consumer.close()

    if len(seen) < len(payout_ids):
        fail(
            f"timed out after {args.timeout:g} s with {len(seen)} of {len(payout_ids)} deductions on {topic}: "
            "is `holdback run repayment` running with this --topic-prefix? Or did the records go to the DLQ "
            "(`holdback dlq inspect`)?"
        )
    result = []
    for payout_id, gross, (amount, balance) in zip(payout_ids, GROSS, expected_deductions()):
        d, p = seen[payout_id]
        got = (d["type"], d["loan_id"], d["amount_minor"], d["balance_after_minor"], d["gross_amount_minor"])
        want = ("WITHHOLD", loan_id, amount, balance, gross)
        if got != want:
            fail(f"{payout_id}: got (type, loan, amount, balance_after, gross) {got}, expected {want}")
        result.append(
            {"payout_id": payout_id, "amount_minor": amount, "balance_after_minor": balance, "partition": p}
        )
    print("OK: one WITHHOLD per payout, amounts and balances as the contract says")
    print("RESULT " + json.dumps({"merchant_id": merchant, "partition": partition, "deductions": result}))


if __name__ == "__main__":
    main()
