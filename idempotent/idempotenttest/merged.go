package idempotenttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

// racers is how many goroutines the race cases send at one key.
const racers = 64

// runClaimCompleterTests holds a store's idempotent.ClaimCompleter to its contract: the claim merged into the
// completion (Spec.MergeClaim).
func runClaimCompleterTests(t *testing.T, newStore func(t *testing.T) idempotent.Store, base time.Time) {
	cc := func(t *testing.T) (idempotent.Store, idempotent.ClaimCompleter) {
		s := newStore(t)
		c, ok := s.(idempotent.ClaimCompleter)
		require.True(t, ok)
		return s, c
	}

	t.Run("AbsentWritesCompletedRecord", func(t *testing.T) {
		s, c := cc(t)
		ctx := context.Background()
		done := completed(inProgress(base), base, []byte(`{"status":201}`))
		existing, err := c.ClaimComplete(ctx, idempotent.Claim{Record: done, Now: base, Takeover: true}, nil)
		require.NoError(t, err)
		require.Nil(t, existing)
		got, err := s.Get(ctx, done.ID, base)
		require.NoError(t, err)
		assertRecord(t, done, got)

		// The claim path sees it as any completed record.
		again := inProgress(base)
		again.ID = done.ID
		existing, err = s.Claim(ctx, idempotent.Claim{Record: again, Now: base, Takeover: true})
		require.NoError(t, err)
		assertRecord(t, done, existing)
	})

	t.Run("LiveRecordIsReturnedAndNothingWritten", func(t *testing.T) {
		holders := map[string]func(t *testing.T, s idempotent.Store) idempotent.Record{
			"InProgress": func(t *testing.T, s idempotent.Store) idempotent.Record {
				rec := inProgress(base)
				mustClaim(t, s, rec, base)
				return rec
			},
			"Completed": func(t *testing.T, s idempotent.Store) idempotent.Record {
				rec := inProgress(base)
				mustClaim(t, s, rec, base)
				done := completed(rec, base, []byte("holder's"))
				require.NoError(t, s.Complete(context.Background(), done, nil))
				return done
			},
		}
		for name, hold := range holders {
			for _, takeover := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/takeover=%v", name, takeover), func(t *testing.T) {
					s, c := cc(t)
					ctx := context.Background()
					held := hold(t, s)
					mine := completed(inProgress(base), base, []byte("mine"))
					mine.ID = held.ID
					existing, err := c.ClaimComplete(ctx, idempotent.Claim{Record: mine, Now: base.Add(time.Second), Takeover: takeover}, nil)
					require.NoError(t, err)
					require.NotNil(t, existing, "a live record must block the merged write")
					assertRecord(t, held, existing)
					got, err := s.Get(ctx, held.ID, base)
					require.NoError(t, err)
					assertRecord(t, held, got)
				})
			}
		}
	})

	t.Run("EndedLeaseAndExpiryFreeTheKey", func(t *testing.T) {
		cases := []struct {
			name      string
			takeover  bool
			at        func(held idempotent.Record) time.Time
			wantFreed bool
		}{
			{"LeaseRunning", true, func(h idempotent.Record) time.Time { return h.LeaseEnd.Add(-time.Second) }, false},
			{"LeaseEndedWithTakeover", true, func(h idempotent.Record) time.Time { return h.LeaseEnd }, true},
			{"LeaseEndedWithoutTakeover", false, func(h idempotent.Record) time.Time { return h.LeaseEnd }, false},
			{"ExpiredWithoutTakeover", false, func(h idempotent.Record) time.Time { return h.ExpiresAt }, true},
			{"OneSecondBeforeExpiry", false, func(h idempotent.Record) time.Time { return h.ExpiresAt.Add(-time.Second) }, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, c := cc(t)
				ctx := context.Background()
				held := inProgress(base)
				mustClaim(t, s, held, base)
				now := tc.at(held)
				mine := completed(inProgress(now), now, []byte("mine"))
				mine.ID = held.ID
				existing, err := c.ClaimComplete(ctx, idempotent.Claim{Record: mine, Now: now, Takeover: tc.takeover}, nil)
				require.NoError(t, err)
				got, err := s.Get(ctx, held.ID, now)
				require.NoError(t, err)
				if tc.wantFreed {
					assert.Nil(t, existing)
					assertRecord(t, mine, got)
					return
				}
				assertRecord(t, held, existing)
				assertRecord(t, held, got)
			})
		}
	})

	t.Run("SameWriteAgainSucceeds", func(t *testing.T) {
		// A transport-level retry of a merged write whose first attempt was applied meets the record it wrote.
		s, c := cc(t)
		ctx := context.Background()
		done := completed(inProgress(base), base, []byte("r"))
		for i := range 2 {
			existing, err := c.ClaimComplete(ctx, idempotent.Claim{Record: done, Now: base, Takeover: true}, nil)
			require.NoError(t, err, "attempt %d", i)
			require.Nil(t, existing, "attempt %d: the record is this write's own", i)
		}
		got, err := s.Get(ctx, done.ID, base)
		require.NoError(t, err)
		assertRecord(t, done, got)
	})

	t.Run("UnsupportedEffectWritesNothing", func(t *testing.T) {
		s, c := cc(t)
		ctx := context.Background()
		type foreign struct{ X int }
		done := completed(inProgress(base), base, []byte("r"))
		_, err := c.ClaimComplete(ctx, idempotent.Claim{Record: done, Now: base, Takeover: true}, []idempotent.Effect{foreign{1}})
		require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
		got, err := s.Get(ctx, done.ID, base)
		require.NoError(t, err)
		assert.Nil(t, got)
	})

	t.Run("ConcurrentWritesHaveOneWinner", func(t *testing.T) {
		s, c := cc(t)
		id := newToken()
		fp := newToken()
		type result struct {
			mine     idempotent.Record
			existing *idempotent.Record
			err      error
		}
		results := make([]result, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				mine := completed(inProgress(base), base, []byte(fmt.Sprintf("answer %d", i)))
				mine.ID, mine.Fingerprint = id, fp
				for {
					existing, err := c.ClaimComplete(context.Background(), idempotent.Claim{Record: mine, Now: base, Takeover: true}, nil)
					if errors.Is(err, idempotent.ErrRecordChanged) {
						continue // a concurrent write; the engine tries again the same way
					}
					results[i] = result{mine, existing, err}
					return
				}
			}()
		}
		close(start)
		wg.Wait()
		var winner *idempotent.Record
		for i, r := range results {
			require.NoError(t, r.err, "writer %d", i)
			if r.existing == nil {
				require.Nil(t, winner, "two writers committed")
				winner = &results[i].mine
			}
		}
		require.NotNil(t, winner, "no writer committed")
		for i, r := range results {
			if r.existing != nil {
				assertRecord(t, *winner, r.existing)
				assert.Equal(t, winner.Owner, r.existing.Owner, "writer %d must see the winner's record", i)
			}
		}
		got, err := s.Get(context.Background(), id, base)
		require.NoError(t, err)
		assertRecord(t, *winner, got)
	})
}

