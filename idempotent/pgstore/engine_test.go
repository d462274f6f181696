package pgstore_test

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
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/pgstore"
	"github.com/idemkit/idemkit/internal/pglocal/pgtest"
)

var scope = idempotent.Scope{Principal: "user-1", Method: "POST", Route: "/payments"}

func request(key, body string) idempotent.Request {
	return idempotent.Request{Key: key, Scope: scope, Fingerprint: idempotent.Fingerprint(scope.Method, scope.Route, []byte(body))}
}

type resp struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// handler returns a handler that counts its executions.
func handler(n *atomic.Int32, body string) func(context.Context) (resp, error) {
	return func(context.Context) (resp, error) {
		n.Add(1)
		return resp{Status: 201, Body: body}, nil
	}
}

// wait receives from ch within a bound, failing the test with msg otherwise.
func wait[T any](t *testing.T, ch <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("timed out: %s", msg)
		panic("unreachable")
	}
}

// TestEngineStatements counts the statements through the engine: a first request is the claim and the
// completion, a duplicate, a mismatch and a request while the first is in progress one claim each.
func TestEngineStatements(t *testing.T) {
	pool, stmts := countingPool(t)
	engine := idempotent.New(pgstore.New(pool, newTable(t)))
	ctx := context.Background()
	var runs atomic.Int32
	spec := idempotent.Spec[resp]{}

	res, err := idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "paid"))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	assert.Equal(t, map[string]int{"claimed": 1, "done": 1}, stmts.take(), "first request: claim + completion")

	res, err = idempotent.Run(ctx, engine, request("k-1", `{ "a": 1 }`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{201, "paid"}, res.Value)
	assert.Equal(t, map[string]int{"claimed": 1}, stmts.take(), "duplicate: the claim returns the record")

	_, err = idempotent.Run(ctx, engine, request("k-1", `{"a":2}`), spec, handler(&runs, "other"))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, map[string]int{"claimed": 1}, stmts.take(), "mismatch")

	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, request("k-2", `{}`), spec, func(context.Context) (resp, error) {
			close(started)
			<-finish
			return resp{Status: 200}, nil
		})
		done <- err
	}()
	wait(t, started, "the first request's handler to start")
	stmts.take()
	_, err = idempotent.Run(ctx, engine, request("k-2", `{}`), spec, handler(&runs, "x"))
	var ip *idempotent.InProgressError
	require.ErrorAs(t, err, &ip)
	assert.GreaterOrEqual(t, ip.RetryAfter, time.Second)
	assert.Equal(t, map[string]int{"claimed": 1}, stmts.take(), "in progress")
	close(finish)
	require.NoError(t, wait(t, done, "the first request to finish"))
	assert.Equal(t, map[string]int{"done": 1}, stmts.take(), "the first request's completion")

	// A handler error releases the claim: claim + release, and the key is free again.
	_, err = idempotent.Run(ctx, engine, request("k-3", `{}`), spec, func(context.Context) (resp, error) {
		return resp{}, errors.New("boom")
	})
	require.EqualError(t, err, "boom")
	assert.Equal(t, map[string]int{"claimed": 1, "gone": 1}, stmts.take(), "handler error: claim + release")
	_, err = idempotent.Run(ctx, engine, request("k-3", `{}`), spec, handler(&runs, "retried"))
	require.NoError(t, err)
	assert.Equal(t, int32(2), runs.Load(), "paid once, the released key ran again")
}

