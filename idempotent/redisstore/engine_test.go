package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
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

// waitFor receives from ch within a generous bound, failing the test with what it waited for.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestEngineRoundTrips(t *testing.T) {
	client, calls := countingClient(t)
	store := newStore(t, client)
	engine := idempotent.New(store)
	ctx := context.Background()
	var runs atomic.Int32
	spec := idempotent.Spec[resp]{}

	// Load the scripts into the server's cache (a fresh server answers the first EVALSHA of each with NOSCRIPT).
	_, err := idempotent.Run(ctx, engine, request("warm-up", `{}`), spec, handler(&runs, "warm"))
	require.NoError(t, err)
	_, err = idempotent.Run(ctx, engine, request("warm-up-release", `{}`), spec, func(context.Context) (resp, error) {
		return resp{}, errors.New("released")
	})
	require.Error(t, err)
	runs.Store(0)
	calls.take()

	// First request: claim + completion.
	res, err := idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "paid"))
	require.NoError(t, err)
	assert.False(t, res.Replayed())
	assert.Equal(t, map[string]int{"EVALSHA": 2}, calls.take(), "first request")

	// Duplicate: the failed claim carries the record.
	res, err = idempotent.Run(ctx, engine, request("k-1", `{ "a": 1 }`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{201, "paid"}, res.Value)
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "duplicate")

	// Mismatch.
	_, err = idempotent.Run(ctx, engine, request("k-1", `{"a":2}`), spec, handler(&runs, "other"))
	require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "mismatch")

	// In progress.
	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := idempotent.Run(ctx, engine, request("k-2", `{}`), spec, func(context.Context) (resp, error) {
			close(started)
			select {
			case <-finish:
			case <-time.After(30 * time.Second):
				return resp{}, errors.New("the test never let the first request finish")
			}
			return resp{Status: 200}, nil
		})
		done <- err
	}()
	waitFor(t, started, "the first request's handler")
	calls.take()
	_, err = idempotent.Run(ctx, engine, request("k-2", `{}`), spec, handler(&runs, "x"))
	var ip *idempotent.InProgressError
	require.ErrorAs(t, err, &ip)
	assert.GreaterOrEqual(t, ip.RetryAfter, time.Second)
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "in progress")
	close(finish)
	require.NoError(t, waitFor(t, done, "the first request"))
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "the first request's completion")

	// Handler error: claim + release.
	_, err = idempotent.Run(ctx, engine, request("k-3", `{}`), spec, func(context.Context) (resp, error) {
		return resp{}, errors.New("boom")
	})
	require.Error(t, err)
	assert.Equal(t, map[string]int{"EVALSHA": 2}, calls.take(), "handler error")
	assert.Empty(t, rawRecord(t, store, scope.ID("k-3")), "released")
	assert.Equal(t, int32(1), runs.Load())

	// After SCRIPT FLUSH (as after a restart), the first call of a script costs one more round trip.
	require.NoError(t, redistest.Client(t).ScriptFlush(ctx).Err())
	calls.take()
	res, err = idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, map[string]int{"EVALSHA": 1, "EVAL": 1}, calls.take(), "duplicate after SCRIPT FLUSH")
	res, err = idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "the script is cached again")
	assert.Equal(t, int32(1), runs.Load())
}

// TestLocalCacheMakesNoCalls completes the round-trip counts: a duplicate that lands on the instance that recorded
// the response costs no call.
func TestLocalCacheMakesNoCalls(t *testing.T) {
	client, calls := countingClient(t)
	engine := idempotent.New(newStore(t, client), idempotent.WithLocalCache(16, time.Minute))
	ctx := context.Background()
	var runs atomic.Int32
	_, err := idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), idempotent.Spec[resp]{}, handler(&runs, "paid"))
	require.NoError(t, err)
	calls.take()
	res, err := idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Empty(t, calls.take())
	assert.Equal(t, int32(1), runs.Load())
}

