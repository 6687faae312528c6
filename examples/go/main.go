// Holdback producer example in Go (franz-go, the platform's own client).
//
// Produces one FUNDED loan and three SCHEDULED payouts for one merchant, in the contract's wire
// format (docs/contract.md), then reads the deductions `holdback run repayment` wrote for them
// and checks each amount and balance. Exits 0 when every deduction is as the contract says, 1
// otherwise (with the reason), 2 on bad arguments.
//
//	go run . --run-id demo1
//	go run . --bootstrap-servers 127.0.0.1:19092 \
//	    --registry-url http://127.0.0.1:18081/apis/ccompat/v7 --topic-prefix "" --run-id demo1
//
// See examples/README.md for what each setting means.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// The contract's topics (docs/contract.md). A prefix is prepended to each topic name, not to the
// subjects: values are registered under `<contract topic>-value` whatever the prefix, as Holdback
// itself looks them up.
const (
	loansTopic      = "lending.loans.v1"
	payoutsTopic    = "marketplace.payouts.v1"
	deductionsTopic = "holdback.deductions.v1"
)

// The loan and payouts every example produces; the deductions follow from docs/contract.md:
// each payout withholds floor(gross * rate_bps / 10000), capped by the balance.
const (
	principal = 100_000
	fee       = 10_000
	rateBps   = 1000
)

var gross = []int64{250_000, 120_000, 99_999}

// LoanEvent, PayoutEvent and Deduction follow schemas/*.avsc: enums are strings, nullable
// fields pointers, timestamp-millis int64 milliseconds.
type LoanEvent struct {
	EventID             string  `avro:"event_id"`
	LoanID              string  `avro:"loan_id"`
	MerchantID          string  `avro:"merchant_id"`
	Type                string  `avro:"type"`
	OccurredAt          int64   `avro:"occurred_at"`
	PrincipalMinor      *int64  `avro:"principal_minor"`
	FeeMinor            *int64  `avro:"fee_minor"`
	HoldbackRateBps     *int32  `avro:"holdback_rate_bps"`
	MinimumPaymentMinor *int64  `avro:"minimum_payment_minor"`
	PeriodDays          *int32  `avro:"period_days"`
	Currency            *string `avro:"currency"`
}

type PayoutEvent struct {
	EventID          string `avro:"event_id"`
	MerchantID       string `avro:"merchant_id"`
	PayoutID         string `avro:"payout_id"`
	Type             string `avro:"type"`
	GrossAmountMinor int64  `avro:"gross_amount_minor"`
	WithheldMinor    *int64 `avro:"withheld_minor"`
	Currency         string `avro:"currency"`
	OccurredAt       int64  `avro:"occurred_at"`
}

type Deduction struct {
	DeductionID       string `avro:"deduction_id"`
	Type              string `avro:"type"`
	PayoutID          string `avro:"payout_id"`
	LoanID            string `avro:"loan_id"`
	MerchantID        string `avro:"merchant_id"`
	AmountMinor       int64  `avro:"amount_minor"`
	GrossAmountMinor  int64  `avro:"gross_amount_minor"`
	HoldbackRateBps   int32  `avro:"holdback_rate_bps"`
	BalanceAfterMinor int64  `avro:"balance_after_minor"`
	Currency          string `avro:"currency"`
	SourceEventID     string `avro:"source_event_id"`
	OccurredAt        int64  `avro:"occurred_at"`
	DecidedAt         int64  `avro:"decided_at"`
}

