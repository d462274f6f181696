package idempotent_test

// Tests for engine behaviour that `make mutate` found unguarded: option guards, the local cache's bounds, the
// invocation context, completion errors that must not be retried, the completion backoff, a failing Codec, and
// the request deadline's bound on completion and release. Self-contained (own store spy and helpers) so that the
// engine's other test files can change freely.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

var mkT0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type mkOut struct {
	N int `json:"n"`
}

func mkRequest(key, payload string) idempotent.Request {
	return idempotent.Request{
		Key:         key,
		Scope:       idempotent.Scope{Principal: "p", Method: "POST", Route: "/things"},
		Fingerprint: idempotent.Fingerprint("POST", "/things", []byte(payload)),
	}
}

// spyStore is a memstore that records what the engine asks of it (the claimed records, the contexts of completion
// and release) and can fail completions and claims.
type spyStore struct {
	*memstore.Store
	mu                        sync.Mutex
	claims                    []idempotent.Record
	claimErr                  error
	complete                  func(n int) error // the n-th completion's error (1-based); nil commits
	completes                 int
	completeAt, releaseAt     time.Time // wall clock when called
	completeDL, releaseDL     time.Time // the deadline of the context it got
	completeCtxErr, relCtxErr error
	releases                  int
}

func newSpy() *spyStore { return &spyStore{Store: memstore.New()} }

func (s *spyStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	s.mu.Lock()
	s.claims = append(s.claims, c.Record)
	err := s.claimErr
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Store.Claim(context.WithoutCancel(ctx), c) // the tests judge contexts themselves
}

func (s *spyStore) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	s.mu.Lock()
	s.completes++
	n := s.completes
	s.completeAt = time.Now()
	s.completeDL, _ = ctx.Deadline()
	s.completeCtxErr = ctx.Err()
	fail := s.complete
	s.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return err
		}
	}
	return s.Store.Complete(context.WithoutCancel(ctx), rec, nil)
}

func (s *spyStore) Release(ctx context.Context, id, owner string) error {
	s.mu.Lock()
	s.releases++
	s.releaseAt = time.Now()
	s.releaseDL, _ = ctx.Deadline()
	s.relCtxErr = ctx.Err()
	s.mu.Unlock()
	return s.Store.Release(context.WithoutCancel(ctx), id, owner)
}

func (s *spyStore) lastClaim(t *testing.T) idempotent.Record {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.claims)
	return s.claims[len(s.claims)-1]
}

func mkEngine(store idempotent.Store, last *idempotent.Event, opts ...idempotent.Option) *idempotent.Engine {
	return idempotent.New(store, append([]idempotent.Option{
		idempotent.WithClock(idempotenttest.NewClock(mkT0)),
		idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
			if last != nil {
				*last = ev
			}
		}),
	}, opts...)...)
}

func mkRun(ctx context.Context, e *idempotent.Engine, key string, fn func(context.Context) (mkOut, error)) (idempotent.Result[mkOut], error) {
	return idempotent.Run(ctx, e, mkRequest(key, "{}"), idempotent.Spec[mkOut]{}, fn)
}

func ok(n int) func(context.Context) (mkOut, error) {
	return func(context.Context) (mkOut, error) { return mkOut{N: n}, nil }
}