// getHook runs fn before each Get, so a test can act as the holder of a key between a waiting request's reads.
type getHook struct {
	idempotent.Store
	fn func(id string)
}

func (h *getHook) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	h.fn(id)
	return h.Store.Get(ctx, id, now)
}

// waitCase is one request that meets a key held by a running first request.
type waitCase struct {
	engine *idempotent.Engine
	store  idempotent.Store
	held   idempotent.Record
	key    string
	clock  *Clock
	gets   *atomic.Int32
	mu     sync.Mutex
	events []idempotent.Event
}

// run sends the request with the holder's payload (or fingerprint fp when given) and counts the handler's runs.
func (w *waitCase) run(ctx context.Context, fp string) (res idempotent.Result[string], calls int, err error) {
	if fp == "" {
		fp = w.held.Fingerprint
	}
	req := idempotent.Request{Key: w.key, Scope: waitScope, Fingerprint: fp}
	res, err = idempotent.Run(ctx, w.engine, req, idempotent.Spec[string]{}, func(context.Context) (string, error) {
		calls++
		return "ran", nil
	})
	return res, calls, err
}

func (w *waitCase) lastEvent(t *testing.T) idempotent.Event {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotEmpty(t, w.events)
	return w.events[len(w.events)-1]
}

var waitScope = idempotent.Scope{Principal: "p", Method: "POST", Route: "/things"}

