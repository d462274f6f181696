package idempotenttest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/internal/testwait"
)

// The engine-level cases below run requests through idempotent.Run on a real store. Every store of this module
// runs them; what stays in a store's own tests is what only it has (its calls' names, its raw records, its faults).

// Scope is the scope of the requests Request builds.
var Scope = idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/payments"}

// Request is a request for key in Scope whose fingerprint is that of body.
func Request(key, body string) idempotent.Request {
	return idempotent.Request{Key: key, Scope: Scope, Fingerprint: idempotent.Fingerprint(Scope.Method, Scope.Route, []byte(body))}
}

// Resp is the response the handlers of the engine-level cases return.
type Resp struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// Handler returns a handler that counts its executions in runs and answers 201 with body.
func Handler(runs *atomic.Int32, body string) func(context.Context) (Resp, error) {
	return func(context.Context) (Resp, error) {
		runs.Add(1)
		return Resp{Status: 201, Body: body}, nil
	}
}

// Calls returns the calls a store made since the last time it was called, by the store's own names for them
// ("PutItem", "EVALSHA", a statement's kind), and counts afresh.
type Calls func() map[string]int

// RoundTrips is what each step of RunRoundTrips costs the store, in the names its Calls uses. A nil step is not
// checked.
type RoundTrips struct {
	First        map[string]int // a first request: the claim and the completion
	Duplicate    map[string]int // a duplicate of a completed request
	Mismatch     map[string]int // the same key with another payload
	InProgress   map[string]int // a duplicate while the first request runs
	Completion   map[string]int // the running request's completion, once it is let go
	HandlerError map[string]int // a handler that fails: the claim and its release
}

// RunRoundTrips sends, through engine, a first request, a duplicate, a mismatch, a request meeting one in
// progress and a handler error, with keys "k-1" to "k-3", checking the answer of each and what it cost against
// want. After the handler error, released (if not nil) may check the store's raw record of the key; a retry then
// runs the handler again. The store's own cases can go on with "k-1", which holds Resp{201, "paid"} for the body
// `{"a":1}`.
func RunRoundTrips(t *testing.T, engine *idempotent.Engine, calls Calls, want RoundTrips, released func(t *testing.T, id string)) {
	t.Helper()
	ctx := context.Background()
	var runs atomic.Int32
	spec := idempotent.Spec[Resp]{}
	check := func(want map[string]int, step string) {
		t.Helper()
		got := calls()
		if want != nil {
			assert.Equal(t, want, got, step)
		}
	}
	calls()

	res, err := idempotent.Run(ctx, engine, Request("k-1", `{"a":1}`), spec, Handler(&runs, "paid"))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	check(want.First, "first request")

	// The same payload written otherwise: the fingerprint is of the canonical JSON.
	res, err = idempotent.Run(ctx, engine, Request("k-1", `{ "a": 1 }`), spec, Handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, Resp{201, "paid"}, res.Value)
	check(want.Duplicate, "duplicate")

	_, err = idempotent.Run(ctx, engine, Request("k-1", `{"a":2}`), spec, Handler(&runs, "other"))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	check(want.Mismatch, "mismatch")

	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, Request("k-2", `{}`), spec, func(context.Context) (Resp, error) {
			close(started)
			select {
			case <-finish:
				return Resp{Status: 200}, nil
			case <-time.After(testwait.Bound(t)):
				return Resp{}, errors.New("the test never let the first request finish")
			}
		})
		done <- err
	}()
	testwait.Recv(t, started, "the first request's handler to start")
	calls()
	_, err = idempotent.Run(ctx, engine, Request("k-2", `{}`), spec, Handler(&runs, "x"))
	var ip *idempotent.InProgressError
	require.ErrorAs(t, err, &ip)
	assert.GreaterOrEqual(t, ip.RetryAfter, time.Second)
	check(want.InProgress, "in progress")
	close(finish)
	require.NoError(t, testwait.Recv(t, done, "the first request to end"))
	check(want.Completion, "the first request's completion")
	assert.Equal(t, int32(1), runs.Load(), "only the first request ran the handler")

	_, err = idempotent.Run(ctx, engine, Request("k-3", `{}`), spec, func(context.Context) (Resp, error) {
		return Resp{}, errors.New("boom")
	})
	require.EqualError(t, err, "boom")
	check(want.HandlerError, "handler error: claim + release")
	if released != nil {
		released(t, Scope.ID("k-3"))
	}
	res, err = idempotent.Run(ctx, engine, Request("k-3", `{}`), spec, Handler(&runs, "retried"))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	check(want.First, "the released key runs as a first request")
	assert.Equal(t, int32(2), runs.Load(), "paid once, the released key ran again")
}

