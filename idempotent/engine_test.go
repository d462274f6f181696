package idempotent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/idemkit/idemkit/internal/testwait"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type receipt struct {
	N     int    `json:"n"`
	Label string `json:"label"`
}

// countingStore wraps a Store, counts calls and lets a test fail chosen operations.
type countingStore struct {
	idempotent.Store
	claims, completes, releases, gets atomic.Int32
	failClaim                         error
	failComplete                      func(attempt int32) error
	failRelease                       error
}

func (s *countingStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	s.claims.Add(1)
	if s.failClaim != nil {
		return nil, s.failClaim
	}
	return s.Store.Claim(ctx, c)
}

func (s *countingStore) Complete(ctx context.Context, r idempotent.Record, eff []idempotent.Effect) error {
	n := s.completes.Add(1)
	if s.failComplete != nil {
		if err := s.failComplete(n); err != nil {
			return err
		}
	}
	return s.Store.Complete(ctx, r, eff)
}

func (s *countingStore) Release(ctx context.Context, id, owner string) error {
	s.releases.Add(1)
	if s.failRelease != nil {
		return s.failRelease
	}
	return s.Store.Release(ctx, id, owner)
}

func (s *countingStore) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, id, now)
}

type fixture struct {
	clock *idempotenttest.Clock
	mem   *memstore.Store
	store *countingStore
	eng   *idempotent.Engine
	runs  atomic.Int32
}

func newFixture(t *testing.T, opts ...idempotent.Option) *fixture {
	t.Helper()
	f := &fixture{clock: idempotenttest.NewClock(t0), mem: memstore.New()}
	f.store = &countingStore{Store: f.mem}
	opts = append([]idempotent.Option{
		idempotent.WithClock(f.clock),
		idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))),
	}, opts...)
	f.eng = idempotent.New(f.store, opts...)
	return f
}

func request(key, payload string) idempotent.Request {
	return idempotent.Request{
		Key:         key,
		Scope:       idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/orders"},
		Fingerprint: idempotent.Fingerprint("POST", "/orders", []byte(payload)),
	}
}

func (f *fixture) run(ctx context.Context, req idempotent.Request, out receipt, err error) (idempotent.Result[receipt], error) {
	return idempotent.Run(ctx, f.eng, req, idempotent.Spec[receipt]{}, func(context.Context) (receipt, error) {
		f.runs.Add(1)
		return out, err
	})
}

func TestRunFirstRequestThenReplay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.run(ctx, request("k1", `{"a":1}`), receipt{N: 1, Label: "first"}, nil)
	require.NoError(t, err)
	assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
	assert.False(t, res.Replayed())

	// Same payload with other key order and whitespace: a duplicate, not a mismatch.
	res, err = f.run(ctx, request("k1", "{ \"a\" : 1 }"), receipt{N: 2, Label: "second"}, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, receipt{N: 1, Label: "first"}, res.Value, "the recorded result, not a new one")
	assert.Equal(t, int32(1), f.runs.Load())
	assert.Equal(t, int32(2), f.store.claims.Load())
	assert.Equal(t, int32(1), f.store.completes.Load())
}

func TestRunPayloadMismatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.run(ctx, request("k", `{"a":1}`), receipt{N: 1}, nil)
	require.NoError(t, err)
	res, err := f.run(ctx, request("k", `{"a":2}`), receipt{N: 2}, nil)
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Zero(t, res.Value, "the recorded response is not revealed")
	assert.Equal(t, int32(1), f.runs.Load())
}