type resultDeduction struct {
	PayoutID          string `json:"payout_id"`
	AmountMinor       int64  `json:"amount_minor"`
	BalanceAfterMinor int64  `json:"balance_after_minor"`
	Partition         int32  `json:"partition"`
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	timeoutDefault, err := strconv.ParseFloat(env("TIMEOUT_SECONDS", "60"), 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "TIMEOUT_SECONDS: %v\n", err)
		os.Exit(2)
	}
	bootstrap := flag.String("bootstrap-servers", env("BOOTSTRAP_SERVERS", "127.0.0.1:19092"), "Kafka bootstrap servers, comma separated")
	registryURL := flag.String("registry-url", env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7"), "the registry's Confluent-compatible API")
	prefix := flag.String("topic-prefix", env("TOPIC_PREFIX", ""), "prefix of every topic name (as holdback run --topic-prefix)")
	runID := flag.String("run-id", env("RUN_ID", ""), "makes the merchant, loan and payout ids unique (default: random)")
	timeout := flag.Float64("timeout", timeoutDefault, "seconds to wait for everything")
	flag.Parse()
	if *runID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		*runID = "go-" + hex.EncodeToString(b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*timeout*float64(time.Second)))
	defer cancel()
	merchant := *runID + "-merchant"
	loanID := *runID + "-loan"
	payoutIDs := make([]string, len(gross))
	for i := range gross {
		payoutIDs[i] = fmt.Sprintf("%s-payout-%d", *runID, i+1)
	}

	registry, err := sr.NewClient(sr.URLs(*registryURL))
	if err != nil {
		fail("registry client: %v", err)
	}
	// Holdback registers the schemas (`holdback schemas register`); a producer only uses them:
	// never register from here, take the subject's latest version as the writer schema. The
	// Serde writes its id in the 5-byte header (magic byte 0, 4-byte big-endian id) before the
	// Avro body.
	var serde sr.Serde
	useLatest := func(topic string, v any) {
		subject := topic + "-value"
		latest, err := registry.SchemaByVersion(ctx, subject, -1)
		if err != nil {
			fail("latest schema of %s at %s: %v", subject, *registryURL, err)
		}
		schema, err := avro.Parse(latest.Schema.Schema)
		if err != nil {
			fail("schema %d of %s: %v", latest.ID, subject, err)
		}
		serde.Register(latest.ID, v,
			sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(schema, v) }),
			sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(schema, b, v) }))
	}
	useLatest(loansTopic, LoanEvent{})
	useLatest(payoutsTopic, PayoutEvent{})

	producer, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		// Exactly once into the log: franz-go's producer is idempotent unless disabled, and
		// idempotence needs acks from all in-sync replicas; both said here to be explicit.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Holdback co-partitions the inputs by merchant_id: a merchant's loans and payouts must
		// land in the same partition number of every input topic, and that partition must be the
		// one Holdback's own producers pick. With a nil hasher this partitioner hashes the key
		// with Kafka's murmur2 (kgo.KafkaHasher(murmur2)), as the Java client does.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	if err != nil {
		fail("producer: %v", err)
	}
	defer producer.Close()

	record := func(topic string, v any) *kgo.Record {
		value, err := serde.Encode(v)
		if err != nil {
			fail("encoding %T: %v", v, err)
		}
		// The key is the merchant_id as UTF-8 bytes (no key schema).
		return &kgo.Record{Topic: *prefix + topic, Key: []byte(merchant), Value: value}
	}
	fundedAt := time.Now().UnixMilli() - 3_600_000 // an hour ago; payouts a minute apart after it
	records := []*kgo.Record{record(loansTopic, LoanEvent{
		EventID: loanID + "-funded", LoanID: loanID, MerchantID: merchant, Type: "FUNDED", OccurredAt: fundedAt,
		PrincipalMinor: ptr[int64](principal), FeeMinor: ptr[int64](fee), HoldbackRateBps: ptr[int32](rateBps),
		MinimumPaymentMinor: ptr[int64](0), PeriodDays: ptr[int32](30), Currency: ptr("USD"),
	})}
	for i, id := range payoutIDs {
		records = append(records, record(payoutsTopic, PayoutEvent{
			EventID: id + "-scheduled", MerchantID: merchant, PayoutID: id, Type: "SCHEDULED",
			GrossAmountMinor: gross[i], Currency: "USD", OccurredAt: fundedAt + int64(i+1)*60_000,
		}))
	}
	partitions := map[int32]bool{}
	for _, r := range producer.ProduceSync(ctx, records...) {
		if r.Err != nil {
			fail("produce to %s: %v (is Kafka up at %s?)", r.Record.Topic, r.Err, *bootstrap)
		}
		partitions[r.Record.Partition] = true
		fmt.Printf("produced %s partition %d offset %d\n", r.Record.Topic, r.Record.Partition, r.Record.Offset)
	}
	if len(partitions) != 1 {
		fail("the merchant's records went to several partitions: %v", partitions)
	}
	var partition int32
	for p := range partitions {
		partition = p
	}

	// Deductions are written in transactions: read only committed ones. Every partition from the
	// start, without a consumer group (nothing to commit), keeping this merchant's records.
	topic := *prefix + deductionsTopic
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		fail("consumer: %v", err)
	}
	defer consumer.Close()

	type seenDeduction struct {
		d         Deduction
		partition int32
	}
	seen := map[string]seenDeduction{}
	for len(seen) < len(payoutIDs) {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			fail("timed out after %g s with %d of %d deductions on %s: is `holdback run repayment` running with this --topic-prefix? Or did the records go to the DLQ (`holdback dlq inspect`)?",
				*timeout, len(seen), len(payoutIDs), topic)
		}
		fetches.EachError(func(t string, p int32, err error) { fail("fetching %s/%d: %v", t, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != merchant {
				return
			}
			var d Deduction
			if err := decode(ctx, registry, &serde, r.Value, &d); err != nil {
				fail("decoding %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			fmt.Printf("read deduction %s %s amount %d balance after %d (partition %d)\n",
				d.Type, d.PayoutID, d.AmountMinor, d.BalanceAfterMinor, r.Partition)
			if _, dup := seen[d.PayoutID]; dup {
				fail("a second deduction for %s: %+v", d.PayoutID, d)
			}
			seen[d.PayoutID] = seenDeduction{d, r.Partition}
		})
	}

	balance := int64(principal + fee)
	result := []resultDeduction{}
	for i, id := range payoutIDs {
		amount := min(gross[i]*rateBps/10_000, balance)
		balance -= amount
		s := seen[id]
		got := fmt.Sprint(s.d.Type, s.d.LoanID, s.d.AmountMinor, s.d.BalanceAfterMinor, s.d.GrossAmountMinor)
		want := fmt.Sprint("WITHHOLD", loanID, amount, balance, gross[i])
		if got != want {
			fail("%s: got (type, loan, amount, balance_after, gross) %s, expected %s", id, got, want)
		}
		result = append(result, resultDeduction{id, amount, balance, s.partition})
	}
	fmt.Println("OK: one WITHHOLD per payout, amounts and balances as the contract says")
	out, _ := json.Marshal(map[string]any{"merchant_id": merchant, "partition": partition, "deductions": result})
	fmt.Println("RESULT " + string(out))
}

// decode reads the writer schema's id from the header; a schema not seen yet is fetched from the
// registry by that id and registered in the Serde, so later records with it decode directly.
func decode(ctx context.Context, registry *sr.Client, serde *sr.Serde, value []byte, into *Deduction) error {
	err := serde.Decode(value, into)
	if !errors.Is(err, sr.ErrNotRegistered) {
		return err
	}
	id, _, err := serde.DecodeID(value)
	if err != nil {
		return err
	}
	writer, err := registry.SchemaByID(ctx, id)
	if err != nil {
		return fmt.Errorf("schema %d: %w", id, err)
	}
	schema, err := avro.Parse(writer.Schema)
	if err != nil {
		return fmt.Errorf("schema %d: %w", id, err)
	}
	serde.Register(id, Deduction{}, sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(schema, b, v) }))
	return serde.Decode(value, into)
}

func ptr[T any](v T) *T { return &v }
