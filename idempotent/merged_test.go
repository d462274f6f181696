package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// mergedStore is memstore with its ClaimCompleter capability, counting every call; fail, when set, may answer a
// merged write instead of the store (n counts merged writes from 1), and apply says whether the store still
// applies it first, as a write whose answer is lost.
type mergedStore struct {
	*memstore.Store
	merged, claims, completes, gets atomic.Int32
	fail                            func(n int32) (err error, apply bool)
	// stale, when set, may answer the n-th merged write with a record instead, as a store judging liveness at
	// another instant would.
	stale   func(n int32) *idempotent.Record
	effects [][]idempotent.Effect
}

func (s *mergedStore) ClaimComplete(ctx context.Context, c idempotent.Claim, eff []idempotent.Effect) (*idempotent.Record, error) {
	n := s.merged.Add(1)
	s.effects = append(s.effects, eff)
	if s.stale != nil {
		if rec := s.stale(n); rec != nil {
			return rec, nil
		}
	}
	if s.fail != nil {
		if err, apply := s.fail(n); err != nil {
			if apply {
				if _, aerr := s.Store.ClaimComplete(ctx, c, nil); aerr != nil {
					return nil, aerr
				}
			}
			return nil, err
		}
	}
	return s.Store.ClaimComplete(ctx, c, nil) // memstore refuses effects; the test store keeps them instead
}

func (s *mergedStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	s.claims.Add(1)
	return s.Store.Claim(ctx, c)
}

func (s *mergedStore) Complete(ctx context.Context, r idempotent.Record, eff []idempotent.Effect) error {
	s.completes.Add(1)
	return s.Store.Complete(ctx, r, eff)
}

func (s *mergedStore) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id, now)
}

func (s *mergedStore) calls() int32 {
	return s.merged.Load() + s.claims.Load() + s.completes.Load() + s.gets.Load()
}

type mergedFixture struct {
	store *mergedStore
	eng   *idempotent.Engine
	last  idempotent.Event
	runs  atomic.Int32
	// direct counts runs in which AddEffect refused: the handler wrote itself.
	direct atomic.Int32
}

func newMergedFixture(opts ...idempotent.Option) *mergedFixture {
	f := &mergedFixture{store: &mergedStore{Store: memstore.New()}}
	f.eng = engineOn(f.store, &f.last, opts...)
	return f
}

// run sends request(key, payload) in merged mode to a handler that adds one effect and answers receipt n.
func (f *mergedFixture) run(ctx context.Context, key, payload string, n int) (idempotent.Result[receipt], error) {
	return idempotent.Run(ctx, f.eng, request(key, payload), idempotent.Spec[receipt]{MergeClaim: true},
		func(ctx context.Context) (receipt, error) {
			f.runs.Add(1)
			if !idempotent.AddEffect(ctx, fmt.Sprintf("write %d", n)) {
				f.direct.Add(1)
				return receipt{N: n, Label: "direct"}, nil
			}
			return receipt{N: n}, nil
		})
}

func TestMergedFirstRequestIsOneCall(t *testing.T) {
	f := newMergedFixture()
	res, err := f.run(context.Background(), "k", "{}", 1)
	require.NoError(t, err)
	assert.Equal(t, receipt{N: 1}, res.Value)
	assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
	assert.Equal(t, int32(1), f.store.calls(), "one merged write and nothing else")
	assert.Equal(t, int32(1), f.store.merged.Load())
	require.Len(t, f.store.effects, 1)
	assert.Equal(t, []idempotent.Effect{"write 1"}, f.store.effects[0], "the effects go with the write")
	assert.True(t, f.last.Recorded)

	res, err = f.run(context.Background(), "k", "{}", 2)
	require.NoError(t, err)
	assert.Equal(t, receipt{N: 1}, res.Value, "a duplicate gets the recorded answer, not its own run's")
	assert.True(t, res.Replayed())
	assert.Equal(t, int32(2), f.store.calls(), "a duplicate is one call")

	res, err = f.run(context.Background(), "k", `{"other":1}`, 3)
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Zero(t, res.Value)
	assert.Equal(t, int32(3), f.store.calls(), "a mismatch is one call")
	assert.Equal(t, idempotent.OutcomeMismatch, f.last.Outcome)
}

