package redislocal_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/redislocal"
)

func TestStartAnswerStop(t *testing.T) {
	ctx := context.Background()
	inst, err := redislocal.Start(ctx, redislocal.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inst.Stop() })
	assert.Regexp(t, `^127\.0\.0\.1:\d+$`, inst.Addr())
	assert.Equal(t, "redis://"+inst.Addr(), inst.URL())

	client := redis.NewClient(&redis.Options{Addr: inst.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Set(ctx, "k", "v", 0).Err())
	cfg, err := client.ConfigGet(ctx, "*").Result()
	require.NoError(t, err)
	assert.Equal(t, "", cfg["save"], "no RDB snapshots")
	assert.Equal(t, "no", cfg["appendonly"])
	assert.Equal(t, "127.0.0.1", cfg["bind"])
	assert.Equal(t, inst.Dir(), cfg["dir"])

	require.NoError(t, inst.Stop())
	select {
	case <-inst.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	require.NoError(t, inst.Stop(), "Stop is idempotent")
	_, err = os.Stat(inst.Dir())
	assert.True(t, os.IsNotExist(err), "the directory Start made is removed")
	assert.Error(t, client.Ping(ctx).Err(), "nothing answers after Stop")
}

func TestRestartOnSamePort(t *testing.T) {
	ctx := context.Background()
	for _, persistent := range []bool{true, false} {
		dir := t.TempDir()
		first, err := redislocal.Start(ctx, redislocal.Options{Dir: dir, Persistent: persistent})
		require.NoError(t, err)
		client := redis.NewClient(&redis.Options{Addr: first.Addr()})
		t.Cleanup(func() { _ = client.Close() })
		require.NoError(t, client.Set(ctx, "k", "v", 0).Err())
		require.NoError(t, first.Stop())
		_, err = os.Stat(dir)
		require.NoError(t, err, "a directory given in Options is kept")

		second, err := redislocal.Start(ctx, redislocal.Options{Port: first.Port(), Dir: dir, Persistent: persistent})
		require.NoError(t, err)
		t.Cleanup(func() { _ = second.Stop() })
		got, err := client.Get(ctx, "k").Result()
		if persistent {
			require.NoError(t, err, "the append-only file kept the write through SIGKILL")
			assert.Equal(t, "v", got)
		} else {
			assert.ErrorIs(t, err, redis.Nil, "without persistence the restart forgets")
		}
	}
}

func TestStartFixedPortTakenFails(t *testing.T) {
	ctx := context.Background()
	first, err := redislocal.Start(ctx, redislocal.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Stop() })
	_, err = redislocal.Start(ctx, redislocal.Options{Port: first.Port()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already in use")
}

func TestStartWithoutServerFails(t *testing.T) {
	t.Setenv(redislocal.EnvServer, "/nonexistent/redis-server")
	_, err := redislocal.Start(context.Background(), redislocal.Options{})
	require.ErrorIs(t, err, redislocal.ErrNotInstalled)

	_, err = redislocal.Start(context.Background(), redislocal.Options{Binary: "false"}) // exits at once
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited during start-up")
}
