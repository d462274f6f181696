package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

// replyError is an error reply as go-redis types it (it has the RedisError marker method), for the replies a
// test server cannot be brought to give on demand.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

var _ redis.Error = replyError("")

func TestPermanentClassifiesReplies(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{replyError("LOADING Redis is loading the dataset in memory"), false},
		{replyError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."), false},
		{replyError("READONLY You can't write against a read only replica."), false},
		{replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), false},
		{replyError("CLUSTERDOWN The cluster is down"), false},
		{replyError("TRYAGAIN Multiple keys request during rehashing of slot"), false},
		{replyError("NOREPLICAS Not enough good replicas to write."), false},
		{replyError("MOVED 3999 127.0.0.1:6381"), false},
		{replyError("ASK 3999 127.0.0.1:6381"), false},
		{replyError("OOM command not allowed when used memory > 'maxmemory'."), false},
		{replyError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."), false},
		{replyError("ERR max number of clients reached"), false},
		{replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), true},
		{replyError("NOPERM User app has no permissions to run the 'evalsha' command"), true},
		{replyError("WRONGPASS invalid username-password pair or user is disabled."), true},
		{replyError("NOAUTH Authentication required."), true},
		{replyError("ERR unknown command 'EVALSHA', with args beginning with: "), true},
		{replyError("ERR user_script:3: attempt to compare nil with number script: 1a2b"), true},
		{fmt.Errorf("wrapped: %w", replyError("WRONGTYPE Operation against a key holding the wrong kind of value")), true},
		{fmt.Errorf("wrapped: %w", replyError("LOADING Redis is loading the dataset in memory")), false},
		{redis.Nil, false},
		{errors.New("WRONGTYPE but not a reply"), false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			assert.Equal(t, c.want, redisstore.Permanent(c.err))
		})
	}
}

// The classification on real servers: each refusal is provoked, and the error must wrap idempotent.ErrPermanent
// exactly when no retry can fix it.
func TestErrorsFromRealServers(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	rec := func(key string) idempotent.Record {
		return idempotent.Record{ID: scope.ID(key), Fingerprint: "fp", Owner: "o", LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	}
	claim := func(store *redisstore.Store, key string) error {
		_, err := store.Claim(ctx, idempotent.Claim{Record: rec(key), Now: now, Takeover: true})
		return err
	}

	t.Run("WrongType", func(t *testing.T) {
		store := newStore(t, redistest.Client(t))
		require.NoError(t, redistest.Client(t).Set(ctx, store.Key(scope.ID("k")), "a string", 0).Err())
		err := claim(store, "k")
		require.ErrorIs(t, err, idempotent.ErrPermanent)
		assert.Contains(t, err.Error(), "WRONGTYPE")
		_, err = store.Get(ctx, scope.ID("k"), now)
		require.ErrorIs(t, err, idempotent.ErrPermanent)
	})

	t.Run("MalformedRecord", func(t *testing.T) {
		store := newStore(t, redistest.Client(t))
		for name, fields := range map[string][]any{
			"unknown status":         {"status", "DONE", "expiration", "9999999999"},
			"expiration not number":  {"status", "COMPLETED", "expiration", "soon", "data", "x"},
			"no expiration":          {"status", "COMPLETED", "data", "x"},
			"no lease":               {"status", "INPROGRESS", "expiration", "9999999999"},
			"completed without data": {"status", "COMPLETED", "expiration", "9999999999"},
			"unknown encoding":       {"status", "COMPLETED", "expiration", "9999999999", "data", "x", "data_encoding", "zstd"},
			"bad gzip":               {"status", "COMPLETED", "expiration", "9999999999", "data", "x", "data_encoding", "gzip"},
		} {
			t.Run(name, func(t *testing.T) {
				key := "bad-" + strings.ReplaceAll(name, " ", "-")
				require.NoError(t, redistest.Client(t).HSet(ctx, store.Key(scope.ID(key)), fields...).Err())
				_, err := store.Get(ctx, scope.ID(key), now)
				require.ErrorIs(t, err, idempotent.ErrPermanent)
				assert.Contains(t, err.Error(), "malformed")
				err = claim(store, key)
				require.Error(t, err)
				assert.ErrorIs(t, err, idempotent.ErrPermanent)
			})
		}
	})

	t.Run("NoPermission", func(t *testing.T) {
		user := "noeval-" + strings.ReplaceAll(redistest.UniquePrefix(t), ":", "-")
		admin := redistest.Client(t)
		require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", user, "on", ">secret", "~*", "+@all", "-@scripting").Err())
		t.Cleanup(func() { _ = admin.Do(context.Background(), "ACL", "DELUSER", user).Err() })
		client := redistest.NewClient(t, func(o *redis.Options) { o.Username, o.Password = user, "secret" })
		err := claim(newStore(t, client), "k")
		require.ErrorIs(t, err, idempotent.ErrPermanent)
		assert.Contains(t, err.Error(), "NOPERM")
	})

	t.Run("WrongPassword", func(t *testing.T) {
		client := redistest.NewClient(t, func(o *redis.Options) { o.Username, o.Password = "nobody", "wrong" })
		err := claim(newStore(t, client), "k")
		require.ErrorIs(t, err, idempotent.ErrPermanent)
		assert.Contains(t, err.Error(), "WRONGPASS")
	})

	t.Run("ServerUnreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close()) // nothing listens there now
		client := redistest.NewClient(t, func(o *redis.Options) { o.Addr, o.MaxRetries = addr, -1 })
		err = claim(newStore(t, client), "k")
		require.Error(t, err)
		assert.NotErrorIs(t, err, idempotent.ErrPermanent)
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := newStore(t, redistest.Client(t)).Claim(cctx, idempotent.Claim{Record: rec("k"), Now: now})
		require.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, idempotent.ErrPermanent)
	})

	t.Run("OutOfMemory", func(t *testing.T) {
		inst, err := redislocal.Start(ctx, redislocal.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = inst.Stop() })
		client := redistest.NewClient(t, func(o *redis.Options) { o.Addr = inst.Addr() })
		require.NoError(t, client.ConfigSet(ctx, "maxmemory", "1").Err())
		err = claim(newStore(t, client), "k")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "OOM")
		assert.NotErrorIs(t, err, idempotent.ErrPermanent, "memory can be freed: a retry later may succeed")
	})

	t.Run("ReadOnlyReplica", func(t *testing.T) {
		inst, err := redislocal.Start(ctx, redislocal.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = inst.Stop() })
		host, port, err := net.SplitHostPort(redistest.Addr(t))
		require.NoError(t, err)
		client := redistest.NewClient(t, func(o *redis.Options) { o.Addr, o.MaxRetries = inst.Addr(), -1 })
		require.NoError(t, client.Do(ctx, "REPLICAOF", host, port).Err())
		err = claim(newStore(t, client), "k")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "READONLY")
		assert.NotErrorIs(t, err, idempotent.ErrPermanent, "a failover points the endpoint at a primary again")
	})

	t.Run("ThroughTheEngine", func(t *testing.T) {
		store := newStore(t, redistest.Client(t))
		require.NoError(t, redistest.Client(t).Set(ctx, store.Key(scope.ID("k")), "a string", 0).Err())
		_, err := idempotent.Run(ctx, idempotent.New(store, idempotent.WithLogger(idempotent.NewLogger(discard{}))),
			request("k", `{}`), idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
				t.Error("the handler must not run")
				return resp{}, nil
			})
		var se *idempotent.StoreError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "claim", se.Op)
		require.ErrorIs(t, err, idempotent.ErrPermanent, "apigw answers 500 without Retry-After")
	})
}
