package localproc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/internal/localproc"
	"github.com/idemkit/idemkit/internal/testwait"
)

// sh starts script under /bin/sh, stopped with SIGKILL when the test ends.
func sh(t *testing.T, script string) *localproc.Process {
	t.Helper()
	p, err := localproc.Start(localproc.Command{Name: "test server", Addr: "127.0.0.1:1", Path: "/bin/sh", Args: []string{"-c", script}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(os.Kill, 0) })
	return p
}

// exited waits (bounded) until p has gone.
func exited(t *testing.T, p *localproc.Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(testwait.Bound(t)):
		t.Fatalf("pid %d did not exit", p.PID())
	}
}

func TestStartKeepsTheTailAndFeedsTheLog(t *testing.T) {
	// An *os.File, safe for the two pipes' goroutines to write at once.
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer log.Close()
	// 5000 bytes of 'a' on stdout, then a line on stderr: the tail keeps only the last TailSize bytes of both.
	p, err := localproc.Start(localproc.Command{Path: "/bin/sh", Args: []string{"-c", `head -c 5000 /dev/zero | tr '\0' a; echo last words >&2`}, Log: log})
	require.NoError(t, err)
	exited(t, p)
	tail := p.Tail()
	assert.Len(t, tail, localproc.TailSize)
	assert.True(t, strings.HasSuffix(tail, "last words\n"), "stderr reaches the tail: %q", tail[len(tail)-20:])
	all, err := os.ReadFile(log.Name())
	require.NoError(t, err)
	assert.Len(t, all, 5000+len("last words\n"), "the log gets all of it")
	assert.Positive(t, p.PID())
}