func TestRunInProgress(t *testing.T) {
	for name, tc := range map[string]struct {
		ctx        func() (context.Context, context.CancelFunc)
		wantRetry  time.Duration
		wantLeased time.Duration
	}{
		"DefaultLeaseWithoutDeadline": {
			ctx:        func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantRetry:  time.Second, // no request of the route completed yet: the floor
			wantLeased: time.Minute,
		},
		"LeaseFromDeadline": {
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 30*time.Second)
			},
			wantRetry:  time.Second,
			wantLeased: 31 * time.Second,
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := tc.ctx()
			defer cancel()
			entered, release := make(chan struct{}), make(chan struct{})
			done := make(chan error)
			go func() {
				_, err := idempotent.Run(ctx, f.eng, request("k", "{}"), idempotent.Spec[receipt]{}, func(context.Context) (receipt, error) {
					close(entered)
					<-release
					return receipt{N: 1}, nil
				})
				done <- err
			}()
			testwait.Recv(t, entered, "the first invocation's handler to start")
			f.clock.Advance(10 * time.Second)
			_, err := f.run(context.Background(), request("k", "{}"), receipt{}, nil)
			var ip *idempotent.InProgressError
			require.ErrorAs(t, err, &ip)
			require.ErrorIs(t, err, idempotent.ErrInProgress)
			assert.InDelta(t, tc.wantRetry.Seconds(), ip.RetryAfter.Seconds(), 1)
			assert.GreaterOrEqual(t, ip.RetryAfter, time.Second)
			assert.InDelta(t, float64(tc.wantLeased), float64(ip.LeaseEnd.Sub(t0)), float64(time.Second))
			close(release)
			require.NoError(t, testwait.Recv(t, done, "the first invocation to end"))
			assert.Equal(t, int32(0), f.runs.Load(), "the duplicate never ran")
		})
	}
}

// crashedClaim leaves an INPROGRESS record behind, as an invocation killed mid-flight would.
func crashedClaim(t *testing.T, f *fixture, req idempotent.Request) {
	t.Helper()
	rec := idempotent.Record{
		ID: req.Scope.ID(req.Key), Status: idempotent.StatusInProgress, Fingerprint: req.Fingerprint,
		Owner: "dead", LeaseEnd: t0.Add(time.Minute), ExpiresAt: t0.Add(24 * time.Hour),
	}
	existing, err := f.mem.Claim(context.Background(), idempotent.Claim{Record: rec, Now: t0, Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing)
}

func TestLeaseExpiryPolicy(t *testing.T) {
	t.Run("ReRunByDefault", func(t *testing.T) {
		f := newFixture(t)
		req := request("k", "{}")
		crashedClaim(t, f, req)
		_, err := f.run(context.Background(), req, receipt{N: 1}, nil)
		require.ErrorIs(t, err, idempotent.ErrInProgress, "lease still running")
		f.clock.Advance(time.Minute)
		res, err := f.run(context.Background(), req, receipt{N: 1}, nil)
		require.NoError(t, err)
		assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome)
		assert.Equal(t, int32(1), f.runs.Load())
	})
	t.Run("Refuse", func(t *testing.T) {
		f := newFixture(t, idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
		req := request("k", "{}")
		crashedClaim(t, f, req)
		f.clock.Advance(time.Hour)
		_, err := f.run(context.Background(), req, receipt{N: 1}, nil)
		require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
		assert.Equal(t, int32(0), f.runs.Load())
		f.clock.Advance(24 * time.Hour) // retention over: the key is free again
		_, err = f.run(context.Background(), req, receipt{N: 1}, nil)
		require.NoError(t, err)
		assert.Equal(t, int32(1), f.runs.Load())
	})
}

func TestKeyPresence(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.run(ctx, request("", "{}"), receipt{}, nil)
	require.ErrorIs(t, err, idempotent.ErrMissingKey)

	optional := request("", "{}")
	optional.KeyOptional = true
	for range 2 {
		res, err := f.run(ctx, optional, receipt{N: 7}, nil)
		require.NoError(t, err)
		assert.Equal(t, idempotent.OutcomePassThrough, res.Outcome)
	}
	assert.Equal(t, int32(2), f.runs.Load(), "no key, no de-duplication")
	assert.Equal(t, int32(0), f.store.claims.Load())

	_, err = f.run(ctx, request("bad key", "{}"), receipt{}, nil)
	var ke *idempotent.KeyError
	require.ErrorAs(t, err, &ke)
	require.ErrorIs(t, err, idempotent.ErrInvalidKey)
	assert.Contains(t, ke.Reason, "position 4")
}

func TestHandlerErrorReleasesKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := f.run(ctx, request("k", "{}"), receipt{}, boom)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, int32(1), f.store.releases.Load())
	res, err := f.run(ctx, request("k", "{}"), receipt{N: 2}, nil)
	require.NoError(t, err)
	assert.Equal(t, idempotent.OutcomeExecuted, res.Outcome, "a retry after an error runs again")
	assert.Equal(t, int32(2), f.runs.Load())
}

