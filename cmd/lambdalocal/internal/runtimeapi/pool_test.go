package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/cmd/lambdalocal/internal/runtimeapi"
	"github.com/idemkit/idemkit/internal/testwait"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startPool(t *testing.T, mode string, mutate func(*runtimeapi.Config)) (*runtimeapi.Pool, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cfg := runtimeapi.Config{
		Function:  "TestFunction",
		Command:   os.Args[0],
		Env:       []string{helperEnv + "=" + mode, "CUSTOM=yes", "AWS_LAMBDA_FUNCTION_NAME=TestFunction"},
		Timeout:   5 * time.Second,
		Instances: 2,
		Output:    out,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := runtimeapi.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p, out
}

func invoke(t *testing.T, p *runtimeapi.Pool, event string) *runtimeapi.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound(t))
	defer cancel()
	res, err := p.Invoke(ctx, []byte(event), runtimeapi.InvokeOptions{})
	require.NoError(t, err)
	return res
}

// waitFor polls cond until it holds, within the test's bound (generous: the machine may be loaded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, what, cond)
}

func TestInvokeWithAWSLambdaGo(t *testing.T) {
	p, out := startPool(t, "lambda", nil)

	t.Run("echo", func(t *testing.T) {
		res := invoke(t, p, `{"echo":{"hello":"world"},"log":"a log line"}`)
		assert.False(t, res.Failed())
		assert.JSONEq(t, `{"hello":"world"}`, string(res.Payload))
		assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, res.RequestID)
		waitFor(t, "the log line", func() bool { return bytes.Contains([]byte(out.String()), []byte("] a log line\n")) })
		assert.Regexp(t, `\[TestFunction#\d\] a log line`, out.String())
	})
	t.Run("context from the runtime headers", func(t *testing.T) {
		ctx := context.Background()
		res, err := p.Invoke(ctx, []byte(`{"context":true}`), runtimeapi.InvokeOptions{RequestID: "req-1", TraceID: "Root=1-abc"})
		require.NoError(t, err)
		var got struct {
			RequestID   string `json:"requestId"`
			ARN         string `json:"arn"`
			RemainingMs int64  `json:"remainingMs"`
			TraceID     string `json:"traceId"`
		}
		require.NoError(t, json.Unmarshal(res.Payload, &got))
		assert.Equal(t, "req-1", got.RequestID)
		assert.Equal(t, "req-1", res.RequestID)
		assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:TestFunction", got.ARN)
		assert.Equal(t, "Root=1-abc", got.TraceID)
		assert.InDelta(t, 5000, got.RemainingMs, 1000, "deadline = start + function timeout")
	})
	t.Run("environment", func(t *testing.T) {
		res := invoke(t, p, `{"env":["CUSTOM","AWS_LAMBDA_RUNTIME_API","AWS_LAMBDA_FUNCTION_NAME"]}`)
		var env map[string]string
		require.NoError(t, json.Unmarshal(res.Payload, &env))
		assert.Equal(t, "yes", env["CUSTOM"])
		assert.Regexp(t, `^127\.0\.0\.1:\d+$`, env["AWS_LAMBDA_RUNTIME_API"])
		assert.Equal(t, "TestFunction", env["AWS_LAMBDA_FUNCTION_NAME"])
	})
	t.Run("handler error", func(t *testing.T) {
		res := invoke(t, p, `{"error":"card declined"}`)
		assert.True(t, res.Failed())
		assert.Equal(t, "Unhandled", res.FunctionError)
		assert.Equal(t, "errorString", res.ErrorType)
		assert.JSONEq(t, `{"errorMessage":"card declined","errorType":"errorString"}`, string(res.Payload))
	})
	t.Run("response over 6 MB", func(t *testing.T) {
		res := invoke(t, p, `{"big":`+strconv.Itoa(runtimeapi.MaxPayload+10)+`}`)
		assert.Equal(t, "Function.ResponseSizeTooLarge", res.ErrorType)
	})
	t.Run("request over 6 MB", func(t *testing.T) {
		res := invoke(t, p, `{"echo":"`+string(bytes.Repeat([]byte("x"), runtimeapi.MaxPayload))+`"}`)
		assert.Equal(t, "RequestEntityTooLargeException", res.ErrorType)
	})
}