func TestMergedNeedsTheCapability(t *testing.T) {
	f := newFixture(t) // countingStore hides memstore's ClaimCompleter
	_, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"), idempotent.Spec[receipt]{MergeClaim: true},
		func(context.Context) (receipt, error) { return receipt{N: 1}, nil })
	require.NoError(t, err)
	assert.Equal(t, int32(1), f.store.claims.Load(), "claimed first, as without MergeClaim")
	assert.Equal(t, int32(1), f.store.completes.Load())
}

func TestMergedWritesNothingUnlessRecorded(t *testing.T) {
	t.Run("HandlerError", func(t *testing.T) {
		f := newMergedFixture()
		boom := errors.New("boom")
		_, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"), idempotent.Spec[receipt]{MergeClaim: true},
			func(ctx context.Context) (receipt, error) {
				idempotent.AddEffect(ctx, "write")
				return receipt{}, boom
			})
		require.ErrorIs(t, err, boom)
		assert.Zero(t, f.store.calls(), "nothing was claimed, so nothing is released")
	})
	t.Run("NotRecordedWithoutEffects", func(t *testing.T) {
		f := newMergedFixture()
		res, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"),
			idempotent.Spec[receipt]{MergeClaim: true, Record: func(receipt) bool { return false }},
			func(context.Context) (receipt, error) { return receipt{N: 4}, nil })
		require.NoError(t, err)
		assert.Equal(t, receipt{N: 4}, res.Value)
		assert.Zero(t, f.store.calls())
	})
	t.Run("NotRecordedWithEffects", func(t *testing.T) {
		f := newMergedFixture()
		_, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"),
			idempotent.Spec[receipt]{MergeClaim: true, Record: func(receipt) bool { return false }},
			func(ctx context.Context) (receipt, error) {
				idempotent.AddEffect(ctx, "write")
				return receipt{N: 4}, nil
			})
		var se *idempotent.StoreError
		require.ErrorAs(t, err, &se, "effects without a record to commit them with are refused")
		assert.Zero(t, f.store.calls())
	})
	t.Run("Panic", func(t *testing.T) {
		f := newMergedFixture()
		assert.PanicsWithValue(t, "bad", func() {
			_, _ = idempotent.Run(context.Background(), f.eng, request("k", "{}"), idempotent.Spec[receipt]{MergeClaim: true},
				func(context.Context) (receipt, error) { panic("bad") })
		})
		assert.Zero(t, f.store.calls())
	})
}