func TestPanicReleasesKeyAndRepanics(t *testing.T) {
	f := newFixture(t)
	assert.PanicsWithValue(t, "kaboom", func() {
		_, _ = idempotent.Run(context.Background(), f.eng, request("k", "{}"), idempotent.Spec[receipt]{},
			func(context.Context) (receipt, error) { panic("kaboom") })
	})
	assert.Equal(t, int32(1), f.store.releases.Load())
	_, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), f.runs.Load())
}

func TestRecordPolicy(t *testing.T) {
	f := newFixture(t)
	spec := idempotent.Spec[receipt]{Record: func(r receipt) bool { return r.N != 400 }}
	call := func(n int) idempotent.Result[receipt] {
		res, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"), spec, func(context.Context) (receipt, error) {
			f.runs.Add(1)
			return receipt{N: n}, nil
		})
		require.NoError(t, err)
		return res
	}
	assert.Equal(t, 400, call(400).Value.N)
	assert.Equal(t, int32(1), f.store.releases.Load(), "unrecorded result releases the key")
	assert.Equal(t, 201, call(201).Value.N, "a corrected request may reuse the key")
	res := call(999)
	assert.True(t, res.Replayed())
	assert.Equal(t, 201, res.Value.N)
	assert.Equal(t, int32(2), f.runs.Load())
}

func TestRetention(t *testing.T) {
	f := newFixture(t, idempotent.WithRetention(time.Hour))
	ctx := context.Background()
	_, err := f.run(ctx, request("k", "{}"), receipt{N: 1}, nil)
	require.NoError(t, err)
	f.clock.Advance(59 * time.Minute)
	res, err := f.run(ctx, request("k", "{}"), receipt{N: 2}, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	f.clock.Advance(time.Minute)
	res, err = f.run(ctx, request("k", `{"other":true}`), receipt{N: 3}, nil)
	require.NoError(t, err, "an expired record counts as absent, even with another payload")
	assert.Equal(t, 3, res.Value.N)
}

func TestStaleInvocationIsFenced(t *testing.T) {
	f := newFixture(t)
	req := request("k", "{}")
	entered, release := make(chan struct{}), make(chan struct{})
	type outcome struct {
		res idempotent.Result[receipt]
		err error
	}
	staleDone := make(chan outcome)
	var events []idempotent.Event
	var mu sync.Mutex
	f.eng = idempotent.New(f.store, idempotent.WithClock(f.clock), idempotent.WithDisabled(false),
		idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		}))
	go func() {
		res, err := idempotent.Run(context.Background(), f.eng, req, idempotent.Spec[receipt]{}, func(context.Context) (receipt, error) {
			close(entered)
			<-release
			return receipt{N: 1, Label: "stale"}, nil
		})
		staleDone <- outcome{res, err}
	}()
	testwait.Recv(t, entered, "the stale handler to start")
	f.clock.Advance(2 * time.Minute) // the first invocation's lease has ended
	fresh, err := f.run(context.Background(), req, receipt{N: 2, Label: "fresh"}, nil)
	require.NoError(t, err)
	assert.Equal(t, idempotent.OutcomeExecuted, fresh.Outcome)

	close(release)
	stale := testwait.Recv(t, staleDone, "the stale invocation's result")
	require.NoError(t, stale.err, "the stale handler's own response is still true for its caller")
	assert.Equal(t, "stale", stale.res.Value.Label)

	res, err := f.run(context.Background(), req, receipt{N: 3}, nil)
	require.NoError(t, err)
	assert.Equal(t, "fresh", res.Value.Label, "the stale completion did not overwrite the newer record")

	mu.Lock()
	defer mu.Unlock()
	var fenced bool
	for _, ev := range events {
		if ev.StoreErr != nil && errors.Is(ev.StoreErr, idempotent.ErrFenced) {
			fenced = true
		}
	}
	assert.True(t, fenced, "the fenced completion is reported, not hidden")
}