func TestInstancesRunConcurrently(t *testing.T) {
	p, _ := startPool(t, "lambda", nil)
	var wg sync.WaitGroup
	type run struct {
		PID     int   `json:"pid"`
		StartNs int64 `json:"startNs"`
		EndNs   int64 `json:"endNs"`
	}
	runs := make([]run, 2)
	for n := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := invoke(t, p, `{"sleepMs":500,"context":true}`)
			assert.NoError(t, json.Unmarshal(res.Payload, &runs[n]))
		}()
	}
	testwait.Group(t, &wg, "the two concurrent invocations")
	assert.NotEqual(t, runs[0].PID, runs[1].PID, "two instances are two processes")
	// Overlapping handler runs prove they ran side by side, whatever the machine's load.
	assert.Less(t, max(runs[0].StartNs, runs[1].StartNs), min(runs[0].EndNs, runs[1].EndNs), "they ran side by side")
}

func TestQueueWhenAllBusy(t *testing.T) {
	p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1 })
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := invoke(t, p, `{"sleepMs":50,"echo":1}`)
			assert.Equal(t, "1", string(res.Payload))
		}()
	}
	testwait.Group(t, &wg, "the concurrent invocations")
}

// TestTimeoutKillsAndReplaces: only the sleeping invocation races the 300 ms timeout, and it cannot win (it sleeps
// ten minutes); the instance's pid before and after comes from the pool, not from invocations that would have to
// beat the same 300 ms on a loaded machine.
func TestTimeoutKillsAndReplaces(t *testing.T) {
	p, out := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Timeout = 300 * time.Millisecond; c.Instances = 1 })
	waitReady(t, p, 1)
	before := p.PIDs()
	require.Len(t, before, 1)

	const sleep = 10 * time.Minute
	res := invoke(t, p, fmt.Sprintf(`{"sleepMs":%d}`, sleep.Milliseconds()))
	assert.True(t, res.Failed())
	assert.Equal(t, "Sandbox.Timedout", res.ErrorType)
	assert.Contains(t, string(res.Payload), "Task timed out after 0.30 seconds")
	assert.GreaterOrEqual(t, res.Duration, 300*time.Millisecond, "not before the timeout")
	assert.Less(t, res.Duration, sleep, "the timeout ended it, not the handler")
	waitFor(t, "the kill to be logged", func() bool { return bytes.Contains([]byte(out.String()), []byte("killing pid")) })

	waitFor(t, "a fresh process to replace the killed one", func() bool {
		pids := p.PIDs()
		return len(pids) == 1 && pids[0] != before[0]
	})
	waitReady(t, p, 1) // the replacement reached /next: it serves the next invocation (not invoked here, where
	// a trivial invocation would itself have to beat the 300 ms timeout)
	proc, err := os.FindProcess(before[0])
	require.NoError(t, err)
	waitFor(t, "the timed-out process to exit", func() bool { return proc.Signal(syscallZero) != nil })
}

func TestCrashReplaces(t *testing.T) {
	tests := []struct{ name, event, errType string }{
		{"exit", `{"exit":7}`, "Runtime.ExitError"},
		{"panic", `{"panic":"nil map"}`, "Runtime.ExitError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1 })
			res := invoke(t, p, tt.event)
			assert.True(t, res.Failed())
			if tt.name == "exit" {
				assert.Equal(t, tt.errType, res.ErrorType)
				assert.Contains(t, string(res.Payload), "exit status 7")
			} else {
				// aws-lambda-go reports the panic itself, then exits.
				assert.Contains(t, string(res.Payload), "nil map")
			}
			ok := invoke(t, p, `{"echo":"again"}`)
			assert.False(t, ok.Failed(), string(ok.Payload))
			assert.Equal(t, `"again"`, string(ok.Payload))
		})
	}
}