// TestMergedStoreAnswers: what each answer of a merged write leads to.
func TestMergedStoreAnswers(t *testing.T) {
	lost := errors.New("read: connection reset by peer")
	tests := []struct {
		name       string
		fail       func(n int32) (error, bool)
		wantErr    error // nil: the handler's answer
		wantValue  receipt
		wantWrites int32
		wantGets   int32
		wantRuns   int32
		recorded   bool
	}{
		{
			name: "ConflictThenCommitted",
			fail: func(n int32) (error, bool) {
				if n < 3 {
					return fmt.Errorf("conflict: %w", idempotent.ErrRecordChanged), false
				}
				return nil, false
			},
			wantValue: receipt{N: 1}, wantWrites: 3, wantRuns: 1, recorded: true,
		},
		{
			name:    "ConflictEveryTime",
			fail:    func(int32) (error, bool) { return idempotent.ErrRecordChanged, false },
			wantErr: idempotent.ErrRecordChanged, wantWrites: 6, wantRuns: 1,
		},
		{
			name:      "EffectFailedRunsTheHandlerOnItsOwn",
			fail:      func(int32) (error, bool) { return fmt.Errorf("email taken: %w", idempotent.ErrEffectFailed), false },
			wantValue: receipt{N: 1, Label: "direct"}, wantWrites: 1, wantRuns: 2,
		},
		{
			name:      "AnswerLostButApplied",
			fail:      func(int32) (error, bool) { return lost, true },
			wantValue: receipt{N: 1}, wantWrites: 1, wantGets: 1, wantRuns: 1, recorded: true,
		},
		{
			name:    "FailedAndNotApplied",
			fail:    func(int32) (error, bool) { return lost, false },
			wantErr: lost, wantWrites: 1, wantGets: 1, wantRuns: 1,
		},
		{
			name:    "Permanent",
			fail:    func(int32) (error, bool) { return fmt.Errorf("bad: %w", idempotent.ErrPermanent), false },
			wantErr: idempotent.ErrPermanent, wantWrites: 1, wantRuns: 1,
		},
		{
			name:    "Unsupported",
			fail:    func(int32) (error, bool) { return idempotent.ErrUnsupportedEffect, false },
			wantErr: idempotent.ErrUnsupportedEffect, wantWrites: 1, wantRuns: 1,
		},
		{
			name:    "ResponseUnavailable",
			fail:    func(int32) (error, bool) { return idempotent.ErrResponseUnavailable, false },
			wantErr: idempotent.ErrResponseUnavailable, wantWrites: 1, wantRuns: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newMergedFixture()
			f.store.fail = tc.fail
			res, err := f.run(context.Background(), "k", "{}", 1)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if !errors.Is(err, idempotent.ErrResponseUnavailable) {
					var se *idempotent.StoreError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, idempotent.OutcomeStoreError, f.last.Outcome)
				}
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.wantValue, res.Value)
			}
			assert.Equal(t, tc.wantWrites, f.store.merged.Load(), "merged writes")
			assert.Equal(t, tc.wantGets, f.store.gets.Load(), "reads")
			assert.Equal(t, tc.wantRuns, f.runs.Load(), "handler runs")
			assert.Equal(t, tc.recorded, f.last.Recorded, "recorded")
			assert.Equal(t, int(tc.wantWrites-1), f.last.Waits, "repeated writes are counted")
			got, gerr := f.store.Store.Get(context.Background(), request("k", "{}").Scope.ID("k"), t0)
			require.NoError(t, gerr)
			assert.Equal(t, tc.recorded, got != nil, "a record exists exactly when one was written")
		})
	}
}

func TestMergedConflictPausesOnTheClock(t *testing.T) {
	f := newMergedFixture()
	clock := idempotenttest.NewClock(t0)
	f.eng = engineOn(f.store, &f.last, idempotent.WithClock(clock))
	f.store.fail = func(n int32) (error, bool) {
		if n == 1 {
			return idempotent.ErrRecordChanged, false
		}
		return nil, false
	}
	_, err := f.run(context.Background(), "k", "{}", 1)
	require.NoError(t, err)
	assert.Greater(t, clock.Now().Sub(t0), time.Duration(0), "the pause before trying again goes through the clock")
	assert.LessOrEqual(t, clock.Now().Sub(t0), 20*time.Millisecond, "the first pause is short")
}

