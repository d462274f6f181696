package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// eventLog records the events an engine reports to its outcome hook.
type eventLog struct {
	mu     sync.Mutex
	events []idempotent.Event
}

func (l *eventLog) hook(_ context.Context, ev idempotent.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) only(t *testing.T) idempotent.Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Len(t, l.events, 1)
	return l.events[0]
}

// claimHook is a memstore whose Claim a test can answer itself: when claim returns answered, its answer is used.
type claimHook struct {
	*memstore.Store
	claim func(c idempotent.Claim) (rec *idempotent.Record, answered bool, err error)
}

func (s *claimHook) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if rec, answered, err := s.claim(c); answered {
		return rec, err
	}
	return s.Store.Claim(ctx, c)
}

// TestRunOutcomeEvents: every way Run decides reaches the outcome hook with its outcome, and with the record ID
// once a valid key gave one.
func TestRunOutcomeEvents(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	scope := idempotent.Scope{Principal: "p", Method: "POST", Route: "/r"}
	const key = "key-1"
	holder := func(leaseEnd time.Time) idempotent.Record {
		return idempotent.Record{ID: scope.ID(key), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: "other",
			LeaseEnd: leaseEnd, ExpiresAt: base.Add(time.Hour)}
	}
	storeFails := errors.New("store down")
	tests := []struct {
		name     string
		req      idempotent.Request
		opts     []idempotent.Option
		nilStore bool
		held     *idempotent.Record // claimed by another request before Run
		claimErr error
		wantErr  error
		want     idempotent.Outcome
		wantID   bool
	}{
		{name: "Disabled", req: idempotent.Request{Key: key, Scope: scope}, nilStore: true,
			opts: []idempotent.Option{idempotent.WithDisabled(true)}, want: idempotent.OutcomePassThrough},
		{name: "OptionalKeyAbsent", req: idempotent.Request{KeyOptional: true, Scope: scope}, want: idempotent.OutcomePassThrough},
		{name: "MissingKey", req: idempotent.Request{Scope: scope}, wantErr: idempotent.ErrMissingKey, want: idempotent.OutcomeMissingKey},
		{name: "InvalidKey", req: idempotent.Request{Key: "a b", Scope: scope}, wantErr: idempotent.ErrInvalidKey, want: idempotent.OutcomeInvalidKey},
		{name: "ClaimFails", req: idempotent.Request{Key: key, Scope: scope, Fingerprint: "fp"}, claimErr: storeFails,
			wantErr: storeFails, want: idempotent.OutcomeStoreError, wantID: true},
		{name: "InProgress", req: idempotent.Request{Key: key, Scope: scope, Fingerprint: "fp"}, held: ptr(holder(base.Add(time.Minute))),
			wantErr: idempotent.ErrInProgress, want: idempotent.OutcomeInProgress, wantID: true},
		{name: "LeaseEndedRefuse", req: idempotent.Request{Key: key, Scope: scope, Fingerprint: "fp"}, held: ptr(holder(base.Add(-time.Second))),
			opts: []idempotent.Option{idempotent.WithLeasePolicy(idempotent.LeaseRefuse)}, wantErr: idempotent.ErrOutcomeUnknown,
			want: idempotent.OutcomeUnknown, wantID: true},
		{name: "Executed", req: idempotent.Request{Key: key, Scope: scope, Fingerprint: "fp"}, want: idempotent.OutcomeExecuted, wantID: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			opts := append([]idempotent.Option{idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithOutcomeHook(log.hook)}, tc.opts...)
			var store idempotent.Store
			if !tc.nilStore {
				mem := memstore.New()
				if tc.held != nil {
					_, err := mem.Claim(context.Background(), idempotent.Claim{Record: *tc.held, Now: base.Add(-time.Minute)})
					require.NoError(t, err)
				}
				store = &claimHook{Store: mem, claim: func(idempotent.Claim) (*idempotent.Record, bool, error) {
					return nil, tc.claimErr != nil, tc.claimErr
				}}
			}
			e := idempotent.New(store, opts...)
			ran := false
			_, err := idempotent.Run(context.Background(), e, tc.req, idempotent.Spec[string]{}, func(context.Context) (string, error) {
				ran = true
				return "ok", nil
			})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.False(t, ran)
			} else {
				require.NoError(t, err)
				assert.True(t, ran)
			}
			ev := log.only(t)
			assert.Equal(t, tc.want, ev.Outcome, "outcome %s", ev.Outcome)
			if tc.wantID {
				assert.Equal(t, scope.ID(key), ev.ID)
			} else {
				assert.Empty(t, ev.ID)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// tickingClock moves one second on every reading, so each reading the engine takes is told apart.
type tickingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// TestRunClaimAgainReadsTheClock: the first claim is made at the instant Run began; a claim repeated after the
// record changed reads the clock again, so its lease and expiry count from when it is made.
func TestRunClaimAgainReadsTheClock(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &tickingClock{t: base}
	var claims []time.Time
	store := &claimHook{Store: memstore.New(), claim: func(c idempotent.Claim) (*idempotent.Record, bool, error) {
		claims = append(claims, c.Now)
		if len(claims) == 1 {
			return nil, true, idempotent.ErrRecordChanged
		}
		return nil, false, nil
	}}
	e := idempotent.New(store, idempotent.WithClock(clk))
	_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	require.Len(t, claims, 2)
	assert.Equal(t, base.Add(time.Second), claims[0], "the first claim is made at Run's start, its first reading")
	assert.True(t, claims[1].After(claims[0]), "the second claim reads the clock again: %s, then %s", claims[0], claims[1])
}

// heldTwice answers the first claim with a running holder that has released the key by the first read, and the
// second claim with another running holder, whose record every later read returns.
type heldTwice struct {
	*memstore.Store
	holder        func(owner string) *idempotent.Record
	mu            sync.Mutex
	claims, reads int
}

func (s *heldTwice) Claim(context.Context, idempotent.Claim) (*idempotent.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	return s.holder(fmt.Sprint("holder-", s.claims)), nil
}

func (s *heldTwice) ClaimComplete(ctx context.Context, c idempotent.Claim, _ []idempotent.Effect) (*idempotent.Record, error) {
	return s.Claim(ctx, c)
}

func (s *heldTwice) Get(context.Context, string, time.Time) (*idempotent.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.reads == 1 {
		return nil, nil
	}
	return s.holder("holder-2"), nil
}

// TestRunWaitsOnce: a request waits for a running holder once; when the key it then claims is held again, it
// answers ErrInProgress at once instead of waiting a second time. Claim first and merged alike.
func TestRunWaitsOnce(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprint("merged=", merged), func(t *testing.T) {
			clk := idempotenttest.NewClock(base)
			store := &heldTwice{Store: memstore.New(), holder: func(owner string) *idempotent.Record {
				return &idempotent.Record{ID: "id", Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: owner,
					LeaseEnd: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}
			}}
			var log eventLog
			e := idempotent.New(store, idempotent.WithClock(clk), idempotent.WithWait(time.Second), idempotent.WithOutcomeHook(log.hook))
			_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
				idempotent.Spec[string]{MergeClaim: merged}, func(context.Context) (string, error) { return "ok", nil })
			require.ErrorIs(t, err, idempotent.ErrInProgress)
			assert.Equal(t, 2, store.claims)
			assert.Equal(t, 1, store.reads, "one wait, ended by the release")
			ev := log.only(t)
			assert.Equal(t, 1+btoi(merged), ev.Waits, "the reads, and in merged mode the repeated write")
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMergedNoWaitForOtherPayloads: a merged request that meets a running claim for another payload answers at
// once without reading the record again, even with waiting on.
func TestMergedNoWaitForOtherPayloads(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		held    idempotent.Record
		wantErr error
	}{
		{"OtherPayloadRunning", idempotent.Record{Status: idempotent.StatusInProgress, Fingerprint: "other", LeaseEnd: base.Add(time.Hour)},
			idempotent.ErrPayloadMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memstore.New()
			req := idempotent.Request{Key: "key-1", Fingerprint: "fp"}
			held := tc.held
			held.ID, held.Owner, held.ExpiresAt = req.Scope.ID(req.Key), "holder", base.Add(time.Hour)
			_, err := mem.Claim(context.Background(), idempotent.Claim{Record: held, Now: base})
			require.NoError(t, err)
			var log eventLog
			e := idempotent.New(mem, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(time.Second),
				idempotent.WithOutcomeHook(log.hook))
			res, err := idempotent.Run(context.Background(), e, req, idempotent.Spec[string]{MergeClaim: true},
				func(context.Context) (string, error) { return "mine", nil })
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, "recorded", res.Value)
			}
			assert.Zero(t, log.only(t).Waits)
		})
	}
}

