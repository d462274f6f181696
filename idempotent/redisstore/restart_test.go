package redisstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal"
	"github.com/idemkit/idemkit/internal/testwait"
)

// server is a redis-server of the test's own, which it may stop and start again on the same port and directory.
type server struct {
	t          *testing.T
	port       int
	dir        string
	persistent bool
	inst       *redislocal.Instance
}

func startServer(t *testing.T, persistent bool) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), persistent: persistent}
	s.start()
	s.port = s.inst.Port()
	t.Cleanup(func() { _ = s.inst.Stop() })
	return s
}

func (s *server) start() {
	s.t.Helper()
	inst, err := redislocal.Start(context.Background(), redislocal.Options{Port: s.port, Dir: s.dir, Persistent: s.persistent})
	require.NoError(s.t, err, "start redis-server on port %d", s.port)
	s.inst = inst
}

func (s *server) stop() {
	s.t.Helper()
	require.NoError(s.t, s.inst.Stop())
}

// completeFailed is a go-redis hook that reports, once, a completion that failed.
type completeFailed struct{ ch chan struct{} }

func (h *completeFailed) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *completeFailed) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *completeFailed) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); err != nil && len(args) > 1 && args[0] == "evalsha" && args[1] == redisstore.CompleteSHA {
			select {
			case h.ch <- struct{}{}:
			default:
			}
		}
		return err
	}
}

// TestServerRestart stops the server and starts it again on the same port in the middle of the protocol. With
// persistence (an fsync per write, as a durable deployment has), a restart never causes a second execution: the
// client reconnects by itself, completions are retried within their budget, and duplicates replay. Without
// persistence a restart forgets every record, which the package documents; the last case shows it.
func TestServerRestart(t *testing.T) {
	ctx := context.Background()
	newEngine := func(t *testing.T, s *server, hooks ...redis.Hook) *idempotent.Engine {
		client := redis.NewClient(&redis.Options{Addr: s.inst.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = client.Close() })
		for _, h := range hooks {
			client.AddHook(h)
		}
		// A generous completion budget: the server must come back within it, however busy the machine.
		return idempotent.New(redisstore.New(client), idempotent.WithCompletionTimeout(time.Minute),
			idempotent.WithLogger(idempotent.NewLogger(discard{})))
	}

	// A restart between two requests: with an fsync per write the record survives and the duplicate replays; without
	// persistence the record is lost with the server's memory and the duplicate runs again, the documented limit.
	for _, tc := range []struct {
		name       string
		persistent bool
		wantReplay bool
		wantRuns   int32
	}{
		{"BetweenRequests", true, true, 1},
		{"WithoutPersistenceEverythingIsForgotten", false, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.persistent)
			engine := newEngine(t, s)
			var runs atomic.Int32
			_, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, handler(&runs, "paid"))
			require.NoError(t, err)
			s.stop()
			s.start()
			res, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
			require.NoError(t, err)
			assert.Equal(t, tc.wantReplay, res.Replayed(), "persistent=%t", tc.persistent)
			if tc.wantReplay {
				assert.Equal(t, "paid", res.Value.Body)
			}
			assert.Equal(t, tc.wantRuns, runs.Load())
		})
	}

	t.Run("WhileTheHandlerRuns", func(t *testing.T) {
		s := startServer(t, true)
		engine := newEngine(t, s)
		var runs atomic.Int32
		_, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
			runs.Add(1)
			s.stop() // the pooled connection that made the claim is dead now
			s.start()
			return resp{Status: 201, Body: "paid"}, nil
		})
		require.NoError(t, err)
		res, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
		require.NoError(t, err)
		assert.True(t, res.Replayed(), "the completion reached the restarted server")
		assert.Equal(t, int32(1), runs.Load())
	})

	t.Run("DownWhenTheCompletionStarts", func(t *testing.T) {
		s := startServer(t, true)
		failed := &completeFailed{ch: make(chan struct{}, 1)}
		engine := newEngine(t, s, failed)
		var runs atomic.Int32
		restarted := make(chan error, 1)
		_, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, func(context.Context) (resp, error) {
			runs.Add(1)
			s.stop()
			go func() {
				// Back once a completion attempt has failed against the stopped server: the engine's retry
				// (after go-redis's own) must reach it.
				select {
				case <-failed.ch:
				case <-time.After(30 * time.Second):
					restarted <- errors.New("no completion attempt failed within 30 s")
					return
				}
				inst, err := redislocal.Start(context.Background(), redislocal.Options{Port: s.port, Dir: s.dir, Persistent: true})
				if err == nil {
					s.inst = inst
				}
				restarted <- err
			}()
			return resp{Status: 201, Body: "paid"}, nil
		})
		require.NoError(t, err)
		require.NoError(t, testwait.Recv(t, restarted, "the restart"))
		t.Cleanup(func() { _ = s.inst.Stop() })
		res, err := idempotent.Run(ctx, engine, request("k", `{}`), idempotent.Spec[resp]{}, handler(&runs, "again"))
		require.NoError(t, err)
		assert.True(t, res.Replayed(), "the engine's retry completed the record")
		assert.Equal(t, int32(1), runs.Load())
	})
}
