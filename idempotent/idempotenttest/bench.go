package idempotenttest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idemkit/idemkit/idempotent"
)

// BenchBody is a JSON request body of about 1 KB, the size the performance targets are stated for.
var BenchBody = []byte(`{"amount":4999,"currency":"eur","description":"` + strings.Repeat("x", 880) +
	`","customer":{"id":"cus_9f8e7d6c5b4a","email":"jane.doe@example.com"},"items":[{"sku":"SUB-ANNUAL","quantity":1}]}`)

// BenchResp is what the benchmarks' handler returns and the engine records.
var BenchResp = Resp{Status: 201, Body: `{"id":"pay_3Nf8Kq2LrT","status":"succeeded","amount":4999,"currency":"eur"}`}

// BenchOwner is the owner token of the records a benchmark's baselines write, as long as the engine's.
var BenchOwner = hex.EncodeToString(make([]byte, 16))

// BenchFingerprint is the fingerprint of BenchBody in Scope, as the engine computes it.
func BenchFingerprint() string { return idempotent.Fingerprint(Scope.Method, Scope.Route, BenchBody) }

// BenchData is BenchResp as the engine records it.
func BenchData(b *testing.B) []byte {
	data, err := idempotent.JSONCodec[Resp]{}.Encode(BenchResp)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// Baseline is what one iteration of a benchmark is measured against, timed with the benchmark timer stopped:
// Bare sends the plain round trips the targets are stated against (a plain write of a similar record for each call
// of a first request, a read for a duplicate), Same sends the very calls the store makes, bare. What separates a
// request from Same is the Go code of the engine and the store; what separates Same from Bare is the server's own
// cost for the store's calls.
type Baseline struct {
	Bare, Same func()
}

// EngineBench describes a store to RunEngineBench. A nil baseline leaves out that case's ratios.
type EngineBench struct {
	Store idempotent.Store
	// Calls counts the store's calls (at the client, so retries would show).
	Calls Calls
	// First returns the baseline of a first request for key: the calls for fresh records of its own.
	First func(b *testing.B, key string) Baseline
	// Duplicate, InProgress and Mismatch return the baseline of a request that meets the record id: completed, in
	// progress, completed with another fingerprint.
	Duplicate, InProgress, Mismatch func(b *testing.B, id string) Baseline
}

// RunEngineBench runs requests through the engine on eb.Store and reports, beside the time of a request (ns/op,
// fingerprint included), the store's calls (calls/op) and, where a baseline is given, bare-ns/op, ratio-vs-bare,
// same-call-ns/op and ratio-vs-same-call. Its sub-benchmarks: FirstRequest, Duplicate, InProgress, Mismatch, and
// CachedDuplicate (a duplicate served from the engine's local cache, which should make no call).
func RunEngineBench(b *testing.B, eb EngineBench) {
	ctx := context.Background()
	spec := idempotent.Spec[Resp]{}
	handler := func(context.Context) (Resp, error) { return BenchResp, nil }
	newEngine := func(opts ...idempotent.Option) *idempotent.Engine {
		return idempotent.New(eb.Store, append([]idempotent.Option{idempotent.WithLogger(idempotent.NewLogger(io.Discard))}, opts...)...)
	}
	request := func(e *idempotent.Engine, key string, body []byte) (idempotent.Result[Resp], error) {
		req := idempotent.Request{Key: key, Scope: Scope, Fingerprint: idempotent.Fingerprint(Scope.Method, Scope.Route, body)}
		return idempotent.Run(ctx, e, req, spec, handler)
	}
	mustRun := func(b *testing.B, e *idempotent.Engine, key string) {
		b.Helper()
		if _, err := request(e, key, BenchBody); err != nil {
			b.Fatal(err)
		}
	}
	type times struct{ bare, same time.Duration }
	baseline := func(b *testing.B, t *times, base Baseline) {
		b.StopTimer()
		start := time.Now()
		base.Bare()
		mid := time.Now()
		base.Same()
		t.bare += mid.Sub(start)
		t.same += time.Since(mid)
		b.StartTimer()
	}
	report := func(b *testing.B, t times) {
		n := float64(b.N)
		calls := 0
		for _, c := range eb.Calls() {
			calls += c
		}
		b.ReportMetric(float64(calls)/n, "calls/op")
		if t.bare > 0 {
			b.ReportMetric(float64(t.bare.Nanoseconds())/n, "bare-ns/op")
			b.ReportMetric(float64(b.Elapsed())/float64(t.bare), "ratio-vs-bare")
			b.ReportMetric(float64(t.same.Nanoseconds())/n, "same-call-ns/op")
			b.ReportMetric(float64(b.Elapsed())/float64(t.same), "ratio-vs-same-call")
		}
	}
	// meeting runs the requests that meet a record already there: key's request with body, each answered as check
	// says.
	meeting := func(b *testing.B, e *idempotent.Engine, key string, body []byte, base func(*testing.B, string) Baseline, check func(idempotent.Result[Resp], error) error) {
		var t times
		var bl *Baseline
		if base != nil {
			v := base(b, Scope.ID(key))
			bl = &v
		}
		b.ReportAllocs()
		eb.Calls()
		for b.Loop() {
			if bl != nil {
				baseline(b, &t, *bl)
			}
			if err := check(request(e, key, body)); err != nil {
				b.Fatal(err)
			}
		}
		report(b, t)
	}
	replayed := func(res idempotent.Result[Resp], err error) error {
		if err != nil || !res.Replayed() {
			return fmt.Errorf("outcome %s, error %v", res.Outcome, err)
		}
		return nil
	}

	b.Run("FirstRequest", func(b *testing.B) {
		e := newEngine()
		prefix := "first-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
		var t times
		i := 0
		b.ReportAllocs()
		eb.Calls()
		for b.Loop() {
			i++
			key := prefix + strconv.Itoa(i)
			if eb.First != nil {
				baseline(b, &t, eb.First(b, key))
			}
			res, err := request(e, key, BenchBody)
			if err != nil || res.Outcome != idempotent.OutcomeExecuted {
				b.Fatalf("outcome %s, error %v", res.Outcome, err)
			}
		}
		report(b, t)
	})

	b.Run("Duplicate", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "duplicate")
		meeting(b, e, "duplicate", BenchBody, eb.Duplicate, replayed)
	})

	b.Run("InProgress", func(b *testing.B) {
		now := time.Now()
		if _, err := eb.Store.Claim(ctx, idempotent.Claim{Now: now, Record: idempotent.Record{
			ID: Scope.ID("in-progress"), Fingerprint: BenchFingerprint(), Owner: BenchOwner,
			LeaseEnd: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour),
		}}); err != nil {
			b.Fatal(err)
		}
		meeting(b, newEngine(), "in-progress", BenchBody, eb.InProgress, func(_ idempotent.Result[Resp], err error) error {
			if !errors.Is(err, idempotent.ErrInProgress) {
				return fmt.Errorf("error %v, want ErrInProgress", err)
			}
			return nil
		})
	})

	b.Run("Mismatch", func(b *testing.B) {
		e := newEngine()
		mustRun(b, e, "mismatch")
		meeting(b, e, "mismatch", []byte(`{"amount":1}`), eb.Mismatch, func(_ idempotent.Result[Resp], err error) error {
			if !errors.Is(err, idempotent.ErrPayloadMismatch) {
				return fmt.Errorf("error %v, want ErrPayloadMismatch", err)
			}
			return nil
		})
	})

	b.Run("CachedDuplicate", func(b *testing.B) {
		e := newEngine(idempotent.WithLocalCache(1024, 0))
		mustRun(b, e, "cached")
		meeting(b, e, "cached", BenchBody, nil, replayed)
	})
}
