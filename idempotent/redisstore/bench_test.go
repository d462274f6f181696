package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

// BenchmarkRedis is dynamostore's BenchmarkDynamoDB on redis-server: requests through the engine, fingerprint
// included, with calls/op counted by a go-redis hook and two baselines timed in the same iterations with the
// benchmark timer stopped:
//
//   - bare-ns/op and ratio-vs-bare: plain commands of a similar size, an HSET of the record for each call of a
//     first request and an HMGET for a duplicate;
//   - same-call-ns/op and ratio-vs-same-call: the very script calls the store makes (EVALSHA of the claim and
//     completion scripts, the duplicate's claim answering with the record), sent bare.
//
// What separates a request from the second baseline is the Go code of the engine and the store; what separates the
// second from the first is the server's cost of running the scripts.
func BenchmarkRedis(b *testing.B) {
	client, calls := countingClient(b)
	bare := redistest.NewClient(b)
	store := newStore(b, client)
	ctx := context.Background()
	if err := redisstore.LoadScripts(ctx, bare); err != nil {
		b.Fatal(err)
	}
	// Open the counting client's first connection, whose set-up commands (HELLO, CLIENT SETINFO) the hook sees.
	if err := client.Ping(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	fp, owner, data := idempotenttest.BenchFingerprint(), idempotenttest.BenchOwner, idempotenttest.BenchData(b)
	key := func(id string) string { return store.Key(id) }
	// hset writes a record shaped like the engine's, plainly.
	hset := func(b *testing.B, id string, status idempotent.Status) {
		now := time.Now()
		fields := []any{"status", status.String(), "expiration", now.Add(24 * time.Hour).Unix(), "validation", fp, "owner", owner}
		if status == idempotent.StatusInProgress {
			fields = append(fields, "in_progress_expiration", now.Add(time.Minute).UnixMilli())
		} else {
			fields = append(fields, "data", data)
		}
		if err := bare.HSet(ctx, key(id), fields...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	hmget := func(b *testing.B, id string) {
		vals, err := bare.HMGet(ctx, key(id), "status", "expiration", "in_progress_expiration", "validation", "owner", "data", "data_encoding").Result()
		if err != nil || vals[0] == nil {
			b.Fatalf("HMGET %s: %v %v", id, vals, err)
		}
	}
	// claimCall and completeCall send the store's scripts with the arguments it would.
	claimCall := func(b *testing.B, id string, wantRecord bool) {
		now := time.Now()
		res, err := bare.EvalSha(ctx, redisstore.ClaimSHA, []string{key(id)}, now.Unix(), now.UnixMilli(), "1", owner+"x", fp,
			now.Add(time.Minute).UnixMilli(), now.Add(24*time.Hour).Unix(), (24 * time.Hour).Milliseconds()).Result()
		if _, isRecord := res.([]any); err != nil || isRecord != wantRecord {
			b.Fatalf("claim script: %v %v", res, err)
		}
	}
	completeCall := func(b *testing.B, id string) {
		res, err := bare.EvalSha(ctx, redisstore.CompleteSHA, []string{key(id)}, owner+"x", time.Now().Add(24*time.Hour).Unix(), fp, data, "").Int64()
		if err != nil || res != 0 {
			b.Fatalf("complete script: %v %v", res, err)
		}
	}
	// A request meeting a record: an HMGET of it bare, the claim script answering with it as the store sends it.
	meeting := func(b *testing.B, id string) idempotenttest.Baseline {
		return idempotenttest.Baseline{Bare: func() { hmget(b, id) }, Same: func() { claimCall(b, id, true) }}
	}

	idempotenttest.RunEngineBench(b, idempotenttest.EngineBench{
		Store: store,
		Calls: calls.take,
		First: func(b *testing.B, k string) idempotenttest.Baseline {
			return idempotenttest.Baseline{
				Bare: func() {
					hset(b, "bare-"+k, idempotent.StatusInProgress)
					hset(b, "bare-"+k, idempotent.StatusCompleted)
				},
				Same: func() {
					claimCall(b, "same-"+k, false)
					completeCall(b, "same-"+k)
				},
			}
		},
		Duplicate:  meeting,
		InProgress: meeting,
		Mismatch:   meeting,
	})
}
