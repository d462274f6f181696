package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// effectStore is a memstore that accepts effects (opaque here: they "commit" with the record), so the engine's
// atomic-completion paths run without DynamoDB, and whose calls a test can fail.
type effectStore struct {
	*memstore.Store
	// complete decides the n-th completion: whether the record (with its effects) commits, and the error the
	// call then returns. Nil commits and succeeds.
	complete           func(s *effectStore, n int32, rec idempotent.Record) (commit bool, err error)
	releaseErr, getErr error

	completes, releases, gets atomic.Int32
}

func (s *effectStore) Complete(ctx context.Context, rec idempotent.Record, _ []idempotent.Effect) error {
	n := s.completes.Add(1)
	commit, err := true, error(nil)
	if s.complete != nil {
		commit, err = s.complete(s, n, rec)
	}
	if commit {
		if cerr := s.Store.Complete(ctx, rec, nil); cerr != nil {
			return cerr
		}
	}
	return err
}

func (s *effectStore) Release(ctx context.Context, id, owner string) error {
	s.releases.Add(1)
	if s.releaseErr != nil {
		return s.releaseErr
	}
	return s.Store.Release(ctx, id, owner)
}

func (s *effectStore) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	s.gets.Add(1)
	if s.getErr != nil {
		return nil, s.getErr
	}
	return s.Store.Get(ctx, id, now)
}

// engineOn returns an engine on store with a frozen clock, a short completion budget and a hook that keeps the
// last event.
func engineOn(store idempotent.Store, last *idempotent.Event, opts ...idempotent.Option) *idempotent.Engine {
	return idempotent.New(store, append([]idempotent.Option{
		idempotent.WithClock(idempotenttest.NewClock(t0)),
		idempotent.WithCompletionTimeout(100 * time.Millisecond),
		idempotent.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) { *last = ev }),
	}, opts...)...)
}

// withEffect runs a handler that adds one effect and returns receipt n.
func withEffect(ctx context.Context, e *idempotent.Engine, runs *atomic.Int32, n int) (idempotent.Result[receipt], error) {
	return idempotent.Run(ctx, e, request("k", "{}"), idempotent.Spec[receipt]{}, func(ctx context.Context) (receipt, error) {
		runs.Add(1)
		if !idempotent.AddEffect(ctx, "write") {
			return receipt{}, errors.New("not in an execution")
		}
		return receipt{N: n}, nil
	})
}

// TestAtomicCompletionFailure: when the completion with effects fails, the engine releases the claim and answers
// with a store error that it also logs and counts (Event.StoreErr), unless the fenced release and a read of the
// record show the transaction committed after all: then the handler's response is the answer.
func TestAtomicCompletionFailure(t *testing.T) {
	down := errors.New("connection reset by peer")
	lost := errors.New("read: connection reset by peer (answer lost)")
	unreachable := errors.New("i/o timeout")
	never := func(*effectStore, int32, idempotent.Record) (bool, error) { return false, down }
	commitThenUnreachable := func(_ *effectStore, n int32, _ idempotent.Record) (bool, error) {
		if n == 1 {
			return true, lost
		}
		return false, unreachable
	}

	tests := []struct {
		name       string
		complete   func(*effectStore, int32, idempotent.Record) (bool, error)
		releaseErr error
		getErr     error

		committed bool     // the first request answers the handler's response
		storeErr  []string // what the logged store error names; none when committed
		gets      int32    // reads of the record
		then      string   // the next request with the key: "runs", "replays" or "in progress"
	}{
		{name: "NothingCommitted", complete: never,
			storeErr: []string{"store complete: connection reset by peer"}, then: "runs"},
		{name: "NothingCommittedAndReleaseFails", complete: never, releaseErr: errors.New("release throttled"),
			storeErr: []string{"store complete: connection reset by peer", "store release: release throttled"}, then: "in progress"},
		{name: "CommittedThenAnswerLost", complete: commitThenUnreachable,
			committed: true, gets: 1, then: "replays"},
		{name: "CommittedButUnreadable", complete: commitThenUnreachable, getErr: errors.New("get throttled"),
			storeErr: []string{"store complete: i/o timeout", "store release", idempotent.ErrFenced.Error(), "store get: get throttled"},
			gets:     1, then: "replays"},
		{name: "RecordCompletedByAnotherInvocation",
			complete: func(s *effectStore, n int32, rec idempotent.Record) (bool, error) {
				if n == 1 {
					// Our lease ended, another invocation took the key over and completed it.
					ctx := context.Background()
					other := rec
					other.Status, other.Owner = idempotent.StatusInProgress, "another invocation"
					if err := s.Store.Release(ctx, rec.ID, rec.Owner); err != nil {
						return false, err
					}
					if _, err := s.Store.Claim(ctx, idempotent.Claim{Record: other, Now: t0}); err != nil {
						return false, err
					}
					other.Status = idempotent.StatusCompleted
					if err := s.Store.Complete(ctx, other, nil); err != nil {
						return false, err
					}
				}
				return false, down
			},
			storeErr: []string{"store complete: connection reset by peer", "store release", idempotent.ErrFenced.Error()},
			gets:     1, then: "replays"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &effectStore{Store: memstore.New(), complete: tc.complete, releaseErr: tc.releaseErr, getErr: tc.getErr}
			var last idempotent.Event
			e := engineOn(store, &last)
			var runs atomic.Int32
			ctx := context.Background()

			res, err := withEffect(ctx, e, &runs, 1)
			assert.Equal(t, idempotent.OutcomeExecuted, last.Outcome)
			assert.Equal(t, int32(1), store.releases.Load(), "the claim is released after a failed completion")
			assert.Equal(t, tc.gets, store.gets.Load(), "reads of the record")
			if tc.committed {
				require.NoError(t, err)
				assert.Equal(t, 1, res.Value.N, "the handler's response")
				assert.True(t, last.Recorded)
				assert.NoError(t, last.StoreErr, "nothing to log: the transaction committed")
			} else {
				var se *idempotent.StoreError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "complete", se.Op)
				assert.False(t, last.Recorded)
				require.Error(t, last.StoreErr, "logged at ERROR and counted as store_error")
				for _, s := range tc.storeErr {
					assert.Contains(t, last.StoreErr.Error(), s)
				}
			}

			store.complete, store.releaseErr, store.getErr = nil, nil, nil
			res, err = withEffect(ctx, e, &runs, 2)
			switch tc.then {
			case "runs":
				require.NoError(t, err)
				assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
				assert.Equal(t, int32(2), runs.Load())
			case "replays":
				require.NoError(t, err)
				assert.True(t, res.Replayed())
				assert.Equal(t, 1, res.Value.N)
				assert.Equal(t, int32(1), runs.Load())
			case "in progress":
				require.ErrorIs(t, err, idempotent.ErrInProgress)
				assert.Equal(t, int32(1), runs.Load())
			}
		})
	}
}

