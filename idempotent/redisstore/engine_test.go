package redisstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
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

// The engine-level helpers of the conformance package, under the names this package's tests use.
var (
	scope   = idempotenttest.Scope
	request = idempotenttest.Request
	handler = idempotenttest.Handler
)

type resp = idempotenttest.Resp

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

	// A duplicate's failed claim carries the record: one script call.
	idempotenttest.RunRoundTrips(t, engine, calls.take, idempotenttest.RoundTrips{
		First:        map[string]int{"EVALSHA": 2},
		Duplicate:    map[string]int{"EVALSHA": 1},
		Mismatch:     map[string]int{"EVALSHA": 1},
		InProgress:   map[string]int{"EVALSHA": 1},
		Completion:   map[string]int{"EVALSHA": 1},
		HandlerError: map[string]int{"EVALSHA": 2},
	}, func(t *testing.T, id string) {
		assert.Empty(t, rawRecord(t, store, id), "released")
	})

	// After SCRIPT FLUSH (as after a restart), the first call of a script costs one more round trip.
	runs.Store(0)
	require.NoError(t, redistest.Client(t).ScriptFlush(ctx).Err())
	calls.take()
	res, err := idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, resp{Status: 201, Body: "paid"}, res.Value)
	assert.Equal(t, map[string]int{"EVALSHA": 1, "EVAL": 1}, calls.take(), "duplicate after SCRIPT FLUSH")
	res, err = idempotent.Run(ctx, engine, request("k-1", `{"a":1}`), spec, handler(&runs, "again"))
	require.NoError(t, err)
	assert.True(t, res.Replayed())
	assert.Equal(t, map[string]int{"EVALSHA": 1}, calls.take(), "the script is cached again")
	assert.Zero(t, runs.Load())
}

// TestLocalCacheMakesNoCalls completes the round-trip counts: a duplicate that lands on the instance that recorded
// the response (or a mismatch) costs no call.
func TestLocalCacheMakesNoCalls(t *testing.T) {
	client, calls := countingClient(t)
	engine := idempotent.New(newStore(t, client), idempotent.WithLocalCache(16, time.Minute))
	idempotenttest.RunLocalCacheMakesNoCalls(t, engine, calls.take, nil)
}

// 64 goroutines send the same request at once, through one engine and through 8 engines with a client each (as 8
// Lambda instances would): exactly one execution, every other answer "in progress" while it runs.
func TestConcurrentDuplicatesOneExecution(t *testing.T) {
	for _, instances := range []int{1, 8} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			prefix := redistest.UniquePrefix(t)
			engines := make([]*idempotent.Engine, instances)
			for i := range engines {
				engines[i] = idempotent.New(redisstore.New(redistest.NewClient(t), func(o *redisstore.Options) { o.KeyPrefix = prefix }))
			}
			idempotenttest.RunConcurrentDuplicates(t, engines, "burst")
		})
	}
}

func TestExpiredRecordIsReclaimed(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	// A clock far from the server's: the engine's instants alone judge expiry, and the server's expiry is a
	// duration, so the record neither vanishes early nor outlives its retention in the engine's eyes. Whole
	// seconds: the expiration is kept in epoch seconds.
	for name, start := range map[string]time.Time{
		"past":   time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC),
		"now":    time.Now().Truncate(time.Second),
		"future": time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			idempotenttest.RunExpiredRecordIsReclaimed(t, store, "expiring-"+name, start, time.Second, func(t *testing.T, id string) {
				// The server has not expired the key (its own clock barely moved): the record is there and must
				// count as absent.
				require.NotEmpty(t, rawRecord(t, store, id))
			})
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

func TestEndedLease(t *testing.T) {
	store := newStore(t, redistest.Client(t))
	// Whole milliseconds: the lease is kept in epoch milliseconds.
	idempotenttest.RunEndedLease(t, store, time.Now().Truncate(time.Millisecond), time.Millisecond, func(t *testing.T, id string) any {
		return rawRecord(t, store, id)
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
		big := make([]byte, limit) // random: gzip cannot bring it (base64 in JSON) under the limit
		_, _ = rand.Read(big)
		idempotenttest.RunTooLargeNeverRunsTwice(t, idempotent.New(store), big, redisstore.ErrResponseTooLarge, func(t *testing.T, id string) {
			rec := rawRecord(t, store, id)
			assert.Equal(t, "COMPLETED", rec["status"])
			assert.Equal(t, redisstore.EncodingTooLarge, rec["data_encoding"])
			assert.NotContains(t, rec, "data")
		})

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