// TestMergedResponseUnavailable: a merged request whose key completed without a kept response answers
// ErrResponseUnavailable and counts it as such.
func TestMergedResponseUnavailable(t *testing.T) {
	var log eventLog
	store := &unavailable{memstore.New()}
	e := idempotent.New(store, idempotent.WithOutcomeHook(log.hook))
	_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
		idempotent.Spec[string]{MergeClaim: true}, func(context.Context) (string, error) { return "ok", nil })
	require.ErrorIs(t, err, idempotent.ErrResponseUnavailable)
	assert.Equal(t, idempotent.OutcomeUnavailable, log.only(t).Outcome)
}

// unavailable is a memstore whose merged write meets a completed record without its response.
type unavailable struct{ *memstore.Store }

func (s *unavailable) ClaimComplete(context.Context, idempotent.Claim, []idempotent.Effect) (*idempotent.Record, error) {
	return nil, fmt.Errorf("response too large to keep: %w", idempotent.ErrResponseUnavailable)
}

// TestAddEffectAfterPanic: a handler that panics ends its execution, claim first or merged: an effect added
// afterwards through its context (by a goroutine it left behind) is refused, so the caller writes it itself
// rather than losing it.
func TestAddEffectAfterPanic(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprint("merged=", merged), func(t *testing.T) {
			e := idempotent.New(memstore.New(), idempotent.WithClock(idempotenttest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
			var hctx context.Context
			require.PanicsWithValue(t, "boom", func() {
				_, _ = idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
					idempotent.Spec[string]{MergeClaim: merged}, func(ctx context.Context) (string, error) {
						hctx = ctx
						require.True(t, idempotent.AddEffect(ctx, "before"))
						panic("boom")
					})
			})
			require.NotNil(t, hctx)
			assert.False(t, idempotent.AddEffect(hctx, "after"), "the execution has ended")
		})
	}
}