func TestOptionGuards(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name       string
		opts       []idempotent.Option
		wantLease  time.Duration // LeaseEnd - t0 of a claim without a context deadline
		wantExpiry time.Duration // ExpiresAt - t0
	}{
		{"defaults", nil, time.Minute, 24 * hour},
		{"WithRetention(1h)", []idempotent.Option{idempotent.WithRetention(hour)}, time.Minute, hour},
		{"WithRetention(0) keeps the default", []idempotent.Option{idempotent.WithRetention(0)}, time.Minute, 24 * hour},
		{"WithRetention(-1) keeps the default", []idempotent.Option{idempotent.WithRetention(-1)}, time.Minute, 24 * hour},
		{"WithLease(5m)", []idempotent.Option{idempotent.WithLease(5 * time.Minute)}, 5 * time.Minute, 24 * hour},
		{"WithLease(0) keeps the default", []idempotent.Option{idempotent.WithLease(0)}, time.Minute, 24 * hour},
		{"WithLease(-1) keeps the default", []idempotent.Option{idempotent.WithLease(-1)}, time.Minute, 24 * hour},
		{"WithRetention(1ns) is honoured", []idempotent.Option{idempotent.WithRetention(time.Nanosecond)}, time.Minute, time.Nanosecond},
		{"WithLease(1ns) is honoured", []idempotent.Option{idempotent.WithLease(time.Nanosecond)}, time.Nanosecond, 24 * hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spy := newSpy()
			e := mkEngine(spy, nil, tc.opts...)
			_, err := mkRun(context.Background(), e, "k", ok(1))
			require.NoError(t, err)
			rec := spy.lastClaim(t)
			assert.Equal(t, tc.wantLease, rec.LeaseEnd.Sub(mkT0), "lease")
			assert.Equal(t, tc.wantExpiry, rec.ExpiresAt.Sub(mkT0), "retention")
			got, err := spy.Get(context.Background(), rec.ID, mkT0)
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Equal(t, tc.wantExpiry, got.ExpiresAt.Sub(mkT0), "the completed record keeps the retention")
		})
	}
}

func TestLeaseMargin(t *testing.T) {
	const left = time.Hour // the request's deadline, far enough that time spent before the claim does not matter
	tests := []struct {
		name   string
		opts   []idempotent.Option
		margin time.Duration
	}{
		{"default one second", nil, time.Second},
		{"WithLeaseMargin(10m)", []idempotent.Option{idempotent.WithLeaseMargin(10 * time.Minute)}, 10 * time.Minute},
		{"WithLeaseMargin(0)", []idempotent.Option{idempotent.WithLeaseMargin(10 * time.Minute), idempotent.WithLeaseMargin(0)}, 0},
		{"WithLeaseMargin(-1) keeps what was set", []idempotent.Option{idempotent.WithLeaseMargin(10 * time.Minute), idempotent.WithLeaseMargin(-time.Second)}, 10 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spy := newSpy()
			e := mkEngine(spy, nil, tc.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), left)
			defer cancel()
			before := time.Now()
			_, err := mkRun(ctx, e, "k", ok(1))
			elapsed := time.Since(before)
			require.NoError(t, err)
			lease := spy.lastClaim(t).LeaseEnd.Sub(mkT0)
			// The remaining time is measured once, during the run: between left-elapsed and left.
			assert.LessOrEqual(t, lease, left+tc.margin)
			assert.GreaterOrEqual(t, lease, left+tc.margin-elapsed)
		})
	}
}

func TestMaxAttempts(t *testing.T) {
	tests := []struct {
		name   string
		opts   []idempotent.Option
		claims int
	}{
		{"default 3", nil, 3},
		{"WithMaxAttempts(5)", []idempotent.Option{idempotent.WithMaxAttempts(5)}, 5},
		{"WithMaxAttempts(1)", []idempotent.Option{idempotent.WithMaxAttempts(1)}, 1},
		{"WithMaxAttempts(0) keeps the default", []idempotent.Option{idempotent.WithMaxAttempts(0)}, 3},
		{"WithMaxAttempts(-2) keeps the default", []idempotent.Option{idempotent.WithMaxAttempts(-2)}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spy := newSpy()
			spy.claimErr = idempotent.ErrRecordChanged // the record changes under every claim
			var last idempotent.Event
			e := mkEngine(spy, &last, tc.opts...)
			var runs atomic.Int32
			_, err := mkRun(context.Background(), e, "k", func(context.Context) (mkOut, error) { runs.Add(1); return mkOut{}, nil })
			require.ErrorIs(t, err, idempotent.ErrRecordChanged)
			var se *idempotent.StoreError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "claim", se.Op)
			assert.Len(t, spy.claims, tc.claims)
			assert.Zero(t, runs.Load())
			assert.Equal(t, idempotent.OutcomeStoreError, last.Outcome)
		})
	}
}