// RunLocalCacheMakesNoCalls checks that an engine with a local cache answers a duplicate and a mismatch of the
// request it recorded without calling the store. engine must have idempotent.WithLocalCache; first (if not nil)
// is what the first request costs.
func RunLocalCacheMakesNoCalls(t *testing.T, engine *idempotent.Engine, calls Calls, first map[string]int) {
	t.Helper()
	ctx := context.Background()
	var runs atomic.Int32
	spec := idempotent.Spec[Resp]{}
	calls()
	_, err := idempotent.Run(ctx, engine, Request("cached", `{"a":1}`), spec, Handler(&runs, "paid"))
	require.NoError(t, err)
	if got := calls(); first != nil {
		assert.Equal(t, first, got, "first request")
	}

	res, err := idempotent.Run(ctx, engine, Request("cached", `{ "a": 1 }`), spec, Handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, Resp{201, "paid"}, res.Value)
	assert.Empty(t, calls(), "duplicate from the local cache")

	_, err = idempotent.Run(ctx, engine, Request("cached", `{"a":2}`), spec, Handler(&runs, "other"))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Empty(t, calls(), "mismatch from the local cache")
	assert.Equal(t, int32(1), runs.Load())
}

// RunExpiredRecordIsReclaimed runs a request for key on an engine whose clock starts at start, with an hour's
// retention: a duplicate one step before the hour is over replays, one at the hour runs the handler again. step is
// the finest instant the store keeps (start must be a whole step), so the two sides of the expiry are one step
// apart. present (if not nil) checks that the store still holds the expired record when it is reclaimed: the
// store must judge expiry by the engine's clock, not wait for the server to delete it.
func RunExpiredRecordIsReclaimed(t *testing.T, store idempotent.Store, key string, start time.Time, step time.Duration, present func(t *testing.T, id string)) {
	t.Helper()
	clock := NewClock(start)
	engine := idempotent.New(store, idempotent.WithClock(clock), idempotent.WithRetention(time.Hour))
	ctx := context.Background()
	var runs atomic.Int32
	req := Request(key, `{}`)

	_, err := idempotent.Run(ctx, engine, req, idempotent.Spec[Resp]{}, Handler(&runs, "first"))
	require.NoError(t, err)
	clock.Advance(time.Hour - step)
	res, err := idempotent.Run(ctx, engine, req, idempotent.Spec[Resp]{}, Handler(&runs, "second"))
	require.NoError(t, err)
	assert.True(t, res.Replayed(), "retained until the last %s", step)

	clock.Advance(step)
	if present != nil {
		present(t, Scope.ID(key))
	}
	res, err = idempotent.Run(ctx, engine, req, idempotent.Spec[Resp]{}, Handler(&runs, "second"))
	require.NoError(t, err)
	assert.False(t, res.Replayed(), "expired at the engine's instant")
	assert.Equal(t, "second", res.Value.Body)
	assert.Equal(t, int32(2), runs.Load())
}

// crashedClaim leaves an INPROGRESS record as an invocation that died after claiming would.
func crashedClaim(t *testing.T, store idempotent.Store, key string, now time.Time, lease time.Duration) idempotent.Record {
	t.Helper()
	rec := idempotent.Record{
		ID: Scope.ID(key), Status: idempotent.StatusInProgress, Fingerprint: Request(key, `{}`).Fingerprint,
		Owner: "crashed-owner", LeaseEnd: now.Add(lease), ExpiresAt: now.Add(24 * time.Hour),
	}
	existing, err := store.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing)
	return rec
}