// 64 goroutines send the same request at once, through one engine and through 8 engines with a client each (as 8
// Lambda instances would): exactly one execution, every other answer a replay of it or "in progress".
func TestConcurrentDuplicatesOneExecution(t *testing.T) {
	const goroutines = 64
	for _, instances := range []int{1, 8} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			prefix := redistest.UniquePrefix(t)
			engines := make([]*idempotent.Engine, instances)
			for i := range engines {
				engines[i] = idempotent.New(redisstore.New(redistest.NewClient(t), func(o *redisstore.Options) { o.KeyPrefix = prefix }))
			}
			var runs, replayed, inProgress atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, goroutines+1)
			start := make(chan struct{})
			release := make(chan struct{})
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res, err := idempotent.Run(context.Background(), engines[g%instances], request("burst", `{"n":1}`), idempotent.Spec[resp]{},
						func(context.Context) (resp, error) {
							runs.Add(1)
							select { // the others meet the claim while the handler runs
							case <-release:
							case <-time.After(30 * time.Second):
								errs <- errors.New("the duplicates did not all answer within 30 s")
							}
							return resp{Status: 201, Body: "once"}, nil
						})
					switch {
					case errors.Is(err, idempotent.ErrInProgress):
						if inProgress.Add(1) == goroutines-1 {
							close(release)
						}
					case err != nil:
						errs <- err
					case res.Replayed():
						replayed.Add(1)
						if res.Value.Body != "once" {
							errs <- fmt.Errorf("replayed %q", res.Value.Body)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			assert.Equal(t, int32(1), runs.Load(), "executions")
			assert.Equal(t, int32(goroutines-1), inProgress.Load(), "every duplicate met the claim while the handler ran")
			assert.Zero(t, replayed.Load())

			res, err := idempotent.Run(context.Background(), engines[0], request("burst", `{"n":1}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
			require.NoError(t, err)
			assert.True(t, res.Replayed())
			assert.Equal(t, "once", res.Value.Body)
			assert.Equal(t, int32(1), runs.Load())
		})
	}
}

func TestExpiredRecordIsReclaimed(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	// A clock far from the server's: the engine's instants alone judge expiry, and the server's expiry is a
	// duration, so the record neither vanishes early nor outlives its retention in the engine's eyes.
	for name, start := range map[string]time.Time{
		"past":   time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC),
		"now":    time.Now(),
		"future": time.Now().Add(30 * 24 * time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			clock := idempotenttest.NewClock(start)
			engine := idempotent.New(store, idempotent.WithClock(clock), idempotent.WithRetention(time.Hour))
			ctx := context.Background()
			var runs atomic.Int32
			req := request("expiring-"+name, `{}`)

			_, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "first"))
			require.NoError(t, err)
			clock.Advance(time.Hour - time.Second)
			res, err := idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "second"))
			require.NoError(t, err)
			assert.True(t, res.Replayed(), "still retained")

			clock.Advance(2 * time.Second) // past the expiration, rounded up to whole seconds
			// The server has not expired the key (its own clock barely moved): the record is there and must
			// count as absent.
			require.NotEmpty(t, rawRecord(t, store, scope.ID(req.Key)))
			res, err = idempotent.Run(ctx, engine, req, idempotent.Spec[resp]{}, handler(&runs, "second"))
			require.NoError(t, err)
			assert.False(t, res.Replayed())
			assert.Equal(t, "second", res.Value.Body)
			assert.Equal(t, int32(2), runs.Load())
		})
	}
}

// The server's own expiry follows the record's retention: set by the claim, moved by the completion.
func TestServerExpiry(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	ctx := context.Background()
	rdb := redistest.Client(t)
	// Far from the server's clock on purpose: only durations reach the server.
	now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	rec := idempotent.Record{
		ID: scope.ID("ttl"), Fingerprint: "fp", Owner: "owner-1",
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
	}
	existing, err := store.Claim(ctx, idempotent.Claim{Record: rec, Now: now, Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing)
	ttl, err := rdb.PTTL(ctx, store.Key(rec.ID)).Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttl, time.Hour)
	assert.Greater(t, ttl, time.Hour-time.Minute, "about an hour left (the server's clock moved a little)")

	// Completed ten minutes later (engine time) with 24 h retention: the key's time to live grows by 24 h + 10 min
	// - 1 h.
	done := rec
	done.Status, done.Response = idempotent.StatusCompleted, []byte("r")
	done.ExpiresAt = now.Add(10 * time.Minute).Add(24 * time.Hour)
	require.NoError(t, store.Complete(ctx, done, nil))
	ttl, err = rdb.PTTL(ctx, store.Key(rec.ID)).Result()
	require.NoError(t, err)
	want := 24*time.Hour + 10*time.Minute
	assert.LessOrEqual(t, ttl, want)
	assert.Greater(t, ttl, want-time.Minute)

	// Sub-second instants round up: the server never deletes before the engine's expiry.
	odd := idempotent.Record{
		ID: scope.ID("ttl-odd"), Fingerprint: "fp", Owner: "owner-2",
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour + 300*time.Millisecond),
	}
	_, err = store.Claim(ctx, idempotent.Claim{Record: odd, Now: now.Add(700 * time.Millisecond), Takeover: true})
	require.NoError(t, err)
	ttl, err = rdb.PTTL(ctx, store.Key(odd.ID)).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Hour-400*time.Millisecond-time.Minute)
	assert.LessOrEqual(t, ttl, time.Hour+300*time.Millisecond)
	assert.Equal(t, strconv.FormatInt(now.Add(time.Hour).Unix()+1, 10), rawRecord(t, store, odd.ID)["expiration"], "rounded up")

	// A key an operator made persistent stays so: the completion moves no expiry it cannot see.
	kept := idempotent.Record{ID: scope.ID("ttl-kept"), Fingerprint: "fp", Owner: "owner-3", LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	_, err = store.Claim(ctx, idempotent.Claim{Record: kept, Now: now, Takeover: true})
	require.NoError(t, err)
	require.NoError(t, rdb.Persist(ctx, store.Key(kept.ID)).Err())
	kept.Status, kept.Response, kept.ExpiresAt = idempotent.StatusCompleted, []byte("r"), now.Add(2*time.Hour)
	require.NoError(t, store.Complete(ctx, kept, nil))
	ttl, err = rdb.PTTL(ctx, store.Key(kept.ID)).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "no expiry")
}

// crashedClaim leaves an INPROGRESS record as an invocation that died after claiming would.
func crashedClaim(t *testing.T, store *redisstore.Store, key string, now time.Time, lease time.Duration) idempotent.Record {
	t.Helper()
	rec := idempotent.Record{
		ID: scope.ID(key), Status: idempotent.StatusInProgress, Fingerprint: request(key, `{}`).Fingerprint,
		Owner: "crashed-owner", LeaseEnd: now.Add(lease), ExpiresAt: now.Add(24 * time.Hour),
	}
	existing, err := store.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now})
	require.NoError(t, err)
	require.Nil(t, existing)
	return rec
}

func TestEndedLease(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	ctx := context.Background()
	start := time.Now().Truncate(time.Millisecond)

	t.Run("ReRunTakesOver", func(t *testing.T) {
		stale := crashedClaim(t, store, "lease-rerun", start, 30*time.Second)
		clock := idempotenttest.NewClock(start.Add(30*time.Second - time.Millisecond))
		engine := idempotent.New(store, idempotent.WithClock(clock))
		var runs atomic.Int32
		_, err := idempotent.Run(ctx, engine, request("lease-rerun", `{}`), idempotent.Spec[resp]{}, handler(&runs, "x"))
		require.ErrorIs(t, err, idempotent.ErrInProgress, "lease ends in a millisecond")

		clock.Set(start.Add(30 * time.Second))
		res, err := idempotent.Run(ctx, engine, request("lease-rerun", `{}`), idempotent.Spec[resp]{}, handler(&runs, "taken over"))
		require.NoError(t, err)
		assert.False(t, res.Replayed())
		assert.Equal(t, int32(1), runs.Load())

		// Fencing: the crashed invocation wakes up; it can neither complete nor release the new record.
		before := rawRecord(t, store, stale.ID)
		done := stale
		done.Status, done.Response = idempotent.StatusCompleted, []byte(`"stale"`)
		require.ErrorIs(t, store.Complete(ctx, done, nil), idempotent.ErrFenced)
		require.ErrorIs(t, store.Release(ctx, stale.ID, stale.Owner), idempotent.ErrFenced)
		assert.Equal(t, before, rawRecord(t, store, stale.ID), "a fenced write changes nothing")
	})

	t.Run("RefuseKeepsKey", func(t *testing.T) {
		crashedClaim(t, store, "lease-refuse", start, 30*time.Second)
		clock := idempotenttest.NewClock(start.Add(time.Minute))
		engine := idempotent.New(store, idempotent.WithClock(clock), idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
		var runs atomic.Int32
		_, err := idempotent.Run(ctx, engine, request("lease-refuse", `{}`), idempotent.Spec[resp]{}, handler(&runs, "x"))
		require.ErrorIs(t, err, idempotent.ErrOutcomeUnknown)
		assert.Zero(t, runs.Load())
	})
}

func TestStoredFields(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	engine := idempotent.New(store, idempotent.WithLease(45*time.Second))
	ctx := context.Background()
	const rawKey = "raw-client-key-4a1f"
	id := scope.ID(rawKey)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), id)
	assert.True(t, strings.HasPrefix(store.Key(id), store.Options().KeyPrefix))
	assert.True(t, strings.HasSuffix(store.Key(id), id))

	var inProgress map[string]string
	before := time.Now()
	_, err := idempotent.Run(ctx, engine, request(rawKey, `{"amount":1}`), idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
		inProgress = rawRecord(t, store, id)
		return resp{Status: 201, Body: "ok"}, nil
	})
	require.NoError(t, err)
	after := time.Now()

	require.NotNil(t, inProgress)
	assert.Equal(t, "INPROGRESS", inProgress["status"])
	lease, err := strconv.ParseInt(inProgress["in_progress_expiration"], 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, lease, before.Add(45*time.Second).UnixMilli(), "lease in epoch milliseconds")
	assert.LessOrEqual(t, lease, after.Add(45*time.Second).UnixMilli()+1)
	assert.NotContains(t, inProgress, "data")
	assertNoRawKey(t, inProgress, rawKey)

	done := rawRecord(t, store, id)
	assert.Equal(t, "COMPLETED", done["status"])
	exp, err := strconv.ParseInt(done["expiration"], 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, exp, before.Add(24*time.Hour).Unix(), "expiration in epoch seconds")
	assert.LessOrEqual(t, exp, after.Add(24*time.Hour).Unix()+1)
	assert.NotContains(t, done, "in_progress_expiration")
	assert.Equal(t, request(rawKey, `{"amount":1}`).Fingerprint, done["validation"])
	assert.Equal(t, inProgress["owner"], done["owner"], "the owner stays on the completed record")
	assert.JSONEq(t, `{"status":201,"body":"ok"}`, done["data"])
	assert.NotContains(t, done, "data_encoding")
	assertNoRawKey(t, done, rawKey)
	assert.Len(t, done, 5, "status, expiration, validation, owner, data: %v", done)
}

func assertNoRawKey(t *testing.T, fields map[string]string, rawKey string) {
	t.Helper()
	for name, v := range fields {
		assert.NotContains(t, v, rawKey, "field %s holds the raw key", name)
	}
}

func TestLargeResponses(t *testing.T) {
	ctx := context.Background()

	t.Run("CompressedRoundTrip", func(t *testing.T) {
		store := newStore(t, redistest.Client(t))
		engine := idempotent.New(store)
		var runs atomic.Int32
		body := strings.Repeat(`{"line":"a fairly repetitive JSON document"},`, 20000) // ~900 KB, compresses well
		res, err := idempotent.Run(ctx, engine, request("big-json", `{}`), idempotent.Spec[resp]{}, handler(&runs, body))
		require.NoError(t, err)
		require.Equal(t, body, res.Value.Body)
		rec := rawRecord(t, store, scope.ID("big-json"))
		assert.Equal(t, redisstore.EncodingGzip, rec["data_encoding"])
		assert.Less(t, len(rec["data"]), 64<<10)

		res, err = idempotent.Run(ctx, engine, request("big-json", `{}`), idempotent.Spec[resp]{}, handler(&runs, "other"))
		require.NoError(t, err)
		assert.True(t, res.Replayed())
		assert.Equal(t, body, res.Value.Body, "replayed byte for byte")
	})

	t.Run("CompressionKeptOnlyWhenSmaller", func(t *testing.T) {
		store := newStore(t, redistest.Client(t))
		random := make([]byte, 8<<10) // above the threshold, incompressible
		_, _ = rand.Read(random)
		for name, c := range map[string]struct {
			body []byte
			enc  string
		}{
			"below threshold": {[]byte(strings.Repeat("a", redisstore.DefaultCompressThreshold-1)), ""},
			"at threshold":    {[]byte(strings.Repeat("a", redisstore.DefaultCompressThreshold)), redisstore.EncodingGzip},
			"incompressible":  {random, ""},
		} {
			t.Run(name, func(t *testing.T) {
				rec := claimed(t, store, name)
				rec.Status, rec.Response = idempotent.StatusCompleted, c.body
				require.NoError(t, store.Complete(ctx, rec, nil))
				assert.Equal(t, c.enc, rawRecord(t, store, rec.ID)["data_encoding"])
				got, err := store.Get(ctx, rec.ID, time.Now())
				require.NoError(t, err)
				assert.True(t, string(c.body) == string(got.Response), "response bytes changed")
			})
		}
	})

	t.Run("TooLargeNeverRunsTwice", func(t *testing.T) {
		const limit = 64 << 10
		store := newStore(t, redistest.Client(t), func(o *redisstore.Options) { o.MaxDataSize = limit })
		assert.Equal(t, limit, store.Options().MaxDataSize)
		engine := idempotent.New(store)
		var runs atomic.Int32
		big := make([]byte, limit) // random: gzip cannot bring it (base64 in JSON) under the limit
		_, _ = rand.Read(big)
		first, err := idempotent.Run(ctx, engine, request("huge", `{}`), idempotent.Spec[[]byte]{}, func(context.Context) ([]byte, error) {
			runs.Add(1)
			return big, nil
		})
		require.NoError(t, err, "the first caller gets the handler's response")
		assert.Equal(t, big, first.Value)
		rec := rawRecord(t, store, scope.ID("huge"))
		assert.Equal(t, "COMPLETED", rec["status"])
		assert.Equal(t, redisstore.EncodingTooLarge, rec["data_encoding"])
		assert.NotContains(t, rec, "data")

		_, err = idempotent.Run(ctx, engine, request("huge", `{}`), idempotent.Spec[[]byte]{}, func(context.Context) ([]byte, error) {
			runs.Add(1)
			return nil, nil
		})
		require.ErrorIs(t, err, redisstore.ErrResponseTooLarge)
		require.ErrorIs(t, err, idempotent.ErrResponseUnavailable)
		var se *idempotent.StoreError
		require.False(t, errors.As(err, &se), "not a store failure: retrying cannot help")
		_, err = idempotent.Run(ctx, engine, request("huge", `{"other":1}`), idempotent.Spec[[]byte]{}, func(context.Context) ([]byte, error) {
			runs.Add(1)
			return nil, nil
		})
		require.ErrorIs(t, err, idempotent.ErrPayloadMismatch)
		assert.Equal(t, int32(1), runs.Load(), "the handler ran once")

		got, err := store.Get(ctx, scope.ID("huge"), time.Now())
		require.NoError(t, err)
		assert.Equal(t, idempotent.StatusCompleted, got.Status)
		assert.Nil(t, got.Response)
	})

	t.Run("AtTheLimitIsStored", func(t *testing.T) {
		store := newStore(t, redistest.Client(t), func(o *redisstore.Options) { o.MaxDataSize = 100; o.CompressThreshold = -1 })
		for size, enc := range map[int]string{100: "", 101: redisstore.EncodingTooLarge} {
			rec := claimed(t, store, strconv.Itoa(size))
			rec.Status, rec.Response = idempotent.StatusCompleted, []byte(strings.Repeat("x", size))
			require.NoError(t, store.Complete(ctx, rec, nil))
			assert.Equal(t, enc, rawRecord(t, store, rec.ID)["data_encoding"], "%d bytes", size)
		}
	})
}

// claimed claims a fresh record for key at the current time.
func claimed(t *testing.T, store *redisstore.Store, key string) idempotent.Record {
	t.Helper()
	now := time.Now()
	rec := idempotent.Record{
		ID: scope.ID(key), Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: rand.Text(),
		LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
	}
	existing, err := store.Claim(context.Background(), idempotent.Claim{Record: rec, Now: now, Takeover: true})
	require.NoError(t, err)
	require.Nil(t, existing)
	return rec
}

// A completion retried after it was applied (its answer lost) succeeds and changes nothing; another completion by
// the same owner (different data) is fenced.
func TestCompletionRetry(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	ctx := context.Background()
	rec := claimed(t, store, "retry")
	done := rec
	done.Status, done.Response = idempotent.StatusCompleted, []byte(`"ok"`)
	require.NoError(t, store.Complete(ctx, done, nil))
	before := rawRecord(t, store, rec.ID)
	require.NoError(t, store.Complete(ctx, done, nil), "a retry of the applied completion")
	assert.Equal(t, before, rawRecord(t, store, rec.ID))

	for name, c := range map[string]struct {
		edit   func(*idempotent.Record)
		reason string
	}{
		"other response":    {func(r *idempotent.Record) { r.Response = []byte(`"other"`) }, "record is COMPLETED"},
		"other expiry":      {func(r *idempotent.Record) { r.ExpiresAt = r.ExpiresAt.Add(time.Hour) }, "record is COMPLETED"},
		"other fingerprint": {func(r *idempotent.Record) { r.Fingerprint = "other" }, "record is COMPLETED"},
		"other owner":       {func(r *idempotent.Record) { r.Owner = "someone-else" }, "record is COMPLETED"},
		"absent":            {func(r *idempotent.Record) { r.ID = scope.ID("never-claimed") }, "record absent"},
	} {
		t.Run(name, func(t *testing.T) {
			other := done
			c.edit(&other)
			err := store.Complete(ctx, other, nil)
			require.ErrorIs(t, err, idempotent.ErrFenced)
			assert.Contains(t, err.Error(), c.reason)
			assert.Equal(t, before, rawRecord(t, store, rec.ID))
		})
	}

	t.Run("held by another invocation", func(t *testing.T) {
		held := claimed(t, store, "held")
		stale := held
		stale.Owner, stale.Status, stale.Response = "stale", idempotent.StatusCompleted, []byte("x")
		err := store.Complete(ctx, stale, nil)
		require.ErrorIs(t, err, idempotent.ErrFenced)
		assert.Contains(t, err.Error(), "record held by another invocation")
		err = store.Release(ctx, held.ID, "stale")
		require.ErrorIs(t, err, idempotent.ErrFenced)
		assert.Contains(t, err.Error(), "record held by another invocation")
		err = store.Release(ctx, rec.ID, rec.Owner)
		require.ErrorIs(t, err, idempotent.ErrFenced)
		assert.Contains(t, err.Error(), "record is COMPLETED")
	})
}

func TestEffectsAreRefused(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	engine := idempotent.New(store)
	var runs atomic.Int32
	_, err := idempotent.Run(context.Background(), engine, request("effect", `{}`), idempotent.Spec[resp]{}, func(ctx context.Context) (resp, error) {
		runs.Add(1)
		require.True(t, idempotent.AddEffect(ctx, "SET order:1 paid"))
		return resp{Status: 201}, nil
	})
	require.ErrorIs(t, err, idempotent.ErrUnsupportedEffect)
	assert.Contains(t, err.Error(), "string")
	assert.Empty(t, rawRecord(t, store, scope.ID("effect")), "nothing written; the key is released")
	assert.Equal(t, int32(1), runs.Load())
}
