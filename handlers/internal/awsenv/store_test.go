package awsenv_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/internal/awsenv"
	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal"
)

func TestStoreKind(t *testing.T) {
	for _, tc := range []struct {
		value, want string
		atomic      bool
	}{{"", "dynamodb", true}, {"dynamodb", "dynamodb", true}, {" DynamoDB ", "dynamodb", true}, {"redis", "redis", false}, {"Redis", "redis", false}} {
		t.Run(fmt.Sprintf("%q", tc.value), func(t *testing.T) {
			t.Setenv(awsenv.EnvIdempotencyStore, tc.value)
			got, err := awsenv.StoreKind()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.atomic, awsenv.AtomicCompletion())
		})
	}
	t.Setenv(awsenv.EnvIdempotencyStore, "memcached")
	_, err := awsenv.StoreKind()
	assert.EqualError(t, err, `IDEMPOTENCY_STORE="memcached": want "dynamodb" or "redis"`)
	assert.False(t, awsenv.AtomicCompletion())
}

func TestStoreSelection(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv(awsenv.EnvIdempotencyStore, "")
	s, err := awsenv.Store(&claimRecorder{}, logger)
	require.NoError(t, err)
	assert.IsType(t, &dynamostore.Store{}, s)

	t.Setenv(awsenv.EnvIdempotencyStore, "redis")
	t.Setenv(awsenv.EnvRedisURL, "")
	_, err = awsenv.Store(&claimRecorder{}, logger)
	require.ErrorContains(t, err, "REDIS_URL is empty")

	t.Setenv(awsenv.EnvRedisURL, "http://user:hunter2@example.com")
	_, err = awsenv.Store(&claimRecorder{}, logger)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2", "the password never reaches the log")

	t.Setenv(awsenv.EnvRedisURL, "rediss://app:hunter2@cache.example.com:6380/2")
	client, err := awsenv.RedisClient()
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	o := client.Options()
	assert.Equal(t, "cache.example.com:6380", o.Addr)
	assert.Equal(t, "app", o.Username)
	assert.Equal(t, "hunter2", o.Password)
	assert.Equal(t, 2, o.DB)
	assert.NotNil(t, o.TLSConfig, "rediss:// is TLS")
	assert.True(t, o.ContextTimeoutEnabled, "the engine's deadlines bound each call")
}

// TestEngineOnRedis: with IDEMPOTENCY_STORE=redis the engine keeps its records on the server at REDIS_URL, and
// DynamoDB is not called at all.
func TestEngineOnRedis(t *testing.T) {
	srv, err := redislocal.Start(context.Background(), redislocal.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	t.Setenv(awsenv.EnvIdempotencyStore, "redis")
	t.Setenv(awsenv.EnvRedisURL, srv.URL())
	db := &claimRecorder{}
	engine := awsenv.Engine(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	runs := 0
	for range 2 {
		res, err := idempotent.Run(context.Background(), engine, idempotent.Request{Key: "k", Scope: scope, Fingerprint: "fp"},
			idempotent.Spec[string]{}, func(context.Context) (string, error) { runs++; return "ok", nil })
		require.NoError(t, err)
		assert.Equal(t, "ok", res.Value)
	}
	assert.Equal(t, 1, runs)
	assert.Nil(t, db.claim, "no DynamoDB call")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	status, err := rdb.HGet(context.Background(), redisstore.DefaultKeyPrefix+scope.ID("k"), "status").Result()
	require.NoError(t, err)
	assert.Equal(t, "COMPLETED", status)
}

// TestEngineRefusesAnInvalidStore: an unknown store or a missing REDIS_URL must stop the function's init with an
// ERROR line naming the variable and exit status 1.
func TestEngineRefusesAnInvalidStore(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{awsenv.EnvIdempotencyStore + "=memcached"}, `IDEMPOTENCY_STORE="memcached": want "dynamodb" or "redis"`},
		{[]string{awsenv.EnvIdempotencyStore + "=redis", awsenv.EnvRedisURL + "="}, "REDIS_URL is empty: IDEMPOTENCY_STORE=redis needs the Redis endpoint, such as redis://127.0.0.1:6379"},
	} {
		t.Run(tc.env[0], func(t *testing.T) {
			line := engineRefuses(t, tc.env...)
			assert.Equal(t, tc.want, line["error"])
		})
	}
}