// RunEndedLease leaves the claim of an invocation that crashed at start with a 30 s lease, then sends its request
// again through engines whose clocks stand around the lease's end. With the default policy the request is in
// progress one step before the end and taken over at the end, and the crashed invocation, waking up, can neither
// complete nor release the new record; with LeaseRefuse the key stays held and the outcome is unknown. step is
// the finest instant the store keeps (start must be a whole step). raw returns the store's raw record of an ID, to
// show that a fenced write changed nothing.
func RunEndedLease(t *testing.T, store idempotent.Store, start time.Time, step time.Duration, raw func(t *testing.T, id string) any) {
	t.Helper()
	ctx := context.Background()

	t.Run("ReRunTakesOver", func(t *testing.T) {
		stale := crashedClaim(t, store, "lease-rerun", start, 30*time.Second)
		clock := NewClock(start.Add(30*time.Second - step))
		engine := idempotent.New(store, idempotent.WithClock(clock))
		var runs atomic.Int32
		_, err := idempotent.Run(ctx, engine, Request("lease-rerun", `{}`), idempotent.Spec[Resp]{}, Handler(&runs, "x"))
		require.ErrorIs(t, err, idempotent.ErrInProgress, "the lease ends in %s", step)

		clock.Set(start.Add(30 * time.Second))
		res, err := idempotent.Run(ctx, engine, Request("lease-rerun", `{}`), idempotent.Spec[Resp]{}, Handler(&runs, "taken over"))
		require.NoError(t, err)
		assert.False(t, res.Replayed())
		assert.Equal(t, "taken over", res.Value.Body)
		assert.Equal(t, int32(1), runs.Load())

		before := raw(t, stale.ID)
		done := stale
		done.Status, done.Response = idempotent.StatusCompleted, []byte(`"stale"`)
		require.ErrorIs(t, store.Complete(ctx, done, nil), idempotent.ErrFenced)
		require.ErrorIs(t, store.Release(ctx, stale.ID, stale.Owner), idempotent.ErrFenced)
		assert.Equal(t, before, raw(t, stale.ID), "a fenced write changes nothing")
	})

	t.Run("RefuseKeepsKey", func(t *testing.T) {
		crashedClaim(t, store, "lease-refuse", start, 30*time.Second)
		clock := NewClock(start.Add(time.Minute))
		engine := idempotent.New(store, idempotent.WithClock(clock), idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
		var runs atomic.Int32
		_, err := idempotent.Run(ctx, engine, Request("lease-refuse", `{}`), idempotent.Spec[Resp]{}, Handler(&runs, "x"))
		require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
		assert.Zero(t, runs.Load())
	})
}

// RunConcurrentDuplicates sends the same request for key from 64 goroutines at once, spread over engines (one
// engine, or several as several Lambda instances would have). The handler holds the claim until the 63 others
// have their answer: exactly one execution, every other answer "in progress", and a later duplicate replays the
// response.
func RunConcurrentDuplicates(t *testing.T, engines []*idempotent.Engine, key string) {
	t.Helper()
	const n = racers
	var (
		runs     atomic.Int32
		answered atomic.Int32
		wg       sync.WaitGroup
	)
	start, others := make(chan struct{}), make(chan struct{})
	results := make([]idempotent.Result[Resp], n)
	errs := make([]error, n)
	req := Request(key, `{"amount":1}`)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = idempotent.Run(context.Background(), engines[i%len(engines)], req, idempotent.Spec[Resp]{},
				func(context.Context) (Resp, error) {
					runs.Add(1)
					select { // the others meet the claim while the handler runs
					case <-others:
						return Resp{Status: 201, Body: "once"}, nil
					case <-time.After(testwait.Bound(t)):
						return Resp{}, errors.New("the other requests did not all get an answer")
					}
				})
			if !(errs[i] == nil && !results[i].Replayed()) && answered.Add(1) == n-1 {
				close(others)
			}
		}()
	}
	close(start)
	testwait.Group(t, &wg, "the concurrent duplicates")

	assert.Equal(t, int32(1), runs.Load(), "exactly one execution")
	executed := 0
	for i := range n {
		switch {
		case errs[i] == nil && !results[i].Replayed():
			executed++
			assert.Equal(t, "once", results[i].Value.Body)
		default:
			assert.ErrorIs(t, errs[i], idempotent.ErrInProgress, "request %d met the claim while the handler ran", i)
		}
	}
	assert.Equal(t, 1, executed)

	res, err := idempotent.Run(context.Background(), engines[0], req, idempotent.Spec[Resp]{}, Handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, "once", res.Value.Body)
	assert.Equal(t, int32(1), runs.Load())
}

// RunTooLargeNeverRunsTwice records a response too large for the store (big, which must not compress under the
// store's limit): the first caller gets it, a duplicate gets tooLarge (also idempotent.ErrResponseUnavailable, and
// no *idempotent.StoreError: retrying cannot help) without the handler running again, and another payload a
// mismatch. recorded (if not nil) checks the store's raw record after the first request.
func RunTooLargeNeverRunsTwice(t *testing.T, engine *idempotent.Engine, big []byte, tooLarge error, recorded func(t *testing.T, id string)) {
	t.Helper()
	ctx := context.Background()
	var runs atomic.Int32
	handler := func(out []byte) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) {
			runs.Add(1)
			return out, nil
		}
	}
	first, err := idempotent.Run(ctx, engine, Request("huge", `{}`), idempotent.Spec[[]byte]{}, handler(big))
	require.NoError(t, err, "the first caller gets the handler's response")
	assert.Equal(t, big, first.Value)
	if recorded != nil {
		recorded(t, Scope.ID("huge"))
	}

	_, err = idempotent.Run(ctx, engine, Request("huge", `{}`), idempotent.Spec[[]byte]{}, handler(nil))
	require.ErrorIs(t, err, tooLarge)
	require.ErrorIs(t, err, idempotent.ErrResponseUnavailable)
	var se *idempotent.StoreError
	require.False(t, errors.As(err, &se), "not a store failure: retrying cannot help")
	_, err = idempotent.Run(ctx, engine, Request("huge", `{"other":1}`), idempotent.Spec[[]byte]{}, handler(nil))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, int32(1), runs.Load(), "the handler ran once")
}
