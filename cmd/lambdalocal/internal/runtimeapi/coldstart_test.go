package runtimeapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
	"github.com/idemkit/idemkit/internal/testwait"
)

// readyLine is the line the pool writes when an instance reaches its first /next.
var readyLine = regexp.MustCompile(`(?m)^\[TestFunction#(\d+)\] ready in (\S+) \(pid (\d+)\)$`)

type readyLog struct {
	n, pid int
	in     time.Duration
}

func readyLines(t *testing.T, out string) []readyLog {
	t.Helper()
	var got []readyLog
	for _, m := range readyLine.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		in, err := time.ParseDuration(m[2])
		require.NoError(t, err, "duration in %q", m[0])
		pid, err := strconv.Atoi(m[3])
		require.NoError(t, err)
		got = append(got, readyLog{n: n, pid: pid, in: in})
	}
	return got
}

func waitReady(t *testing.T, p *runtimeapi.Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound(t))
	defer cancel()
	require.NoError(t, p.WaitReady(ctx, n), "waiting for %d ready instances", n)
}

// TestReadyTimeReported: every instance's start-to-first-/next is exposed by Instances and logged once, with its PID.
func TestReadyTimeReported(t *testing.T) {
	before := time.Now()
	p, out := startPool(t, "lambda", nil)
	waitReady(t, p, 2)
	elapsed := time.Since(before)

	insts := p.Instances()
	require.Len(t, insts, 2)
	assert.ElementsMatch(t, p.PIDs(), []int{insts[0].PID, insts[1].PID})
	assert.Less(t, insts[0].N, insts[1].N, "ordered by instance number")
	for _, in := range insts {
		assert.True(t, in.Ready, "instance %d", in.N)
		assert.Positive(t, in.ReadyIn, "instance %d", in.N)
		assert.LessOrEqual(t, in.ReadyIn, elapsed, "instance %d: measured inside the test's own window", in.N)
	}

	// The lines are written before Ready counts the instance, so they are there already.
	lines := readyLines(t, out.String())
	require.Len(t, lines, 2, out.String())
	for _, in := range insts {
		found := false
		for _, l := range lines {
			if l.n == in.N {
				found = true
				assert.Equal(t, in.PID, l.pid, "pid in the line of instance %d", in.N)
				assert.Equal(t, in.ReadyIn.Round(100*time.Microsecond), l.in, "duration in the line of instance %d", in.N)
			}
		}
		assert.True(t, found, "a ready line for instance %d in:\n%s", in.N, out.String())
	}

	// Readiness is logged once per process: invocations do not log it again.
	invoke(t, p, `{"echo":1}`)
	invoke(t, p, `{"echo":2}`)
	assert.Len(t, readyLines(t, out.String()), 2)
}

// TestReadyTimeCoversInit: the ready time runs from the process start to the first /next, so it includes all the
// work the bootstrap does before its runtime loop. The helper's init blocks on a gate the test opens: the instance
// is visible but not ready meanwhile, and its ready time is at least the time the gate was held.
func TestReadyTimeCoversInit(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer gate.Close()

	start := time.Now()
	p, out := startPool(t, "gated", func(c *runtimeapi.Config) {
		c.Instances = 1
		c.Env = append(c.Env, gateEnv+"="+gate.URL)
	})
	started := time.Now() // after Start returned: the process was spawned before this
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the helper never reached its gate; output:\n%s", out.String())
	}
	insts := p.Instances()
	require.Len(t, insts, 1)
	assert.False(t, insts[0].Ready, "still in init")
	assert.Zero(t, insts[0].ReadyIn, "no ready time before /next")
	assert.Positive(t, insts[0].PID)
	assert.Zero(t, p.Ready())
	assert.Empty(t, readyLines(t, out.String()), "no ready line before /next")

	opened := time.Now()
	close(release)
	waitReady(t, p, 1)
	total := time.Since(start)

	insts = p.Instances()
	require.Len(t, insts, 1)
	assert.True(t, insts[0].Ready)
	assert.GreaterOrEqual(t, insts[0].ReadyIn, opened.Sub(started), "init held at the gate counts")
	assert.LessOrEqual(t, insts[0].ReadyIn, total)
	lines := readyLines(t, out.String())
	require.Len(t, lines, 1)
	assert.Equal(t, insts[0].PID, lines[0].pid)
}

// TestReadyTimeOfReplacement: an instance that replaces a crashed one is a new cold start with its own number,
// PID, ready time and log line; the dead one is no longer listed.
func TestReadyTimeOfReplacement(t *testing.T) {
	p, out := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1 })
	waitReady(t, p, 1)
	first := p.Instances()
	require.Len(t, first, 1)

	res := invoke(t, p, `{"exit":7}`)
	require.Equal(t, "Runtime.ExitError", res.ErrorType)
	waitReady(t, p, 1)

	now := p.Instances()
	require.Len(t, now, 1)
	assert.Greater(t, now[0].N, first[0].N)
	assert.NotEqual(t, first[0].PID, now[0].PID)
	assert.True(t, now[0].Ready)
	assert.Positive(t, now[0].ReadyIn)

	lines := readyLines(t, out.String())
	require.Len(t, lines, 2, out.String())
	assert.Equal(t, readyLog{n: first[0].N, pid: first[0].PID, in: first[0].ReadyIn.Round(100 * time.Microsecond)}, lines[0])
	assert.Equal(t, readyLog{n: now[0].N, pid: now[0].PID, in: now[0].ReadyIn.Round(100 * time.Microsecond)}, lines[1])
}

func TestWaitReadyEnds(t *testing.T) {
	t.Run("context ends while init keeps failing", func(t *testing.T) {
		p, _ := startPool(t, "crash-at-init", func(c *runtimeapi.Config) { c.Instances = 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := p.WaitReady(ctx, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "Runtime.ExitError", "the last init failure is named")
		assert.Empty(t, func() []runtimeapi.InstanceInfo {
			var ready []runtimeapi.InstanceInfo
			for _, in := range p.Instances() {
				if in.Ready {
					ready = append(ready, in)
				}
			}
			return ready
		}())
	})
	t.Run("pool closed", func(t *testing.T) {
		p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1 })
		p.Close()
		require.ErrorIs(t, p.WaitReady(context.Background(), 1), runtimeapi.ErrClosed)
		assert.Empty(t, p.Instances())
	})
	t.Run("more than the pool has", func(t *testing.T) {
		p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1 })
		waitReady(t, p, 1)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, p.WaitReady(ctx, 2), context.Canceled)
	})
}
