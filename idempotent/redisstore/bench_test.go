package redisstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

// benchBody is a JSON request body of about 1 KB, as in dynamostore's benchmark.
var benchBody = []byte(`{"amount":4999,"currency":"eur","description":"` + strings.Repeat("x", 880) +
	`","customer":{"id":"cus_9f8e7d6c5b4a","email":"jane.doe@example.com"},"items":[{"sku":"SUB-ANNUAL","quantity":1}]}`)

// benchResp is what the benchmark's handler returns and the engine records.
var benchResp = resp{Status: 201, Body: `{"id":"pay_3Nf8Kq2LrT","status":"succeeded","amount":4999,"currency":"eur"}`}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// BenchmarkRedis is dynamostore's BenchmarkDynamoDB on redis-server: requests through the engine, fingerprint
// included, with calls/op counted by a go-redis hook and two baselines timed in the same iterations with the
// benchmark timer stopped:
//
//   - bare-ns/op and ratio-vs-bare: plain commands of a similar size, an HSET of the record for each call of a
//     first request and an HMGET for a duplicate;
//   - same-call-ns/op and ratio-vs-same-call: the very script calls the store makes (EVALSHA of the claim and
//     completion scripts, the duplicate's claim answering with the record), sent bare.
//
// What separates a request from the second baseline is the Go code of the engine and the store; what separates the
// second from the first is the server's cost of running the scripts.
func BenchmarkRedis(b *testing.B) {
	client, calls := countingClient(b)
	bare := redistest.NewClient(b)
	store := newStore(b, client)
	ctx := context.Background()
	if err := redisstore.LoadScripts(ctx, bare); err != nil {
		b.Fatal(err)
	}
	// Open the counting client's first connection, whose set-up commands (HELLO, CLIENT SETINFO) the hook sees.
	if err := client.Ping(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	scope := idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/payments"}
	spec := idempotent.Spec[resp]{}
	handler := func(context.Context) (resp, error) { return benchResp, nil }
	newEngine := func(opts ...idempotent.Option) *idempotent.Engine {
		return idempotent.New(store, append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(discard{}))}, opts...)...)
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

	fp := idempotent.Fingerprint(scope.Method, scope.Route, benchBody)
	owner := hex.EncodeToString(make([]byte, 16))
	data, err := idempotent.JSONCodec[resp]{}.Encode(benchResp)
	if err != nil {
		b.Fatal(err)
	}
	key := func(id string) string { return store.Key(id) }
	// hset writes a record shaped like the engine's, plainly.
	hset := func(b *testing.B, id string, status idempotent.Status) {
		now := time.Now()
		fields := []any{"status", status.String(), "expiration", now.Add(24 * time.Hour).Unix(), "validation", fp, "owner", owner}
		if status == idempotent.StatusInProgress {
			fields = append(fields, "in_progress_expiration", now.Add(time.Minute).UnixMilli())
		} else {
			fields = append(fields, "data", data)
		}
		if err := bare.HSet(ctx, key(id), fields...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	hmget := func(b *testing.B, id string) {
		vals, err := bare.HMGet(ctx, key(id), "status", "expiration", "in_progress_expiration", "validation", "owner", "data", "data_encoding").Result()
		if err != nil || vals[0] == nil {
			b.Fatalf("HMGET %s: %v %v", id, vals, err)
		}
	}
	// claimCall and completeCall send the store's scripts with the arguments it would.
	claimCall := func(b *testing.B, id string, wantRecord bool) {
		now := time.Now()
		res, err := bare.EvalSha(ctx, redisstore.ClaimSHA, []string{key(id)}, now.Unix(), now.UnixMilli(), "1", owner+"x", fp,
			now.Add(time.Minute).UnixMilli(), now.Add(24*time.Hour).Unix(), (24 * time.Hour).Milliseconds()).Result()
		if _, isRecord := res.([]any); err != nil || isRecord != wantRecord {
			b.Fatalf("claim script: %v %v", res, err)
		}
	}
	completeCall := func(b *testing.B, id string) {
		res, err := bare.EvalSha(ctx, redisstore.CompleteSHA, []string{key(id)}, owner+"x", time.Now().Add(24*time.Hour).Unix(), fp, data, "").Int64()
		if err != nil || res != 0 {
			b.Fatalf("complete script: %v %v", res, err)
		}
	}
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
		prefix := "first-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
		var t baselineTimes
		i := 0
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			i++
			k := prefix + strconv.Itoa(i)
			baselines(b, &t, func() {
				hset(b, "bare-"+k, idempotent.StatusInProgress)
				hset(b, "bare-"+k, idempotent.StatusCompleted)
			}, func() {
				claimCall(b, "same-"+k, false)
				completeCall(b, "same-"+k)
			})
			res, err := request(e, k, benchBody)
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
			baselines(b, &t, func() { hmget(b, id) }, func() { claimCall(b, id, true) })
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
		if _, err := store.Claim(ctx, idempotent.Claim{Now: now, Record: idempotent.Record{
			ID: id, Fingerprint: fp, Owner: owner, LeaseEnd: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
		}}); err != nil {
			b.Fatal(err)
		}
		var t baselineTimes
		b.ReportAllocs()
		calls.take()
		for b.Loop() {
			baselines(b, &t, func() { hmget(b, id) }, func() { claimCall(b, id, true) })
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
			baselines(b, &t, func() { hmget(b, id) }, func() { claimCall(b, id, true) })
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