func TestStoreFailures(t *testing.T) {
	down := errors.New("connection reset")
	t.Run("ClaimFailsClosed", func(t *testing.T) {
		f := newFixture(t)
		f.store.failClaim = down
		_, err := f.run(context.Background(), request("k", "{}"), receipt{}, nil)
		var se *idempotent.StoreError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "claim", se.Op)
		require.ErrorIs(t, err, down)
		assert.Equal(t, int32(0), f.runs.Load())
	})
	t.Run("CompleteRetriedThenSucceeds", func(t *testing.T) {
		f := newFixture(t)
		f.store.failComplete = func(n int32) error {
			if n < 3 {
				return down
			}
			return nil
		}
		_, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
		require.NoError(t, err)
		res, err := f.run(context.Background(), request("k", "{}"), receipt{N: 2}, nil)
		require.NoError(t, err)
		assert.True(t, res.Replayed())
		assert.Equal(t, int32(3), f.store.completes.Load())
	})
	t.Run("CompleteFailsKeyStaysClaimed", func(t *testing.T) {
		var last idempotent.Event
		f := newFixture(t, idempotent.WithCompletionTimeout(200*time.Millisecond),
			idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) { last = ev }))
		f.store.failComplete = func(int32) error { return down }
		res, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
		require.NoError(t, err, "the handler ran; its response is returned")
		assert.Equal(t, 1, res.Value.N)
		require.ErrorIs(t, last.StoreErr, down, "logged and counted")
		assert.Equal(t, int32(0), f.store.releases.Load(), "no release: that would invite a second execution")

		_, err = f.run(context.Background(), request("k", "{}"), receipt{N: 2}, nil)
		require.ErrorIs(t, err, idempotent.ErrInProgress)
		assert.Equal(t, int32(1), f.runs.Load())
	})
	t.Run("AmbiguousCompletionThatCommitted", func(t *testing.T) {
		f := newFixture(t)
		// The first attempt commits but its answer is lost; the retry meets the fence and the engine confirms,
		// by reading the record, that the completion is its own.
		f.store.Store = &commitThenLose{Store: f.mem}
		res, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, res.Value.N)
		assert.Equal(t, int32(2), f.store.completes.Load())
		assert.Equal(t, int32(1), f.store.gets.Load())
		res, err = f.run(context.Background(), request("k", "{}"), receipt{N: 2}, nil)
		require.NoError(t, err)
		assert.True(t, res.Replayed())
	})
}

// commitThenLose commits the first completion and then reports a transport error, as a lost response would.
type commitThenLose struct {
	*memstore.Store
	lost atomic.Bool
}

func (s *commitThenLose) Complete(ctx context.Context, r idempotent.Record, eff []idempotent.Effect) error {
	if err := s.Store.Complete(ctx, r, eff); err != nil {
		return err
	}
	if s.lost.CompareAndSwap(false, true) {
		return errors.New("read: connection reset by peer")
	}
	return nil
}