// waitBound is the wait bound of the wait cases.
const waitBound = 2 * time.Second

// newWaitCase claims a fresh key for a holder, as a running first request would (its lease ending 30 s after base
// unless lease says otherwise), and returns an engine that waits (WithWait(waitBound)) on a store that runs onGet
// before its n-th read (from 1) of that key.
func newWaitCase(t *testing.T, s idempotent.Store, base time.Time, onGet func(n int, w *waitCase), lease ...time.Duration) *waitCase {
	w := &waitCase{store: s, key: newToken(), clock: NewClock(base), gets: new(atomic.Int32)}
	w.held = inProgress(base)
	w.held.ID = waitScope.ID(w.key)
	if len(lease) > 0 {
		w.held.LeaseEnd = base.Add(lease[0])
	}
	mustClaim(t, s, w.held, base)
	hooked := &getHook{Store: s, fn: func(id string) {
		if id != w.held.ID {
			return
		}
		if n := int(w.gets.Add(1)); onGet != nil {
			onGet(n, w)
		}
	}}
	w.engine = idempotent.New(hooked, idempotent.WithClock(w.clock), idempotent.WithWait(waitBound),
		idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.events = append(w.events, ev)
		}))
	return w
}

// runWaitTests runs the engine's waiting (WithWait) on the store: the reads of a wait are the store's Gets.
func runWaitTests(t *testing.T, newStore func(t *testing.T) idempotent.Store, base time.Time) {
	t.Run("ReplaysTheHoldersAnswer", func(t *testing.T) {
		w := newWaitCase(t, newStore(t), base, func(n int, w *waitCase) {
			if n == 3 {
				require.NoError(t, w.store.Complete(context.Background(), completed(w.held, base, []byte(`"holder's"`)), nil))
			}
		})
		res, calls, err := w.run(context.Background(), "")
		require.NoError(t, err)
		assert.Equal(t, "holder's", res.Value)
		assert.True(t, res.Replayed())
		assert.Zero(t, calls, "the handler must not run")
		assert.Equal(t, int32(3), w.gets.Load(), "the wait ends at the read that finds the answer")
		assert.Equal(t, 3, w.lastEvent(t).Waits, "each read is counted")
		assert.True(t, w.clock.Now().After(base), "the pauses go through the engine's clock")
		assert.LessOrEqual(t, w.clock.Now().Sub(base), waitBound)
	})

	t.Run("BoundReachedIsInProgress", func(t *testing.T) {
		w := newWaitCase(t, newStore(t), base, nil)
		_, calls, err := w.run(context.Background(), "")
		var ip *idempotent.InProgressError
		require.ErrorAs(t, err, &ip)
		assert.Zero(t, calls)
		reads := int(w.gets.Load())
		assert.Greater(t, reads, 2, "a wait of %s reads more than twice", waitBound)
		assert.Equal(t, reads, w.lastEvent(t).Waits)
		waited := w.clock.Now().Sub(base)
		assert.LessOrEqual(t, waited, waitBound, "the wait never passes its bound")
		assert.Greater(t, waited, waitBound/2, "the wait uses most of its bound")
		assert.GreaterOrEqual(t, ip.RetryAfter, time.Second)
	})

	t.Run("ReleasedKeyIsClaimedAndRun", func(t *testing.T) {
		w := newWaitCase(t, newStore(t), base, func(n int, w *waitCase) {
			if n == 2 {
				require.NoError(t, w.store.Release(context.Background(), w.held.ID, w.held.Owner))
			}
		})
		res, calls, err := w.run(context.Background(), "")
		require.NoError(t, err)
		assert.Equal(t, "ran", res.Value)
		assert.False(t, res.Replayed())
		assert.Equal(t, 1, calls, "the holder let go: this request runs the handler")
		assert.Equal(t, int32(2), w.gets.Load())
	})

	t.Run("EndedLeaseIsClaimedAndRun", func(t *testing.T) {
		// The holder crashed: its lease ends one second into the wait, and the next read finds it claimable.
		w := newWaitCase(t, newStore(t), base, nil, time.Second)
		res, calls, err := w.run(context.Background(), "")
		require.NoError(t, err)
		assert.Equal(t, "ran", res.Value)
		assert.Equal(t, 1, calls, "the lease ended: this request runs the handler")
		assert.False(t, w.clock.Now().Before(w.held.LeaseEnd), "it ran only once the lease had ended")
		got, err := w.store.Get(context.Background(), w.held.ID, w.clock.Now())
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, idempotent.StatusCompleted, got.Status)
		assert.NotEqual(t, w.held.Owner, got.Owner, "the new claim's record")
	})

	t.Run("AnotherPayloadIsRefusedWithoutWaiting", func(t *testing.T) {
		w := newWaitCase(t, newStore(t), base, nil)
		_, calls, err := w.run(context.Background(), newToken())
		require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
		assert.Zero(t, calls)
		assert.Zero(t, w.gets.Load(), "a mismatch is known without reading")
	})

	t.Run("DeadlineLimitsTheWait", func(t *testing.T) {
		cases := []struct {
			name     string
			left     time.Duration
			wantRead bool
		}{
			{"TooCloseToWait", 50 * time.Millisecond, false},
			{"RoomForReads", time.Hour, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := newWaitCase(t, newStore(t), base, nil)
				ctx, cancel := context.WithTimeout(context.Background(), tc.left)
				defer cancel()
				_, _, err := w.run(ctx, "")
				require.ErrorIs(t, err, idempotent.ErrInProgress)
				assert.Equal(t, tc.wantRead, w.gets.Load() > 0, "reads made: %d", w.gets.Load())
			})
		}
	})
}

