package dynamostore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
)

// benchBody is a JSON request body of about 1 KB, the size the performance targets are stated for.
var benchBody = []byte(`{"amount":4999,"currency":"eur","description":"` + strings.Repeat("x", 880) +
	`","customer":{"id":"cus_9f8e7d6c5b4a","email":"jane.doe@example.com"},"items":[{"sku":"SUB-ANNUAL","quantity":1}]}`)

// benchResp is what the benchmark's handler returns and the engine records.
var benchResp = resp{Status: 201, Body: `{"id":"pay_3Nf8Kq2LrT","status":"succeeded","amount":4999,"currency":"eur"}`}

// acceptAll is an API whose every PutItem succeeds at once, to measure the store's own work.
type acceptAll struct{ dynamostore.API }

func (acceptAll) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

// BenchmarkClaimInput measures what Claim does before the PutItem leaves for DynamoDB: the item and the condition.
func BenchmarkClaimInput(b *testing.B) {
	store := dynamostore.New(acceptAll{}, "tbl")
	ctx := context.Background()
	now := time.Now()
	c := idempotent.Claim{Now: now, Takeover: true, Record: idempotent.Record{
		ID: strings.Repeat("ab", 32), Fingerprint: strings.Repeat("cd", 32), Owner: strings.Repeat("ef", 16),
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Claim(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// BenchmarkDynamoDB runs requests through the engine on DynamoDB Local and reports, beside the time of a request
// (ns/op, fingerprint included), the DynamoDB calls it made (calls/op, counted at the SDK's HTTP client, so
// retries would show) and, where a target compares it with bare DynamoDB, the time of the bare round trips made
// in the same iterations with the timer stopped (bare-ns/op) and the ratio of the two (ratio-vs-bare).
//
// Targets: a first request makes 2 calls and takes at most 1.1 times two bare PutItems of a similar item; a
// duplicate makes 1 call and takes at most 1.1 times a bare GetItem; in-progress and mismatch answers make 1
// call; a duplicate served from the local cache makes none.
func BenchmarkDynamoDB(b *testing.B) {
	table := newTable(b)
	client, calls := countingClient(b)
	// The bare round trips go through a client wired exactly like the engine's, counted apart.
	bare, _ := countingClient(b)
	store := dynamostore.New(client, table)
	o := store.Options()
	ctx := context.Background()
	scope := idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/payments"}
	spec := idempotent.Spec[resp]{}
	handler := func(context.Context) (resp, error) { return benchResp, nil }
	newEngine := func(opts ...idempotent.Option) *idempotent.Engine {
		return idempotent.New(store, append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(io.Discard))}, opts...)...)
	}
	request := func(e *idempotent.Engine, key string, body []byte) (idempotent.Result[resp], error) {
		req := idempotent.Request{Key: key, Scope: scope, Fingerprint: idempotent.Fingerprint(scope.Method, scope.Route, body)}
		return idempotent.Run(ctx, e, req, spec, handler)
	}
	mustRun := func(b *testing.B, e *idempotent.Engine, key string) {
		b.Helper()
		if _, err := request(e, key, benchBody); err != nil {
			b.Fatal(err)
		}
	}

	// Bare round trips: items shaped like the engine's INPROGRESS and COMPLETED records.
	str := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	fp := idempotent.Fingerprint(scope.Method, scope.Route, benchBody)
	owner := hex.EncodeToString(make([]byte, 16))
	data, err := idempotent.JSONCodec[resp]{}.Encode(benchResp)
	if err != nil {
		b.Fatal(err)
	}
	barePut := func(b *testing.B, id string, status idempotent.Status) {
		now := time.Now()
		it := map[string]types.AttributeValue{
			o.IDAttr: str(id), o.StatusAttr: str(status.String()), o.ExpirationAttr: num(now.Add(24 * time.Hour).Unix()),
			o.ValidationAttr: str(fp), o.OwnerAttr: str(owner),
		}
		if status == idempotent.StatusInProgress {
			it[o.InProgressExpirationAttr] = num(now.Add(time.Minute).UnixMilli())
		} else {
			it[o.DataAttr] = str(string(data))
		}
		if _, err := bare.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			b.Fatal(err)
		}
	}
	bareGet := func(b *testing.B, id string) {
		out, err := bare.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(table), Key: map[string]types.AttributeValue{o.IDAttr: str(id)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil || len(out.Item) == 0 {
			b.Fatalf("bare GetItem %s: %d attributes, %v", id, len(out.Item), err)
		}
	}
	// timeBare runs fn with the benchmark timer stopped and returns how long it took.
	timeBare := func(b *testing.B, fn func()) time.Duration {
		b.StopTimer()
		start := time.Now()
		fn()
		d := time.Since(start)
		b.StartTimer()
		return d
	}
	report := func(b *testing.B, bareTime time.Duration) {
		n := float64(b.N)
		b.ReportMetric(float64(total(calls.take()))/n, "calls/op")
		if bareTime > 0 {
			b.ReportMetric(float64(bareTime.Nanoseconds())/n, "bare-ns/op")
			b.ReportMetric(float64(b.Elapsed())/float64(bareTime), "ratio-vs-bare")
		}
	}

	b.Run("FirstRequest", func(b *testing.B) {
		e := newEngine()
		prefix := "first-" + hex.EncodeToString([]byte(time.Now().Format(time.RFC3339Nano))) + "-"
		var bareTime time.Duration
		i := 0
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			i++
			key := prefix + strconv.Itoa(i)
			bareTime += timeBare(b, func() {
				id := "bare-" + key
				barePut(b, id, idempotent.StatusInProgress)
				barePut(b, id, idempotent.StatusCompleted)
			})
			res, err := request(e, key, benchBody)
			if err != nil || res.Outcome != idempotent.OutcomeExecuted {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, bareTime)
	})

	b.Run("Duplicate", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "duplicate")
		id := scope.ID("duplicate")
		var bareTime time.Duration
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			bareTime += timeBare(b, func() { bareGet(b, id) })
			res, err := request(e, "duplicate", benchBody)
			if err != nil || !res.Replayed() {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, bareTime)
	})

	b.Run("InProgress", func(b *testing.B) {
		e := newEngine()
		now := time.Now()
		id := scope.ID("in-progress")
		_, err := store.Claim(ctx, idempotent.Claim{Now: now, Record: idempotent.Record{
			ID: id, Fingerprint: fp, Owner: owner, LeaseEnd: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
		}})
		if err != nil {
			b.Fatal(err)
		}
		var bareTime time.Duration
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			bareTime += timeBare(b, func() { bareGet(b, id) })
			if _, err := request(e, "in-progress", benchBody); !errors.Is(err, idempotent.ErrInProgress) {
				b.Fatalf("error %v, want ErrInProgress", err)
			}
		}
		report(b, bareTime)
	})

	b.Run("Mismatch", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "mismatch")
		id := scope.ID("mismatch")
		other := []byte(`{"amount":1}`)
		var bareTime time.Duration
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			bareTime += timeBare(b, func() { bareGet(b, id) })
			if _, err := request(e, "mismatch", other); !errors.Is(err, idempotent.ErrPayloadMismatch) {
				b.Fatalf("error %v, want ErrPayloadMismatch", err)
			}
		}
		report(b, bareTime)
	})

	b.Run("CachedDuplicate", func(b *testing.B) {
		e := newEngine(idempotent.WithLocalCache(1024, 0))
		mustRun(b, e, "cached")
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			res, err := request(e, "cached", benchBody)
			if err != nil || !res.Replayed() {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, 0)
	})
}
