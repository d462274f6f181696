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
// retries would show) and two baselines timed in the same iterations with the benchmark timer stopped:
//
//   - bare-ns/op and ratio-vs-bare: the round trips the targets are stated against, a plain PutItem of a
//     similar item for each call of a first request and a consistent GetItem for a duplicate;
//   - same-call-ns/op and ratio-vs-same-call: the very calls the store makes (conditional PutItems returning
//     ALL_OLD, the duplicate's failing), sent bare. What separates the request from these is the Go code of the
//     engine and the store; what separates these from the first baseline is DynamoDB's own cost for the call.
//
// Targets: a first request makes 2 calls and takes at most 1.1 times two bare PutItems; a duplicate makes 1 call
// and takes at most 1.1 times a bare GetItem; in-progress and mismatch answers make 1 call; a duplicate served
// from the local cache makes none.
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
	// item is shaped like the engine's records.
	item := func(id string, status idempotent.Status) map[string]types.AttributeValue {
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
		return it
	}
	// put sends a PutItem on the bare client: plain, or with the claim's condition (the key is absent) or the
	// completion's (the record is INPROGRESS and ours), returning the old item when the condition fails.
	type condition int
	const (
		plain condition = iota
		absent
		fenced
	)
	put := func(b *testing.B, it map[string]types.AttributeValue, c condition, wantFail bool) {
		in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}
		switch c {
		case absent:
			in.ConditionExpression = aws.String("attribute_not_exists(#id)")
			in.ExpressionAttributeNames = map[string]string{"#id": o.IDAttr}
		case fenced:
			in.ConditionExpression = aws.String("#status = :inprogress AND #owner = :owner")
			in.ExpressionAttributeNames = map[string]string{"#status": o.StatusAttr, "#owner": o.OwnerAttr}
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":inprogress": str("INPROGRESS"), ":owner": str(owner)}
		}
		if c != plain {
			in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		}
		_, err := bare.PutItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if failed := errors.As(err, &ccf); failed != wantFail || (err != nil && !failed) {
			b.Fatalf("bare PutItem: %v", err)
		}
	}
	get := func(b *testing.B, id string) {
		out, err := bare.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(table), Key: map[string]types.AttributeValue{o.IDAttr: str(id)}, ConsistentRead: aws.Bool(true),
		})
		if err != nil || len(out.Item) == 0 {
			b.Fatalf("bare GetItem %s: %d attributes, %v", id, len(out.Item), err)
		}
	}
	// baselines times the two baselines of one iteration with the benchmark timer stopped.
	type baselineTimes struct{ bare, same time.Duration }
	baselines := func(b *testing.B, t *baselineTimes, bareFn, sameFn func()) {
		b.StopTimer()
		start := time.Now()
		bareFn()
		mid := time.Now()
		sameFn()
		t.bare += mid.Sub(start)
		t.same += time.Since(mid)
		b.StartTimer()
	}
	report := func(b *testing.B, t baselineTimes) {
		n := float64(b.N)
		b.ReportMetric(float64(total(calls.take()))/n, "calls/op")
		if t.bare > 0 {
			b.ReportMetric(float64(t.bare.Nanoseconds())/n, "bare-ns/op")
			b.ReportMetric(float64(b.Elapsed())/float64(t.bare), "ratio-vs-bare")
			b.ReportMetric(float64(t.same.Nanoseconds())/n, "same-call-ns/op")
			b.ReportMetric(float64(b.Elapsed())/float64(t.same), "ratio-vs-same-call")
		}
	}

	b.Run("FirstRequest", func(b *testing.B) {
		e := newEngine()
		prefix := "first-" + hex.EncodeToString([]byte(time.Now().Format(time.RFC3339Nano))) + "-"
		var t baselineTimes
		i := 0
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			i++
			key := prefix + strconv.Itoa(i)
			baselines(b, &t, func() {
				id := "bare-" + key
				put(b, item(id, idempotent.StatusInProgress), plain, false)
				put(b, item(id, idempotent.StatusCompleted), plain, false)
			}, func() {
				id := "same-" + key
				put(b, item(id, idempotent.StatusInProgress), absent, false)
				put(b, item(id, idempotent.StatusCompleted), fenced, false)
			})
			res, err := request(e, key, benchBody)
			if err != nil || res.Outcome != idempotent.OutcomeExecuted {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, t)
	})

	b.Run("Duplicate", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "duplicate")
		id := scope.ID("duplicate")
		var t baselineTimes
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			baselines(b, &t, func() { get(b, id) }, func() { put(b, item(id, idempotent.StatusInProgress), absent, true) })
			res, err := request(e, "duplicate", benchBody)
			if err != nil || !res.Replayed() {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, t)
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
		var t baselineTimes
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			baselines(b, &t, func() { get(b, id) }, func() { put(b, item(id, idempotent.StatusInProgress), absent, true) })
			if _, err := request(e, "in-progress", benchBody); !errors.Is(err, idempotent.ErrInProgress) {
				b.Fatalf("error %v, want ErrInProgress", err)
			}
		}
		report(b, t)
	})

	b.Run("Mismatch", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "mismatch")
		id := scope.ID("mismatch")
		other := []byte(`{"amount":1}`)
		var t baselineTimes
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			baselines(b, &t, func() { get(b, id) }, func() { put(b, item(id, idempotent.StatusInProgress), absent, true) })
			if _, err := request(e, "mismatch", other); !errors.Is(err, idempotent.ErrPayloadMismatch) {
				b.Fatalf("error %v, want ErrPayloadMismatch", err)
			}
		}
		report(b, t)
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
		report(b, baselineTimes{})
	})
}