func TestEffects(t *testing.T) {
	f := newFixture(t)
	assert.False(t, idempotent.AddEffect(context.Background(), "x"), "outside an execution")
	_, err := idempotent.Run(context.Background(), f.eng, request("k", "{}"), idempotent.Spec[receipt]{}, func(ctx context.Context) (receipt, error) {
		inv, ok := idempotent.FromContext(ctx)
		require.True(t, ok)
		assert.Equal(t, request("k", "{}").Scope.ID("k"), inv.ID)
		assert.True(t, idempotent.AddEffect(ctx, "write"))
		return receipt{N: 1}, nil
	})
	require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect, "memstore cannot commit effects")
	var se *idempotent.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, int32(1), f.store.releases.Load(), "nothing committed: the key is freed")
}

func TestLocalCache(t *testing.T) {
	f := newFixture(t, idempotent.WithLocalCache(16, time.Minute))
	ctx := context.Background()
	_, err := f.run(ctx, request("k", "{}"), receipt{N: 1}, nil)
	require.NoError(t, err)
	claims := f.store.claims.Load()

	res, err := f.run(ctx, request("k", "{}"), receipt{N: 2}, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, 1, res.Value.N)
	_, err = f.run(ctx, request("k", `{"x":1}`), receipt{}, nil)
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, claims, f.store.claims.Load(), "served from the cache: no store call")

	f.clock.Advance(time.Minute) // cache entry expired: back to the store, which still replays
	res, err = f.run(ctx, request("k", "{}"), receipt{N: 3}, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, claims+1, f.store.claims.Load())

	// Hits do not extend an entry's time: the ttl bounds how stale a cached record can be.
	f.clock.Advance(50 * time.Second)
	_, err = f.run(ctx, request("k", "{}"), receipt{}, nil)
	require.NoError(t, err)
	assert.Equal(t, claims+1, f.store.claims.Load(), "a hit within the ttl")
	f.clock.Advance(10 * time.Second)
	_, err = f.run(ctx, request("k", "{}"), receipt{}, nil)
	require.NoError(t, err)
	assert.Equal(t, claims+2, f.store.claims.Load(), "a minute after the record was cached, though hit since")
}

func TestConcurrentDuplicatesRunOnce(t *testing.T) {
	f := newFixture(t)
	const n = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	var replayed, inProgress, executed atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := f.run(context.Background(), request("same", `{"a":1}`), receipt{N: 1}, nil)
			switch {
			case errors.Is(err, idempotent.ErrInProgress):
				inProgress.Add(1)
			case err != nil:
				t.Errorf("unexpected error: %v", err)
			case res.Replayed():
				replayed.Add(1)
			default:
				executed.Add(1)
			}
		}()
	}
	close(start)
	testwait.Group(t, &wg, "the concurrent duplicates")
	assert.Equal(t, int32(1), f.runs.Load())
	assert.Equal(t, int32(1), executed.Load())
	assert.Equal(t, int32(n-1), replayed.Load()+inProgress.Load())
}

func TestDisabled(t *testing.T) {
	t.Setenv(idempotent.DisableEnv, "true")
	eng := idempotent.New(nil)
	require.True(t, eng.Disabled())
	var runs int
	for range 2 {
		res, err := idempotent.Run(context.Background(), eng, request("k", "{}"), idempotent.Spec[int]{},
			func(context.Context) (int, error) { runs++; return runs, nil })
		require.NoError(t, err)
		assert.Equal(t, idempotent.OutcomePassThrough, res.Outcome)
	}
	assert.Equal(t, 2, runs)
	assert.False(t, idempotent.New(memstore.New(), idempotent.WithDisabled(false)).Disabled(), "option wins over env")
}