func TestOtherGuardsKeepWorkingDefaults(t *testing.T) {
	// Nil clock, logger and hook are ignored: the engine still runs, logs a failure and reports it.
	spy := newSpy()
	spy.complete = func(int) error { return idempotent.ErrPermanent }
	e := idempotent.New(spy, idempotent.WithDisabled(false), idempotent.WithClock(nil), idempotent.WithLogger(nil),
		idempotent.WithOutcomeHook(nil), idempotent.WithCompletionTimeout(0), idempotent.WithCompletionTimeout(-time.Second))
	before := time.Now()
	res, err := mkRun(context.Background(), e, "k", ok(7))
	after := time.Now()
	require.NoError(t, err, "a failed completion does not fail the caller")
	assert.Equal(t, 7, res.Value.N)
	rec := spy.lastClaim(t)
	assert.False(t, rec.ExpiresAt.Before(before.Add(24*time.Hour)), "the system clock")
	assert.False(t, rec.ExpiresAt.After(after.Add(24*time.Hour)), "the system clock")
	// The completion budget is the default five seconds from when the completion began.
	assert.False(t, spy.completeDL.After(spy.completeAt.Add(5*time.Second)))
	assert.False(t, spy.completeDL.Before(before.Add(5*time.Second)))
}

func TestLocalCacheBounds(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		retention time.Duration
		at        time.Duration // when the duplicate comes, after the first
		fromCache bool
	}{
		{"within ttl", time.Minute, time.Hour, 59 * time.Second, true},
		{"at ttl", time.Minute, time.Hour, time.Minute, false},
		{"past ttl", time.Minute, time.Hour, 2 * time.Minute, false},
		{"ttl longer than the record: the record's expiry bounds it", time.Hour, time.Minute, time.Minute, false},
		{"ttl longer than the record, before its expiry", time.Hour, time.Minute, 59 * time.Second, true},
		{"ttl zero: until the record expires", 0, time.Hour, 59 * time.Minute, true},
		{"ttl zero: not past the record's expiry", 0, time.Hour, time.Hour, false},
		{"ttl of one nanosecond is a ttl", time.Nanosecond, time.Hour, time.Nanosecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spy := newSpy()
			clk := idempotenttest.NewClock(mkT0)
			e := mkEngine(spy, nil, idempotent.WithClock(clk), idempotent.WithRetention(tc.retention), idempotent.WithLocalCache(8, tc.ttl))
			_, err := mkRun(context.Background(), e, "k", ok(1))
			require.NoError(t, err)
			// Take the record away from the store: only the cache can still replay it.
			spy.Store = memstore.New()
			clk.Advance(tc.at)
			res, err := mkRun(context.Background(), e, "k", ok(2))
			require.NoError(t, err)
			if tc.fromCache {
				assert.True(t, res.Replayed(), "replayed from the cache")
				assert.Equal(t, 1, res.Value.N)
			} else {
				assert.False(t, res.Replayed(), "the cache entry ended; the key ran again")
				assert.Equal(t, 2, res.Value.N)
			}
		})
	}
	t.Run("size one caches one record", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithLocalCache(1, time.Minute))
		_, err := mkRun(context.Background(), e, "k", ok(1))
		require.NoError(t, err)
		spy.Store = memstore.New()
		res, err := mkRun(context.Background(), e, "k", ok(2))
		require.NoError(t, err)
		assert.True(t, res.Replayed())
	})
	t.Run("an expired entry frees its slot", func(t *testing.T) {
		// Size 2: A expires and is read (which, kept, would make it the most recent entry), then C is added. B,
		// still live, must stay cached: had A stayed, C would have evicted B.
		spy := newSpy()
		clk := idempotenttest.NewClock(mkT0)
		e := mkEngine(spy, nil, idempotent.WithClock(clk), idempotent.WithLocalCache(2, time.Minute))
		_, err := mkRun(context.Background(), e, "A", ok(1))
		require.NoError(t, err)
		clk.Advance(50 * time.Second)
		_, err = mkRun(context.Background(), e, "B", ok(1))
		require.NoError(t, err)
		clk.Advance(11 * time.Second) // A's entry ended, B's has 49 s left
		spy.Store = memstore.New()    // from here on only the cache knows B
		// A misses the cache and runs again, failing: nothing of A is cached anew.
		_, err = mkRun(context.Background(), e, "A", func(context.Context) (mkOut, error) { return mkOut{}, errors.New("fails") })
		require.Error(t, err)
		_, err = mkRun(context.Background(), e, "C", ok(1))
		require.NoError(t, err)
		res, err := mkRun(context.Background(), e, "B", ok(2))
		require.NoError(t, err)
		assert.True(t, res.Replayed(), "B is still cached")
		assert.Equal(t, 1, res.Value.N)
	})
	t.Run("size zero: no cache", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithLocalCache(0, time.Minute))
		_, err := mkRun(context.Background(), e, "k", ok(1))
		require.NoError(t, err)
		spy.Store = memstore.New()
		res, err := mkRun(context.Background(), e, "k", ok(2))
		require.NoError(t, err)
		assert.False(t, res.Replayed())
	})
	t.Run("an in-progress duplicate is not cached", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithLocalCache(8, time.Hour))
		entered, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := mkRun(context.Background(), e, "k", func(context.Context) (mkOut, error) {
				close(entered)
				<-release
				return mkOut{N: 1}, nil
			})
			done <- err
		}()
		mkWait(t, entered, "the first handler to start")
		_, err := mkRun(context.Background(), e, "k", ok(2))
		var ip *idempotent.InProgressError
		require.ErrorAs(t, err, &ip)
		close(release)
		require.NoError(t, mkWait(t, done, "the first run to end"))
		res, err := mkRun(context.Background(), e, "k", ok(3))
		require.NoError(t, err)
		assert.True(t, res.Replayed())
		assert.Equal(t, 1, res.Value.N)
	})
}