// runMergedRaceTest sends racers concurrent first requests with one key through the engine in merged mode: one
// answer is recorded and every request gets it.
func runMergedRaceTest(t *testing.T, newStore func(t *testing.T) idempotent.Store, base time.Time) {
	s := newStore(t)
	if _, ok := s.(idempotent.ClaimCompleter); !ok {
		return
	}
	e := idempotent.New(s, idempotent.WithClock(NewClock(base)), idempotent.WithWait(waitBound))
	req := idempotent.Request{Key: newToken(), Scope: waitScope, Fingerprint: newToken()}
	var ran atomic.Int32
	answers := make([]string, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := idempotent.Run(context.Background(), e, req, idempotent.Spec[string]{MergeClaim: true},
				func(context.Context) (string, error) {
					ran.Add(1)
					return fmt.Sprintf("answer %d", i), nil
				})
			answers[i], errs[i] = res.Value, err
		}()
	}
	close(start)
	wg.Wait()
	for i := range racers {
		require.NoError(t, errs[i], "request %d", i)
		assert.Equal(t, answers[0], answers[i], "request %d: every request gets the one recorded answer", i)
	}
	got, err := s.Get(context.Background(), req.Scope.ID(req.Key), base)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, `"`+answers[0]+`"`, string(got.Response))
	t.Logf("%d concurrent merged requests: the handler ran %d times, one answer recorded", racers, ran.Load())
}
