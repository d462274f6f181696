package redisstore_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// newStore returns a store on the test server whose keys are the test's own.
func newStore(t testing.TB, client redisstore.Client, optFns ...func(*redisstore.Options)) *redisstore.Store {
	t.Helper()
	prefix := redistest.UniquePrefix(t)
	return redisstore.New(client, append([]func(*redisstore.Options){func(o *redisstore.Options) { o.KeyPrefix = prefix }}, optFns...)...)
}

// counter counts the commands a client sends, by name, through a go-redis hook. The hook sees every call of the
// client, a NOSCRIPT fallback's EVAL included; the retries go-redis makes under one call are the fault tests'
// business (their proxy counts what reaches the wire).
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.n[strings.ToUpper(cmd.Name())]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.n["PIPELINE"]++
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the counts since the last take and resets them.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countingClient returns a client of the test's own whose commands are counted.
func countingClient(t testing.TB) (*redis.Client, *counter) {
	t.Helper()
	c := &counter{n: map[string]int{}}
	client := redistest.NewClient(t)
	client.AddHook(c)
	return client, c
}

// rawRecord reads a record's hash as stored.
func rawRecord(t *testing.T, store *redisstore.Store, id string) map[string]string {
	t.Helper()
	m, err := redistest.Client(t).HGetAll(context.Background(), store.Key(id)).Result()
	require.NoError(t, err)
	return m
}