// mkWait is testwait.Recv for this file (the engine's tests import nothing internal to stay copyable).
func mkWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	bound := 5 * time.Minute
	if dl, ok := t.Deadline(); ok {
		bound = min(bound, time.Until(dl)*9/10)
	}
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

func TestInvocationContext(t *testing.T) {
	t.Run("outside an execution", func(t *testing.T) {
		inv, ok := idempotent.FromContext(context.Background())
		assert.False(t, ok)
		assert.Equal(t, idempotent.Invocation{}, inv)
		assert.False(t, idempotent.AddEffect(context.Background(), "write"), "no execution to attach it to")
	})
	t.Run("inside, and after it ended", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil)
		var hctx context.Context
		var inside idempotent.Invocation
		var found, added bool
		_, err := mkRun(context.Background(), e, "k", func(ctx context.Context) (mkOut, error) {
			hctx = ctx
			inside, found = idempotent.FromContext(ctx)
			return mkOut{N: 1}, nil
		})
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, spy.lastClaim(t).ID, inside.ID)
		assert.Equal(t, mkRequest("k", "{}").Scope, inside.Scope)
		added = idempotent.AddEffect(hctx, "late write")
		assert.False(t, added, "an effect added after the execution ended is refused, not silently dropped")
	})
}

func TestCompletionErrorsAreNotRetried(t *testing.T) {
	for _, sentinel := range []error{idempotent.ErrFenced, idempotent.ErrEffectFailed, idempotent.ErrUnsupportedEffect, idempotent.ErrPermanent} {
		t.Run(sentinel.Error(), func(t *testing.T) {
			spy := newSpy()
			spy.complete = func(int) error { return sentinel }
			var last idempotent.Event
			// A budget long enough that a retry loop would show; the original returns at once.
			e := mkEngine(spy, &last, idempotent.WithCompletionTimeout(2*time.Second))
			_, err := mkRun(context.Background(), e, "k", ok(1))
			assert.Equal(t, 1, spy.completes, "one completion attempt")
			assert.ErrorIs(t, errors.Join(err, last.StoreErr), sentinel, "returned or logged")
		})
	}
}