func TestMetricsAndLogs(t *testing.T) {
	var metrics, logs bytes.Buffer
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "debug")
	f := newFixture(t, idempotent.WithMetrics(&metrics, "idemkit", "payments"), idempotent.WithLogger(idempotent.NewLogger(&logs)))
	ctx := context.Background()
	_, err := f.run(ctx, request("k", "{}"), receipt{N: 1}, nil)
	require.NoError(t, err)
	_, err = f.run(ctx, request("k", "{}"), receipt{N: 1}, nil)
	require.NoError(t, err)

	lines := bytes.Split(bytes.TrimSpace(metrics.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	assert.JSONEq(t, fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"idemkit","Dimensions":[["Service"]],"Metrics":[{"Name":"replayed","Unit":"Count"}]}]},"Service":"payments","replayed":1,"level":"INFO","timestamp":%q}`,
		t0.UnixMilli(), t0.UTC().Format(time.RFC3339Nano)), string(lines[1]))

	var entry map[string]any
	first := bytes.SplitN(logs.Bytes(), []byte("\n"), 2)[0]
	require.NoError(t, json.Unmarshal(first, &entry))
	assert.Equal(t, "DEBUG", entry["level"])
	assert.Equal(t, "executed", entry["outcome"])
	assert.Contains(t, entry, "timestamp")
	assert.Contains(t, entry, "message")
	assert.NotContains(t, logs.String(), `"k"`, "the raw key is never logged")
}

// Lambda gives a JSON line without a valid level or timestamp the level INFO, so under ApplicationLogLevel WARN or
// stricter an EMF document without them is dropped and its metric lost. Each document carries the level that
// passes the function's filter (INFO unless the filter is stricter) and an RFC 3339 timestamp.
func TestMetricsPassLogLevelFilter(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "INFO"}, {"TRACE", "INFO"}, {"debug", "INFO"}, {"INFO", "INFO"}, {"WARN", "WARN"}, {"warning", "WARN"},
		{"error", "ERROR"}, {"FATAL", "FATAL"}, {"LOUD", "INFO"},
	} {
		t.Run("level="+tc.env, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_LOG_LEVEL", tc.env)
			var metrics bytes.Buffer
			f := newFixture(t, idempotent.WithMetrics(&metrics, "idemkit", ""))
			_, err := f.run(context.Background(), request("k", "{}"), receipt{N: 1}, nil)
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(metrics.Bytes(), &doc), "one JSON document: %s", metrics.String())
			assert.Equal(t, tc.want, doc["level"])
			ts, ok := doc["timestamp"].(string)
			require.True(t, ok, "timestamp is a string: %v", doc["timestamp"])
			parsed, err := time.Parse(time.RFC3339Nano, ts)
			require.NoError(t, err)
			assert.True(t, parsed.Equal(t0), "timestamp %s is the clock's time %s", ts, t0)
		})
	}
}

func TestStatusAndOutcomeStrings(t *testing.T) {
	for _, s := range []idempotent.Status{idempotent.StatusInProgress, idempotent.StatusCompleted} {
		got, err := idempotent.ParseStatus(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	_, err := idempotent.ParseStatus("DONE")
	require.Error(t, err)
	assert.Equal(t, "Status(9)", idempotent.Status(9).String())
	assert.Equal(t, "in_progress", idempotent.OutcomeInProgress.String())
	assert.Equal(t, "store_error", idempotent.OutcomeStoreError.String())
}

func TestResponseUnavailableIsNotAStoreFailure(t *testing.T) {
	var last idempotent.Event
	f := newFixture(t, idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) { last = ev }))
	f.store.failClaim = fmt.Errorf("store: response too large: %w", idempotent.ErrResponseUnavailable)
	_, err := f.run(context.Background(), request("k", "{}"), receipt{}, nil)
	require.ErrorIs(t, err, idempotent.ErrResponseUnavailable)
	var se *idempotent.StoreError
	assert.False(t, errors.As(err, &se), "a retry cannot help, so it must not look like an outage")
	assert.Equal(t, idempotent.OutcomeUnavailable, last.Outcome)
	assert.Equal(t, int32(0), f.runs.Load())
}