// TestMergedMeetsARunningClaim: a merged request whose key is held by a claim-first request waits for it (WithWait)
// or answers 409.
func TestMergedMeetsARunningClaim(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			var opts []idempotent.Option
			if wait {
				opts = append(opts, idempotent.WithWait(time.Second))
			}
			f := newMergedFixture(opts...)
			req := request("k", "{}")
			holder := idempotent.Record{ID: req.Scope.ID("k"), Status: idempotent.StatusInProgress, Fingerprint: req.Fingerprint,
				Owner: "holder", LeaseEnd: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)}
			existing, err := f.store.Store.Claim(context.Background(), idempotent.Claim{Record: holder, Now: t0, Takeover: true})
			require.NoError(t, err)
			require.Nil(t, existing)
			done := holder
			done.Status, done.Response = idempotent.StatusCompleted, []byte(`{"n":9,"label":""}`)
			f.eng = engineOn(&completeOnGet{mergedStore: f.store, rec: done}, &f.last, opts...)
			res, err := f.run(context.Background(), "k", "{}", 1)
			if !wait {
				require.ErrorIs(t, err, idempotent.ErrInProgress)
				assert.Zero(t, f.store.gets.Load())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, receipt{N: 9}, res.Value, "the holder's answer")
			assert.True(t, res.Replayed())
			assert.Equal(t, int32(1), f.store.gets.Load())
			assert.Equal(t, 1, f.last.Waits)
		})
	}
}

// completeOnGet completes rec before the first read, as a holder finishing while a request waits.
type completeOnGet struct {
	*mergedStore
	rec  idempotent.Record
	once atomic.Bool
}

func (s *completeOnGet) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	if s.once.CompareAndSwap(false, true) {
		if err := s.mergedStore.Store.Complete(ctx, s.rec, nil); err != nil {
			return nil, err
		}
	}
	return s.mergedStore.Get(ctx, id, now)
}

func TestMergedReplayFromLocalCache(t *testing.T) {
	f := newMergedFixture(idempotent.WithLocalCache(16, time.Minute))
	_, err := f.run(context.Background(), "k", "{}", 1)
	require.NoError(t, err)
	res, err := f.run(context.Background(), "k", "{}", 2)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, receipt{N: 1}, res.Value)
	assert.Equal(t, int32(1), f.store.calls(), "the duplicate is answered from the cache")
	assert.Equal(t, int32(1), f.runs.Load(), "and its handler does not run")
}

// TestRetryAfterFollowsRouteDurations: Retry-After is the route's moving average of execution times on this
// engine, rounded up to whole seconds, at least one second, at most what is left of the holder's lease.
func TestRetryAfterFollowsRouteDurations(t *testing.T) {
	tests := []struct {
		name      string
		durations []time.Duration // executions of the route before the duplicate
		route     string          // the duplicate's route; "" is the same
		want      time.Duration
	}{
		{name: "NoneYet", want: time.Second},
		{name: "Fast", durations: []time.Duration{200 * time.Millisecond}, want: time.Second},
		{name: "JustOverASecond", durations: []time.Duration{1100 * time.Millisecond}, want: 2 * time.Second},
		{name: "Slow", durations: []time.Duration{3200 * time.Millisecond}, want: 4 * time.Second},
		{name: "AverageWeighsTheNewestAQuarter", durations: []time.Duration{8 * time.Second, 0}, want: 6 * time.Second},
		{name: "LeaseIsTheCeiling", durations: []time.Duration{5 * time.Minute}, want: 50 * time.Second},
		{name: "OtherRoute", durations: []time.Duration{5 * time.Second}, route: "/other", want: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, idempotent.WithLease(time.Minute))
			for i, d := range tc.durations {
				_, err := idempotent.Run(context.Background(), f.eng, request(fmt.Sprint("done-", i), "{}"), idempotent.Spec[receipt]{},
					func(context.Context) (receipt, error) {
						f.clock.Advance(d)
						return receipt{}, nil
					})
				require.NoError(t, err)
			}
			req := request("k", "{}")
			if tc.route != "" {
				req.Scope.Route = tc.route
			}
			now := f.clock.Now()
			holder := idempotent.Record{ID: req.Scope.ID(req.Key), Status: idempotent.StatusInProgress, Fingerprint: req.Fingerprint,
				Owner: "running", LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
			_, err := f.mem.Claim(context.Background(), idempotent.Claim{Record: holder, Now: now, Takeover: true})
			require.NoError(t, err)
			f.clock.Advance(10 * time.Second)
			_, err = f.run(context.Background(), req, receipt{}, nil)
			var ip *idempotent.InProgressError
			require.ErrorAs(t, err, &ip)
			assert.Equal(t, tc.want, ip.RetryAfter)
		})
	}
}