func TestCompletionBackoff(t *testing.T) {
	// A transient failure is retried with a doubling backoff from 20 ms until the budget ends: within one second
	// attempts start at 0, 20, 60, 140, 300 and 620 ms, so at most six, and at least two. A tight loop would make
	// hundreds; a load spike can only make fewer.
	spy := newSpy()
	transient := errors.New("throttled")
	spy.complete = func(int) error { return transient }
	var last idempotent.Event
	e := mkEngine(spy, &last, idempotent.WithCompletionTimeout(time.Second))
	res, err := mkRun(context.Background(), e, "k", ok(1))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Value.N)
	assert.GreaterOrEqual(t, spy.completes, 2, "retried")
	assert.LessOrEqual(t, spy.completes, 6, "backed off")
	assert.ErrorIs(t, last.StoreErr, transient)
	assert.Equal(t, 0, spy.releases, "the claim is kept: the handler ran")

	t.Run("a later success ends the retries", func(t *testing.T) {
		spy := newSpy()
		spy.complete = func(n int) error {
			if n < 2 {
				return transient
			}
			return nil
		}
		var last idempotent.Event
		e := mkEngine(spy, &last, idempotent.WithCompletionTimeout(time.Minute))
		_, err := mkRun(context.Background(), e, "k", ok(1))
		require.NoError(t, err)
		assert.Equal(t, 2, spy.completes)
		assert.NoError(t, last.StoreErr)
		assert.True(t, last.Recorded)
	})
}

// failingCodec fails to encode.
type failingCodec struct{}

func (failingCodec) Encode(mkOut) ([]byte, error) { return nil, errors.New("cannot encode") }
func (failingCodec) Decode([]byte) (mkOut, error) { return mkOut{}, nil }

func TestCodecEncodeFailure(t *testing.T) {
	t.Run("no effects: the answer stands and the claim is kept", func(t *testing.T) {
		spy := newSpy()
		var last idempotent.Event
		e := mkEngine(spy, &last)
		spec := idempotent.Spec[mkOut]{Codec: failingCodec{}}
		res, err := idempotent.Run(context.Background(), e, mkRequest("k", "{}"), spec, ok(5))
		require.NoError(t, err)
		assert.Equal(t, 5, res.Value.N)
		assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
		var se *idempotent.StoreError
		require.ErrorAs(t, last.StoreErr, &se)
		assert.Equal(t, "complete", se.Op)
		assert.ErrorContains(t, last.StoreErr, "cannot encode")
		assert.False(t, last.Recorded)
		assert.Equal(t, 0, spy.releases, "not released: a retry must not run the handler again")
		assert.Equal(t, 0, spy.completes)
		_, err = idempotent.Run(context.Background(), e, mkRequest("k", "{}"), spec, ok(6))
		var ip *idempotent.InProgressError
		assert.ErrorAs(t, err, &ip, "the key stays claimed until its lease ends")
	})
	t.Run("with effects: nothing committed, the claim is released", func(t *testing.T) {
		spy := newSpy()
		var last idempotent.Event
		e := mkEngine(spy, &last)
		spec := idempotent.Spec[mkOut]{Codec: failingCodec{}}
		_, err := idempotent.Run(context.Background(), e, mkRequest("k", "{}"), spec, func(ctx context.Context) (mkOut, error) {
			require.True(t, idempotent.AddEffect(ctx, "write"))
			return mkOut{N: 5}, nil
		})
		var se *idempotent.StoreError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "complete", se.Op)
		assert.Equal(t, 1, spy.releases)
		assert.Equal(t, 0, spy.completes, "the effects were never sent")
		res, err := idempotent.Run(context.Background(), e, mkRequest("k", "{}"), idempotent.Spec[mkOut]{}, ok(6))
		require.NoError(t, err)
		assert.Equal(t, 6, res.Value.N, "the key was free: the retry ran")
	})
}