// TestPermanentCompletionFailureIsNotRetried: a completion error wrapping ErrPermanent ends the completion at
// once instead of being retried for the whole budget; a transient one is retried.
func TestPermanentCompletionFailureIsNotRetried(t *testing.T) {
	invalid := fmt.Errorf("store: ValidationException: item too large: %w", idempotent.ErrPermanent)
	throttled := errors.New("ThrottlingException")
	for _, tc := range []struct {
		name    string
		err     error
		effects bool
		retried bool
	}{
		{name: "Permanent", err: invalid},
		{name: "PermanentWithEffects", err: invalid, effects: true},
		{name: "Transient", err: throttled, retried: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &effectStore{Store: memstore.New(), complete: func(*effectStore, int32, idempotent.Record) (bool, error) {
				return false, tc.err
			}}
			var last idempotent.Event
			e := engineOn(store, &last)
			var runs atomic.Int32
			var err error
			if tc.effects {
				_, err = withEffect(context.Background(), e, &runs, 1)
				require.ErrorIs(t, err, tc.err, "with effects the request fails")
			} else {
				var res idempotent.Result[receipt]
				res, err = idempotent.Run(context.Background(), e, request("k", "{}"), idempotent.Spec[receipt]{}, func(context.Context) (receipt, error) {
					return receipt{N: 1}, nil
				})
				require.NoError(t, err, "the handler's response is returned")
				assert.Equal(t, 1, res.Value.N)
			}
			require.ErrorIs(t, last.StoreErr, tc.err, "logged and counted")
			if tc.retried {
				assert.Greater(t, store.completes.Load(), int32(1))
			} else {
				assert.Equal(t, int32(1), store.completes.Load(), "not retried")
			}
		})
	}
}

// lostClaimAnswer applies each claim and then applies it again, as an SDK retry after a lost answer does; only the
// retry's answer reaches the engine.
type lostClaimAnswer struct{ *memstore.Store }

func (s lostClaimAnswer) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if _, err := s.Store.Claim(ctx, c); err != nil {
		return nil, err
	}
	return s.Store.Claim(ctx, c)
}

// TestClaimAnswerLost: a claim retried under the engine after its first attempt was applied finds its own record,
// and the handler runs, under either lease policy.
func TestClaimAnswerLost(t *testing.T) {
	for _, policy := range []idempotent.LeasePolicy{idempotent.LeaseReRun, idempotent.LeaseRefuse} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			var last idempotent.Event
			e := engineOn(lostClaimAnswer{memstore.New()}, &last, idempotent.WithLeasePolicy(policy))
			runs := 0
			fn := func(context.Context) (receipt, error) { runs++; return receipt{N: runs}, nil }
			res, err := idempotent.Run(context.Background(), e, request("k", "{}"), idempotent.Spec[receipt]{}, fn)
			require.NoError(t, err)
			assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
			assert.True(t, last.Recorded)
			res, err = idempotent.Run(context.Background(), e, request("k", "{}"), idempotent.Spec[receipt]{}, fn)
			require.NoError(t, err)
			assert.True(t, res.Replayed())
			assert.Equal(t, 1, runs)
		})
	}
}