// TestConcurrentDuplicatesExecuteOnce: 64 goroutines send the same key at once through one engine. The handler
// runs exactly once: it holds the claim until the 63 others have their answer (409 in progress), and a later
// duplicate replays its response.
func TestConcurrentDuplicatesExecuteOnce(t *testing.T) {
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	engine := idempotent.New(store)
	const n = 64
	var (
		runs     atomic.Int32
		answered atomic.Int32
		wg       sync.WaitGroup
	)
	start, others := make(chan struct{}), make(chan struct{})
	results := make([]idempotent.Result[resp], n)
	errs := make([]error, n)
	req := request("hot-key", `{"amount":1}`)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = idempotent.Run(context.Background(), engine, req, idempotent.Spec[resp]{},
				func(context.Context) (resp, error) {
					runs.Add(1)
					select {
					case <-others:
						return resp{Status: 201, Body: "once"}, nil
					case <-time.After(time.Minute):
						return resp{}, errors.New("the other requests did not all get an answer")
					}
				})
			if !(errs[i] == nil && !results[i].Replayed()) && answered.Add(1) == n-1 {
				close(others)
			}
		}()
	}
	close(start)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	wait(t, finished, "64 concurrent requests")

	assert.Equal(t, int32(1), runs.Load(), "exactly one execution")
	executed := 0
	for i := range n {
		switch {
		case errs[i] == nil && !results[i].Replayed():
			executed++
			assert.Equal(t, "once", results[i].Value.Body)
		default:
			assert.ErrorIs(t, errs[i], idempotent.ErrInProgress, "request %d", i)
		}
	}
	assert.Equal(t, 1, executed)
	res, err := idempotent.Run(context.Background(), engine, req, idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
		runs.Add(1)
		return resp{}, nil
	})
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, "once", res.Value.Body)
	assert.Equal(t, int32(1), runs.Load())
}

// TestFakeClockDrivesExpiry: the store judges expiry and leases at the engine's instant, never at the server's
// now(): a record an hour in the future counts as expired when the engine's clock says so.
func TestFakeClockDrivesExpiry(t *testing.T) {
	store := pgstore.New(pgtest.Pool(t), newTable(t))
	// Far from the server's clock, and on a whole microsecond: timestamptz keeps microseconds, and the store rounds
	// stored ends up (a record never ends early), so a sub-microsecond start would end a microsecond later.
	clock := idempotenttest.NewClock(time.Now().Add(-100 * time.Hour).Truncate(time.Microsecond))
	engine := idempotent.New(store, idempotent.WithClock(clock), idempotent.WithRetention(time.Hour), idempotent.WithLease(time.Minute))
	ctx := context.Background()
	var runs atomic.Int32
	req := request("expiring", `{}`)

	_, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "first"))
	require.NoError(t, err)
	clock.Advance(time.Hour - time.Microsecond)
	res, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "second"))
	require.NoError(t, err)
	assert.True(t, res.Replayed(), "retained until the last microsecond")

	clock.Advance(time.Microsecond)
	res, err = idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "second"))
	require.NoError(t, err)
	assert.False(t, res.Replayed(), "expired at the engine's instant, though the server's now() is 99 hours later")
	assert.Equal(t, "second", res.Value.Body)
	assert.Equal(t, int32(2), runs.Load())

	// A crashed claim (never completed): its lease ends at the engine's clock too.
	crashed := idempotent.Record{ID: scope.ID("crashed"), Status: idempotent.StatusInProgress, Fingerprint: request("crashed", `{}`).Fingerprint,
		Owner: "crashed-owner", LeaseEnd: clock.Now().Add(time.Minute), ExpiresAt: clock.Now().Add(time.Hour)}
	existing, err := store.Claim(ctx, idempotent.Claim{Record: crashed, Now: clock.Now()})
	require.NoError(t, err)
	require.Nil(t, existing)
	_, err = idempotent.Run(ctx, engine, request("crashed", `{}`), idempotent.Spec[resp]{}, handler(&runs, "x"))
	require.ErrorIs(t, err, idempotent.ErrInProgress, "lease not ended at the engine's instant")
	clock.Advance(time.Minute)
	res, err = idempotent.Run(ctx, engine, request("crashed", `{}`), idempotent.Spec[resp]{}, handler(&runs, "taken over"))
	require.NoError(t, err)
	assert.Equal(t, "taken over", res.Value.Body)
}