// TestHandlerErrorOutcome: a handler's error is returned unchanged and the request counts as executed, claim
// first or merged.
func TestHandlerErrorOutcome(t *testing.T) {
	handlerErr := errors.New("handler failed")
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprint("merged=", merged), func(t *testing.T) {
			var log eventLog
			e := idempotent.New(memstore.New(), idempotent.WithClock(idempotenttest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))),
				idempotent.WithOutcomeHook(log.hook))
			res, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
				idempotent.Spec[string]{MergeClaim: merged}, func(context.Context) (string, error) { return "partial", handlerErr })
			require.ErrorIs(t, err, handlerErr)
			assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
			ev := log.only(t)
			assert.Equal(t, idempotent.OutcomeExecuted, ev.Outcome, "outcome %s", ev.Outcome)
			assert.False(t, ev.Recorded)
		})
	}
}

// completeHook is a memstore whose Complete fails with err.
type completeHook struct {
	*memstore.Store
	err error
}

func (s *completeHook) Complete(context.Context, idempotent.Record, []idempotent.Effect) error {
	return s.err
}

// unencodable is a codec that cannot encode.
type unencodable struct{ idempotent.JSONCodec[string] }

func (unencodable) Encode(string) ([]byte, error) { return nil, errors.New("cannot encode") }

// TestRunReleasesUncommittedEffects: when a handler's effects cannot commit with a recorded response (the record
// policy declines the response, the response does not encode, or an effect's own condition fails), nothing was
// written, so the key is released for a retry to run the handler again, even for a single effect.
func TestRunReleasesUncommittedEffects(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	effectFailed := fmt.Errorf("condition of effect 0 failed: %w", idempotent.ErrEffectFailed)
	for _, tc := range []struct {
		name        string
		spec        idempotent.Spec[string]
		completeErr error
		want        error
		storeError  bool
	}{
		{name: "RecordPolicyDeclines", spec: idempotent.Spec[string]{Record: func(string) bool { return false }}, storeError: true},
		{name: "EncodeFails", spec: idempotent.Spec[string]{Codec: unencodable{}}, storeError: true},
		{name: "EffectFailed", completeErr: effectFailed, want: idempotent.ErrEffectFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memstore.New()
			store := idempotent.Store(mem)
			if tc.completeErr != nil {
				store = &completeHook{Store: mem, err: tc.completeErr}
			}
			e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)))
			req := idempotent.Request{Key: "key-1", Fingerprint: "fp"}
			_, err := idempotent.Run(context.Background(), e, req, tc.spec, func(ctx context.Context) (string, error) {
				require.True(t, idempotent.AddEffect(ctx, "write"))
				return "ok", nil
			})
			require.Error(t, err)
			if tc.storeError {
				var se *idempotent.StoreError
				assert.ErrorAs(t, err, &se)
			}
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			rec, err := mem.Get(context.Background(), req.Scope.ID(req.Key), base)
			require.NoError(t, err)
			assert.Nil(t, rec, "the key is released")
		})
	}
}