func TestInitFailures(t *testing.T) {
	t.Run("exits before /next", func(t *testing.T) {
		p, out := startPool(t, "crash-at-init", nil)
		res := invoke(t, p, `{}`)
		assert.Equal(t, "Runtime.ExitError", res.ErrorType)
		assert.Contains(t, string(res.Payload), "exit status 3")
		waitFor(t, "stderr", func() bool { return bytes.Contains([]byte(out.String()), []byte("boom at init")) })
	})
	t.Run("reports /init/error", func(t *testing.T) {
		p, _ := startPool(t, "init-error", nil)
		res := invoke(t, p, `{}`)
		assert.Equal(t, "Config.Missing", res.ErrorType)
		assert.JSONEq(t, `{"errorType":"Config.Missing","errorMessage":"TABLE is not set"}`, string(res.Payload))
	})
	t.Run("never reaches /next", func(t *testing.T) {
		p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) {
			c.Command = "/bin/sleep"
			c.Args = []string{"30"}
			c.InitTimeout = 200 * time.Millisecond
			c.Instances = 1
		})
		res := invoke(t, p, `{}`)
		assert.Equal(t, "Runtime.InitTimeout", res.ErrorType)
	})
}

func TestRuntimeAPIConformance(t *testing.T) {
	p, _ := startPool(t, "raw", func(c *runtimeapi.Config) { c.Instances = 1 })
	res, err := p.Invoke(context.Background(), []byte(`{"mode":"ok"}`), runtimeapi.InvokeOptions{RequestID: "r-42", TraceID: "Root=1-x"})
	require.NoError(t, err)
	require.False(t, res.Failed(), string(res.Payload))
	var rep struct {
		NextStatus          int               `json:"nextStatus"`
		Headers             map[string]string `json:"headers"`
		Event               json.RawMessage   `json:"event"`
		WrongIDStatus       int               `json:"wrongIdStatus"`
		LateInitErrorStatus int               `json:"lateInitErrorStatus"`
	}
	require.NoError(t, json.Unmarshal(res.Payload, &rep))
	assert.Equal(t, 200, rep.NextStatus)
	assert.Equal(t, "r-42", rep.Headers["requestId"])
	assert.Equal(t, "Root=1-x", rep.Headers["trace"])
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:TestFunction", rep.Headers["arn"])
	dl, err := strconv.ParseInt(rep.Headers["deadline"], 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Add(5*time.Second).UnixMilli(), dl, 2000)
	assert.JSONEq(t, `{"mode":"ok"}`, string(rep.Event))
	assert.Equal(t, 400, rep.WrongIDStatus, "a response for another request id is refused")
	assert.Equal(t, 403, rep.LateInitErrorStatus, "init/error after init is refused")

	res, err = p.Invoke(context.Background(), []byte(`{"mode":"error-header-only"}`), runtimeapi.InvokeOptions{})
	require.NoError(t, err)
	assert.Equal(t, "Custom.Kind", res.ErrorType, "the error type header stands in for an unreadable body")
}

// TestInvokeContextEndsFirst: the caller's context ends while the handler sleeps. The function's timeout is the
// test's bound, so on a loaded machine the sleeping invocation still ends by itself rather than being killed.
func TestInvokeContextEndsFirst(t *testing.T) {
	p, _ := startPool(t, "lambda", func(c *runtimeapi.Config) { c.Instances = 1; c.Timeout = testwait.Bound(t) })
	waitReady(t, p, 1) // the 100 ms below then bound the invocation, not the process's start
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Invoke(ctx, []byte(`{"sleepMs":1500}`), runtimeapi.InvokeOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The invocation ran on; the instance is free again once it finishes.
	res := invoke(t, p, `{"echo":2}`)
	assert.Equal(t, "2", string(res.Payload))
}

func TestClose(t *testing.T) {
	p, _ := startPool(t, "lambda", nil)
	waitFor(t, "two ready instances", func() bool { return p.Ready() == 2 })
	pids := p.PIDs()
	require.Len(t, pids, 2)
	p.Close()
	for _, pid := range pids {
		proc, err := os.FindProcess(pid)
		require.NoError(t, err)
		waitFor(t, "process exit", func() bool { return proc.Signal(syscallZero) != nil })
	}
	_, err := p.Invoke(context.Background(), []byte(`{}`), runtimeapi.InvokeOptions{})
	require.ErrorIs(t, err, runtimeapi.ErrClosed)
	p.Close() // idempotent
}