func TestRequestDeadlineBoundsCompletionAndRelease(t *testing.T) {
	const budget = time.Hour // the completion timeout, far beyond the request's deadline
	t.Run("completion ends at the request's deadline", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithCompletionTimeout(budget))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var returned time.Time
		_, err := mkRun(ctx, e, "k", func(context.Context) (mkOut, error) { returned = time.Now(); return mkOut{}, nil })
		require.NoError(t, err)
		reqDL, _ := ctx.Deadline()
		// detached measures the time left once and adds it to its own now: the deadline it sets is the request's,
		// moved by at most the time between the handler's return and the completion call.
		assert.False(t, spy.completeDL.Before(reqDL), "not before the request's deadline")
		assert.False(t, spy.completeDL.After(reqDL.Add(spy.completeAt.Sub(returned))), "not after it")
		assert.NoError(t, spy.completeCtxErr)
	})
	t.Run("release ends at the request's deadline", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithCompletionTimeout(budget))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var returned time.Time
		_, err := mkRun(ctx, e, "k", func(context.Context) (mkOut, error) {
			returned = time.Now()
			return mkOut{}, errors.New("handler failed")
		})
		require.Error(t, err)
		require.Equal(t, 1, spy.releases)
		reqDL, _ := ctx.Deadline()
		assert.False(t, spy.releaseDL.Before(reqDL))
		assert.False(t, spy.releaseDL.After(reqDL.Add(spy.releaseAt.Sub(returned))))
	})
	t.Run("the budget ends first when it is shorter", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithCompletionTimeout(time.Minute))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var returned time.Time
		_, err := mkRun(ctx, e, "k", func(context.Context) (mkOut, error) { returned = time.Now(); return mkOut{}, nil })
		require.NoError(t, err)
		assert.False(t, spy.completeDL.Before(returned.Add(time.Minute)))
		assert.False(t, spy.completeDL.After(spy.completeAt.Add(time.Minute)))
	})
	t.Run("a request already past its deadline still gets 100 ms to record", func(t *testing.T) {
		spy := newSpy()
		e := mkEngine(spy, nil, idempotent.WithCompletionTimeout(budget))
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		var returned time.Time
		_, err := mkRun(ctx, e, "k", func(hctx context.Context) (mkOut, error) {
			mkWait(t, hctx.Done(), "the request's deadline (1 ms) to pass")
			returned = time.Now()
			return mkOut{}, nil
		})
		require.NoError(t, err)
		assert.False(t, spy.completeDL.Before(returned.Add(100*time.Millisecond)), "at least 100 ms")
		assert.False(t, spy.completeDL.After(spy.completeAt.Add(100*time.Millisecond)), "at most 100 ms")
	})
}

func TestLeasePolicyString(t *testing.T) {
	assert.Equal(t, "rerun", idempotent.LeaseReRun.String())
	assert.Equal(t, "refuse", idempotent.LeaseRefuse.String())
}

func TestCompletionTimeoutOfOneNanosecond(t *testing.T) {
	spy := newSpy()
	e := mkEngine(spy, nil, idempotent.WithCompletionTimeout(time.Nanosecond))
	var returned time.Time
	_, err := mkRun(context.Background(), e, "k", func(context.Context) (mkOut, error) { returned = time.Now(); return mkOut{}, nil })
	require.NoError(t, err)
	assert.False(t, spy.completeDL.Before(returned.Add(time.Nanosecond)))
	assert.False(t, spy.completeDL.After(spy.completeAt.Add(time.Nanosecond)), "the budget set, not the default five seconds")
}