// TestMergedWritesAgainWhenTheRecordMetIsClaimable: a record the store returned but which is claimable at the
// engine's instant (expired) does not block the key: the engine writes again.
func TestMergedWritesAgainWhenTheRecordMetIsClaimable(t *testing.T) {
	f := newMergedFixture()
	f.store.stale = func(n int32) *idempotent.Record {
		if n > 1 {
			return nil
		}
		return &idempotent.Record{ID: request("k", "{}").Scope.ID("k"), Status: idempotent.StatusCompleted,
			Fingerprint: "old", Owner: "old", ExpiresAt: t0.Add(-time.Second), Response: []byte(`{}`)}
	}
	res, err := f.run(context.Background(), "k", "{}", 1)
	require.NoError(t, err)
	assert.Equal(t, receipt{N: 1}, res.Value, "not a mismatch with the expired record")
	assert.Equal(t, int32(2), f.store.merged.Load())
	assert.True(t, f.last.Recorded)
}

// TestWaitDoesNotOutliveALease: a holder whose lease has ended is not waited for: under LeaseRefuse the answer is
// ErrOutcomeUnknown at once, under LeaseReRun the key is claimed.
func TestWaitDoesNotOutliveALease(t *testing.T) {
	for _, policy := range []idempotent.LeasePolicy{idempotent.LeaseRefuse, idempotent.LeaseReRun} {
		t.Run(policy.String(), func(t *testing.T) {
			f := newFixture(t, idempotent.WithWait(time.Second), idempotent.WithLeasePolicy(policy))
			crashedClaim(t, f, request("k", "{}"))
			f.clock.Advance(2 * time.Minute)
			_, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
			if policy == idempotent.LeaseRefuse {
				require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
				assert.Zero(t, f.runs.Load())
			} else {
				require.NoError(t, err)
				assert.Equal(t, int32(1), f.runs.Load())
			}
			assert.Zero(t, f.store.gets.Load(), "no read: nothing to wait for")
		})
	}
}

// releaseOnGet releases the holder's claim before the first read, as a holder whose handler failed.
type releaseOnGet struct {
	*memstore.Store
	holder idempotent.Record
	once   atomic.Bool
}

func (s *releaseOnGet) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	if s.once.CompareAndSwap(false, true) {
		if err := s.Store.Release(ctx, s.holder.ID, s.holder.Owner); err != nil {
			return nil, err
		}
	}
	return s.Store.Get(ctx, id, now)
}

// TestWaitThenClaimHasItsOwnAttempt: a claim after a wait that found the key released is not counted against the
// attempts the first claim used, so even WithMaxAttempts(1) runs the handler.
func TestWaitThenClaimHasItsOwnAttempt(t *testing.T) {
	req := request("k", "{}")
	holder := idempotent.Record{ID: req.Scope.ID("k"), Status: idempotent.StatusInProgress, Fingerprint: req.Fingerprint,
		Owner: "holder", LeaseEnd: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)}
	st := &releaseOnGet{Store: memstore.New(), holder: holder}
	_, err := st.Claim(context.Background(), idempotent.Claim{Record: holder, Now: t0, Takeover: true})
	require.NoError(t, err)
	var last idempotent.Event
	e := engineOn(st, &last, idempotent.WithMaxAttempts(1), idempotent.WithWait(time.Second))
	res, err := idempotent.Run(context.Background(), e, req, idempotent.Spec[receipt]{}, func(context.Context) (receipt, error) {
		return receipt{N: 7}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, receipt{N: 7}, res.Value)
	assert.Equal(t, idempotent.OutcomeExecuted, last.Outcome)
	assert.Equal(t, 1, last.Waits)
}