func TestStartFailure(t *testing.T) {
	_, err := localproc.Start(localproc.Command{Path: "/nonexistent/server"})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestWaitReady(t *testing.T) {
	probeErr := errors.New("connection refused")
	t.Run("the probe succeeds", func(t *testing.T) {
		p := sh(t, "exec sleep 60")
		calls := 0
		err := p.WaitReady(context.Background(), time.Millisecond, func(ctx context.Context) error {
			if calls++; calls < 3 {
				return probeErr
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 3, calls, "polled until the probe answered, not after")
	})
	t.Run("the process exits", func(t *testing.T) {
		p := sh(t, "exit 3")
		exited(t, p)
		err := p.WaitReady(context.Background(), time.Millisecond, func(context.Context) error { return probeErr })
		require.ErrorIs(t, err, localproc.ErrExited)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 3, exit.ExitCode())
		assert.Equal(t, "test server exited during start-up (exit status 3)", err.Error())
	})
	t.Run("the process exits cleanly", func(t *testing.T) {
		p := sh(t, "exit 0")
		exited(t, p)
		err := p.WaitReady(context.Background(), time.Millisecond, func(context.Context) error { return probeErr })
		require.ErrorIs(t, err, localproc.ErrExited)
		assert.Equal(t, "test server exited during start-up", err.Error())
	})
	t.Run("ctx ends first", func(t *testing.T) {
		p := sh(t, "exec sleep 60")
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := p.WaitReady(ctx, time.Millisecond, func(context.Context) error {
			if calls++; calls == 2 {
				cancel()
			}
			return probeErr
		})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, probeErr, "the last probe's error is kept")
		assert.NotErrorIs(t, err, localproc.ErrExited)
		assert.Equal(t, "test server did not answer on 127.0.0.1:1 in time: context canceled (last probe: connection refused)", err.Error())
	})
	t.Run("no address to name", func(t *testing.T) {
		p, err := localproc.Start(localproc.Command{Name: "anon", Path: "/bin/sh", Args: []string{"-c", "exec sleep 60"}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Stop(os.Kill, 0) })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = p.WaitReady(ctx, time.Millisecond, func(context.Context) error { return probeErr })
		assert.EqualError(t, err, "anon did not answer in time: context canceled (last probe: connection refused)")
	})
}

func TestStop(t *testing.T) {
	t.Run("the signal ends it", func(t *testing.T) {
		p := sh(t, "exec sleep 60")
		require.NoError(t, p.Stop(syscall.SIGTERM, testwait.Bound(t)))
		select {
		case <-p.Done():
		default:
			t.Fatal("Stop returned before the process exited")
		}
		require.NoError(t, p.Stop(syscall.SIGTERM, time.Second), "stopping a stopped process does nothing")
	})
	t.Run("SIGKILL", func(t *testing.T) {
		p := sh(t, "trap '' TERM INT; exec sleep 60")
		require.NoError(t, p.Stop(os.Kill, 0))
		select {
		case <-p.Done():
		default:
			t.Fatal("Stop returned before the process exited")
		}
	})
	t.Run("the signal is ignored", func(t *testing.T) {
		// An ignored signal stays ignored across exec, so sleep itself ignores SIGINT; the grace is what is tested,
		// so it is short.
		p := sh(t, "trap '' INT; echo ready; exec sleep 60")
		require.NoError(t, p.WaitReady(context.Background(), time.Millisecond, func(context.Context) error {
			if !strings.Contains(p.Tail(), "ready") {
				return errors.New("not yet")
			}
			return nil
		}))
		err := p.Stop(syscall.SIGINT, 50*time.Millisecond)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ignored interrupt for 50ms and was killed")
		select {
		case <-p.Done():
		default:
			t.Fatal("Stop returned before the process exited")
		}
	})
}

func TestOnPort(t *testing.T) {
	lostErr := errors.New("Address already in use")
	lost := func(err error) bool { return errors.Is(err, lostErr) }
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	takenPort := taken.Addr().(*net.TCPAddr).Port

	t.Run("a chosen port", func(t *testing.T) {
		var got []int
		err := localproc.OnPort(context.Background(), 0, func(port int) error { got = append(got, port); return nil }, lost)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Positive(t, got[0])
	})
	t.Run("a given port", func(t *testing.T) {
		free, err := localproc.FreePort()
		require.NoError(t, err)
		var got []int
		err = localproc.OnPort(context.Background(), free, func(port int) error { got = append(got, port); return nil }, lost)
		require.NoError(t, err)
		assert.Equal(t, []int{free}, got)
	})
	t.Run("a given port already taken is refused before launch", func(t *testing.T) {
		calls := 0
		err := localproc.OnPort(context.Background(), takenPort, func(int) error { calls++; return nil }, lost)
		require.ErrorIs(t, err, localproc.ErrPortInUse)
		assert.Zero(t, calls)
	})
	t.Run("a lost race on a chosen port is retried three times in all", func(t *testing.T) {
		var got []int
		err := localproc.OnPort(context.Background(), 0, func(port int) error { got = append(got, port); return lostErr }, lost)
		require.ErrorIs(t, err, lostErr)
		assert.Len(t, got, 3)
	})
	t.Run("a lost race is retried until it is won", func(t *testing.T) {
		calls := 0
		err := localproc.OnPort(context.Background(), 0, func(int) error {
			if calls++; calls < 3 {
				return lostErr
			}
			return nil
		}, lost)
		require.NoError(t, err)
		assert.Equal(t, 3, calls)
	})
	t.Run("a lost race on a given port is not retried", func(t *testing.T) {
		free, err := localproc.FreePort()
		require.NoError(t, err)
		calls := 0
		err = localproc.OnPort(context.Background(), free, func(int) error { calls++; return lostErr }, lost)
		require.ErrorIs(t, err, lostErr)
		assert.Equal(t, 1, calls)
	})
	t.Run("another failure is not retried", func(t *testing.T) {
		other := errors.New("no such file")
		calls := 0
		err := localproc.OnPort(context.Background(), 0, func(int) error { calls++; return other }, lost)
		require.ErrorIs(t, err, other)
		assert.Equal(t, 1, calls)
	})
	t.Run("an ended ctx is not retried", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		err := localproc.OnPort(ctx, 0, func(int) error { calls++; return lostErr }, lost)
		require.ErrorIs(t, err, lostErr)
		assert.Equal(t, 1, calls)
	})
}