// lostAnswer is a memstore whose Complete commits but answers ErrFenced, as a transport retry of a committed write
// meets its own record.
type lostAnswer struct{ *memstore.Store }

func (s *lostAnswer) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if err := s.Store.Complete(ctx, rec, effects); err != nil {
		return err
	}
	return fmt.Errorf("conditional check failed: %w", idempotent.ErrFenced)
}

// TestRunCompletionCommittedDespiteFence: a completion answered with ErrFenced that did commit (the record is
// COMPLETED by this claim's owner) is a success: the response is recorded and no store failure is reported.
func TestRunCompletionCommittedDespiteFence(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var log eventLog
	e := idempotent.New(&lostAnswer{memstore.New()}, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithOutcomeHook(log.hook))
	res, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Value)
	ev := log.only(t)
	assert.NoError(t, ev.StoreErr)
	assert.True(t, ev.Recorded)
}

// TestLeaseEndPastDeadline: an invocation whose deadline has already passed claims with a lease of the margin
// alone, counted from the engine's clock: no time remains, and none is invented.
func TestLeaseEndPastDeadline(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	stop := errors.New("stop after the claim")
	var leaseEnd time.Time
	store := &claimHook{Store: memstore.New(), claim: func(c idempotent.Claim) (*idempotent.Record, bool, error) {
		leaseEnd = c.Record.LeaseEnd
		return nil, true, stop
	}}
	e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithLeaseMargin(3*time.Second))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Minute))
	defer cancel()
	_, err := idempotent.Run(ctx, e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	require.ErrorIs(t, err, stop)
	assert.Equal(t, base.Add(3*time.Second), leaseEnd)
}

// TestMergedLeasePolicy: a merged request that meets a claim whose lease has ended takes the key over under
// LeaseReRun (the default) and answers ErrOutcomeUnknown under LeaseRefuse, as a claim-first request does.
func TestMergedLeasePolicy(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		policy  idempotent.LeasePolicy
		wantErr error
	}{{idempotent.LeaseReRun, nil}, {idempotent.LeaseRefuse, idempotent.ErrOutcomeUnknown}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			mem := memstore.New()
			req := idempotent.Request{Key: "key-1", Fingerprint: "fp"}
			_, err := mem.Claim(context.Background(), idempotent.Claim{Now: base.Add(-time.Minute), Record: idempotent.Record{
				ID: req.Scope.ID(req.Key), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: "crashed",
				LeaseEnd: base.Add(-time.Second), ExpiresAt: base.Add(time.Hour)}})
			require.NoError(t, err)
			e := idempotent.New(mem, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithLeasePolicy(tc.policy))
			res, err := idempotent.Run(context.Background(), e, req, idempotent.Spec[string]{MergeClaim: true},
				func(context.Context) (string, error) { return "ok", nil })
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
			rec, err := mem.Get(context.Background(), req.Scope.ID(req.Key), base)
			require.NoError(t, err)
			require.NotNil(t, rec)
			assert.Equal(t, idempotent.StatusCompleted, rec.Status)
		})
	}
}

// TestMergedReplayFillsCache: a merged request that replays a completed record puts it in the local cache, so the
// next duplicate is answered without the store.
func TestMergedReplayFillsCache(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx := context.Background()
	mem := memstore.New()
	req := idempotent.Request{Key: "key-1", Fingerprint: "fp"}
	storeCompleted(t, mem, req.Scope.ID(req.Key), "fp", []byte(`"recorded"`), base)

	store := &countingMerged{Store: mem}
	e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithLocalCache(10, time.Minute))
	for i := range 2 {
		res, err := idempotent.Run(ctx, e, req, idempotent.Spec[string]{MergeClaim: true}, func(context.Context) (string, error) { return "mine", nil })
		require.NoError(t, err)
		assert.Equal(t, "recorded", res.Value, "request %d", i)
		assert.True(t, res.Replayed(), "request %d", i)
	}
	assert.Equal(t, 1, store.calls, "the second duplicate is answered from the cache")
}

// countingMerged counts merged writes.
type countingMerged struct {
	*memstore.Store
	calls int
}

func (s *countingMerged) ClaimComplete(ctx context.Context, c idempotent.Claim, effects []idempotent.Effect) (*idempotent.Record, error) {
	s.calls++
	return s.Store.ClaimComplete(ctx, c, effects)
}

// TestWaitKeepsReserve: a request whose deadline leaves less than the reserve (250 ms) to answer in does not
// wait at all: it answers ErrInProgress without reading the record.
func TestWaitKeepsReserve(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store := &heldTwice{Store: memstore.New(), holder: func(owner string) *idempotent.Record {
		return &idempotent.Record{ID: "id", Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: owner,
			LeaseEnd: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}
	}}
	e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := idempotent.Run(ctx, e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	require.ErrorIs(t, err, idempotent.ErrInProgress)
	assert.Zero(t, store.reads)
}

// stillRunning is a memstore whose key is held by a running claim that never ends.
type stillRunning struct {
	*memstore.Store
	holder idempotent.Record
	mu     sync.Mutex
	reads  int
}

func (s *stillRunning) Claim(context.Context, idempotent.Claim) (*idempotent.Record, error) {
	h := s.holder
	return &h, nil
}

func (s *stillRunning) Get(context.Context, string, time.Time) (*idempotent.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	h := s.holder
	return &h, nil
}

// TestWaitBound: a wait reads the record after each pause while the pauses planned so far fit the bound. The
// pauses start at 10-20 ms and double (each is d/2 to d), so a bound of 145 ms always fits three (at most 20 + 40
// + 80 = 140 ms) and never four (at least 10 + 20 + 40 + 80 = 150 ms).
func TestWaitBound(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for range 20 { // the pauses are random: the count must hold for every draw
		store := &stillRunning{Store: memstore.New(), holder: idempotent.Record{ID: "id", Status: idempotent.StatusInProgress,
			Fingerprint: "fp", Owner: "holder", LeaseEnd: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}}
		var log eventLog
		e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(145*time.Millisecond),
			idempotent.WithOutcomeHook(log.hook))
		_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
			func(context.Context) (string, error) { return "ok", nil })
		require.ErrorIs(t, err, idempotent.ErrInProgress)
		require.Equal(t, 3, store.reads)
		require.Equal(t, 3, log.only(t).Waits)
	}
}

// TestWaitSeesLeaseEnd: each read of a wait is judged at the clock's time after its pause: a holder whose lease
// ended meanwhile ends the wait at the first read, and under LeaseRefuse the answer is ErrOutcomeUnknown.
func TestWaitSeesLeaseEnd(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store := &stillRunning{Store: memstore.New(), holder: idempotent.Record{ID: "id", Status: idempotent.StatusInProgress,
		Fingerprint: "fp", Owner: "holder", LeaseEnd: base.Add(5 * time.Millisecond), ExpiresAt: base.Add(time.Hour)}}
	e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(time.Second),
		idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
	_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
	assert.Equal(t, 1, store.reads)
}

// renewedHolder answers the claim with a running holder and every read with the same holder whose lease has
// been renewed.
type renewedHolder struct {
	stillRunning
	claimed idempotent.Record
}

func (s *renewedHolder) Claim(context.Context, idempotent.Claim) (*idempotent.Record, error) {
	c := s.claimed
	return &c, nil
}

// TestWaitAnswersLatestRead: a wait that ends on its bound answers from the record as last read, not as first met.
func TestWaitAnswersLatestRead(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first := idempotent.Record{ID: "id", Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: "holder",
		LeaseEnd: base.Add(time.Minute), ExpiresAt: base.Add(2 * time.Hour)}
	renewed := first
	renewed.LeaseEnd = base.Add(time.Hour)
	store := &renewedHolder{stillRunning: stillRunning{Store: memstore.New(), holder: renewed}, claimed: first}
	e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(145*time.Millisecond))
	_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) { return "ok", nil })
	var ipe *idempotent.InProgressError
	require.ErrorAs(t, err, &ipe)
	assert.Equal(t, renewed.LeaseEnd, ipe.LeaseEnd)
	assert.Equal(t, 3, store.reads)
}
