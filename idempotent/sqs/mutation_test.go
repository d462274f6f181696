package sqs

// Tests for behaviour that `make mutate` found unguarded: each names the decision it pins down.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/internal/testwait"
)

// run calls h within the test's bound, so a regression that blocks the batch fails with a message.
func run(t *testing.T, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	t.Helper()
	type result struct {
		resp events.SQSEventResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := h(ctx, ev)
		done <- result{resp, err}
	}()
	r := testwait.Recv(t, done, "the batch to be processed")
	require.NoError(t, r.err)
	return r.resp
}

func standardBatch(n int, arn string) events.SQSEvent {
	var ev events.SQSEvent
	for i := range n {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:      fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Body:           fmt.Sprintf(`{"n":%d}`, i),
			EventSourceARN: arn,
		})
	}
	return ev
}

// barrier is a handler that returns only once `want` messages are in it at the same time: it proves that a batch
// runs concurrently without measuring time. When fewer ever meet (a sequential run), it gives up after the test's
// bound and fails the message.
type barrier struct {
	want    int64
	arrived atomic.Int64
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{want: int64(n), all: make(chan struct{})} }

func (b *barrier) handle(t *testing.T) func(context.Context, events.SQSMessage) error {
	return func(context.Context, events.SQSMessage) error {
		if b.arrived.Add(1) == b.want {
			close(b.all)
		}
		select {
		case <-b.all:
			return nil
		case <-time.After(testwait.Bound(t)):
			return errors.New("the messages did not run at the same time")
		}
	}
}

func TestConcurrencyIsUsed(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		arn  string
		n    int // messages that must meet in the handler at once
	}{
		{"WithConcurrency(4) on a standard queue", []Option{WithConcurrency(4)}, "arn:aws:sqs:us-east-1:123456789012:orders", 4},
		{"WithConcurrency(2) on a standard queue", []Option{WithConcurrency(2)}, "arn:aws:sqs:us-east-1:123456789012:orders", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			b := newBarrier(tc.n)
			h := Batch(env.engine, b.handle(t), tc.opts...)
			resp := run(t, h, context.Background(), standardBatch(tc.n, tc.arn))
			assert.Empty(t, resp.BatchItemFailures, "all %d messages were in the handler at once", tc.n)
		})
	}
}

// sequentialCheck is a handler that fails when two messages are in it at once.
func sequentialCheck(running *atomic.Int64, overlapped *atomic.Bool) func(context.Context, events.SQSMessage) error {
	return func(context.Context, events.SQSMessage) error {
		if running.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer running.Add(-1)
		return nil
	}
}

func TestConcurrencyGuards(t *testing.T) {
	// A bad value keeps what was set before it.
	for _, n := range []int{0, -1} {
		t.Run(fmt.Sprintf("WithConcurrency(4) then WithConcurrency(%d) keeps 4", n), func(t *testing.T) {
			env := newEnv(t)
			b := newBarrier(4)
			h := Batch(env.engine, b.handle(t), WithConcurrency(4), WithConcurrency(n))
			resp := run(t, h, context.Background(), standardBatch(4, "arn:aws:sqs:us-east-1:123456789012:orders"))
			assert.Empty(t, resp.BatchItemFailures, "all 4 messages were in the handler at once")
		})
	}
	for _, n := range []int{0, -1, 1} {
		t.Run(fmt.Sprintf("WithConcurrency(%d) alone is one at a time", n), func(t *testing.T) {
			env := newEnv(t)
			var running atomic.Int64
			var overlapped atomic.Bool
			var order []string
			h := Batch(env.engine, func(ctx context.Context, m events.SQSMessage) error {
				order = append(order, m.MessageId) // unsynchronised on purpose: the race detector sees any overlap
				return sequentialCheck(&running, &overlapped)(ctx, m)
			}, WithConcurrency(n))
			ev := standardBatch(8, "arn:aws:sqs:us-east-1:123456789012:orders")
			resp := run(t, h, context.Background(), ev)
			assert.Empty(t, resp.BatchItemFailures)
			assert.False(t, overlapped.Load())
			require.Len(t, order, 8)
			for i, m := range ev.Records {
				assert.Equal(t, m.MessageId, order[i], "in the order received")
			}
		})
	}
}

func TestFIFODetection(t *testing.T) {
	// Either sign makes a message FIFO: the .fifo queue ARN, or a MessageGroupId attribute.
	tests := []struct {
		name  string
		arn   string
		group string
	}{
		{"queue ARN ends in .fifo", "arn:aws:sqs:us-east-1:123456789012:orders.fifo", ""},
		{"message group id on a queue named otherwise", "arn:aws:sqs:us-east-1:123456789012:orders", "g1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			ev := standardBatch(3, tc.arn)
			if tc.group != "" {
				for i := range ev.Records {
					ev.Records[i].Attributes = map[string]string{"MessageGroupId": tc.group}
				}
			}
			rec := recorder{fail: map[string]bool{ev.Records[0].Body: true}}
			h := Batch(env.engine, rec.handle, WithConcurrency(4))
			resp := run(t, h, context.Background(), ev)
			assert.Equal(t, []string{ev.Records[0].MessageId, ev.Records[1].MessageId, ev.Records[2].MessageId}, failures(resp),
				"FIFO: the first failure stops the batch, and the later messages are reported unprocessed")
			assert.Equal(t, []string{ev.Records[0].Body}, rec.bodies())
		})
	}
}

func TestKeyFuncDecidesTheKey(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	// One key for every message: only the first runs; a key field given before is overridden.
	h := Batch(env.engine, rec.handle, WithKeyField("orderId"), WithKeyFunc(func(context.Context, events.SQSMessage) (string, error) {
		return "same-key", nil
	}), WithPayloadFields("missing"))
	ev := standardBatch(3, "arn:aws:sqs:us-east-1:123456789012:orders")
	resp := run(t, h, context.Background(), ev)
	assert.Empty(t, resp.BatchItemFailures, "the copies are skipped as duplicates")
	assert.Equal(t, []string{ev.Records[0].Body}, rec.bodies())
}

func TestKeyFuncErrorFailsTheMessage(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, env.logger(), WithKeyFunc(func(_ context.Context, m events.SQSMessage) (string, error) {
		if m.Body == `{"n":1}` {
			return "", errors.New("no key in this one")
		}
		return m.MessageId, nil
	}))
	ev := standardBatch(3, "arn:aws:sqs:us-east-1:123456789012:orders")
	resp := run(t, h, context.Background(), ev)
	assert.Equal(t, []string{ev.Records[1].MessageId}, failures(resp))
	assert.Equal(t, []string{ev.Records[0].Body, ev.Records[2].Body}, rec.bodies())
	assert.Contains(t, env.logs.String(), `"level":"ERROR","msg":"sqs message has an unusable idempotency key`)
	assert.Contains(t, env.logs.String(), "no key in this one")
}

func TestKeyFieldEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		optional bool
		failed   bool
		ran      bool
		log      string
	}{
		{"body not JSON, key required", `not json`, false, true, false, "no usable idempotency key"},
		{"body not JSON, key optional", `not json`, true, false, true, ""},
		{"empty key", `{"orderId":""}`, false, true, false, "unusable idempotency key"},
		{"empty key even when optional", `{"orderId":""}`, true, true, false, "unusable idempotency key"},
		{"key not a string", `{"orderId":{"a":1}}`, false, true, false, "unusable idempotency key"},
		{"key present", `{"orderId":"o-1"}`, false, false, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			var rec recorder
			opts := []Option{WithKeyField("orderId"), env.logger()}
			if tc.optional {
				opts = append(opts, WithKeyOptional())
			}
			h := Batch(env.engine, rec.handle, opts...)
			ev := standardBatch(1, "arn:aws:sqs:us-east-1:123456789012:orders")
			ev.Records[0].Body = tc.body
			resp := run(t, h, context.Background(), ev)
			assert.Equal(t, tc.failed, len(resp.BatchItemFailures) == 1, "failed")
			assert.Equal(t, tc.ran, len(rec.bodies()) == 1, "ran")
			if tc.log != "" {
				assert.Contains(t, env.logs.String(), tc.log)
			}
		})
	}
}

func TestPayloadFields(t *testing.T) {
	arn := "arn:aws:sqs:us-east-1:123456789012:orders"
	msg := func(id, body string) events.SQSMessage {
		return events.SQSMessage{MessageId: "00000000-0000-4000-8000-00000000000" + id, Body: body, EventSourceARN: arn}
	}
	tests := []struct {
		name     string
		fields   []string
		first    string
		second   string
		mismatch bool
	}{
		{"one field: other fields may differ", []string{"orderId"}, `{"orderId":"o-1","sentAt":1}`, `{"orderId":"o-1","sentAt":2}`, false},
		{"one field: that field may not", []string{"amount"}, `{"orderId":"o-1","amount":1}`, `{"orderId":"o-1","amount":2}`, true},
		{"no fields: the whole body", nil, `{"orderId":"o-1","sentAt":1}`, `{"orderId":"o-1","sentAt":2}`, true},
		{"fields of a body that is not JSON: the whole body", []string{"orderId"}, `orderId o-1 a`, `orderId o-1 b`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			var rec recorder
			keyOf := func(context.Context, events.SQSMessage) (string, error) { return "k-1", nil }
			opts := []Option{WithKeyFunc(keyOf), env.logger()}
			if tc.fields != nil {
				opts = append(opts, WithPayloadFields(tc.fields...))
			}
			h := Batch(env.engine, rec.handle, opts...)
			resp := run(t, h, context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg("1", tc.first), msg("2", tc.second)}})
			assert.Equal(t, tc.mismatch, len(resp.BatchItemFailures) == 1, "the second copy is a payload mismatch: %v", resp)
			assert.Len(t, rec.bodies(), 1)
		})
	}
}

func TestEndingInvocationIsLoggedAsSuch(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, env.logger())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := run(t, h, ctx, standardBatch(2, "arn:aws:sqs:us-east-1:123456789012:orders"))
	assert.Len(t, resp.BatchItemFailures, 2)
	logs := env.logs.String()
	assert.Contains(t, logs, `"level":"WARN","msg":"sqs message not processed: invocation ending"`)
	assert.NotContains(t, logs, "idempotency store failed", "not mistaken for a store failure")
}

func TestDisabledEngineIgnoresKeys(t *testing.T) {
	// With idempotency switched off no key is computed, so a message without one still runs.
	e := idempotent.New(nil, idempotent.WithDisabled(true))
	var rec recorder
	h := Batch(e, rec.handle, WithKeyField("orderId"))
	ev := standardBatch(2, "arn:aws:sqs:us-east-1:123456789012:orders")
	ev.Records[0].Body = `{"orderId":""}` // an unusable key: it would fail the message were keys computed
	resp := run(t, h, context.Background(), ev)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rec.bodies(), 2)
}

func TestReportLevels(t *testing.T) {
	t.Run("handler failure is a WARN: it heals on redelivery", func(t *testing.T) {
		env := newEnv(t)
		ev := standardBatch(1, "arn:aws:sqs:us-east-1:123456789012:orders")
		rec := recorder{fail: map[string]bool{ev.Records[0].Body: true}}
		h := Batch(env.engine, rec.handle, env.logger())
		resp := run(t, h, context.Background(), ev)
		assert.Len(t, resp.BatchItemFailures, 1)
		assert.Contains(t, env.logs.String(), `"level":"WARN","msg":"sqs message handler failed; the message will be delivered again","message_id":"`+ev.Records[0].MessageId+`","error":"downstream unavailable"`)
	})
	t.Run("store failure is an ERROR with the error", func(t *testing.T) {
		env := newEnv(t)
		env.store.failClaim.Store(true)
		h := Batch(env.engine, (&recorder{}).handle, env.logger())
		resp := run(t, h, context.Background(), standardBatch(1, "arn:aws:sqs:us-east-1:123456789012:orders"))
		assert.Len(t, resp.BatchItemFailures, 1)
		assert.Contains(t, env.logs.String(), `"level":"ERROR","msg":"sqs message not processed: idempotency store failed; it will be delivered again"`)
		assert.Contains(t, env.logs.String(), "connection refused")
	})
	t.Run("a crashed earlier run under LeaseRefuse is an ERROR", func(t *testing.T) {
		env := newEnv(t, idempotent.WithLeasePolicy(idempotent.LeaseRefuse))
		ev := standardBatch(1, "arn:aws:sqs:us-east-1:123456789012:orders")
		m := ev.Records[0]
		now := env.clock.Now()
		_, err := env.store.Claim(context.Background(), idempotent.Claim{Now: now, Record: idempotent.Record{
			ID:          idempotent.Scope{Route: m.EventSourceARN}.ID(m.MessageId),
			Status:      idempotent.StatusInProgress,
			Fingerprint: idempotent.Fingerprint("", m.EventSourceARN, []byte(m.Body)),
			Owner:       "crashed-invocation",
			LeaseEnd:    now.Add(time.Minute),
			ExpiresAt:   now.Add(24 * time.Hour),
		}})
		require.NoError(t, err)
		env.clock.Advance(2 * time.Minute) // the crashed invocation's lease has ended
		var rec recorder
		h := Batch(env.engine, rec.handle, env.logger())
		resp := run(t, h, context.Background(), ev)
		assert.Equal(t, []string{m.MessageId}, failures(resp))
		assert.Empty(t, rec.bodies(), "refused, not run again")
		assert.Contains(t, env.logs.String(), `"level":"ERROR","msg":"sqs message's earlier processing stopped before finishing and the lease policy refuses to run it again`)
	})
}

// goroutineID names the calling goroutine (the second field of its stack trace header).
func goroutineID() string {
	b := make([]byte, 64)
	return string(bytes.Fields(b[:runtime.Stack(b, false)])[1])
}

// With a concurrency of one (the default, or set last) a batch is handled on the invocation's own goroutine:
// sequential for real, no worker started.
func TestConcurrencyOneRunsOnTheCallersGoroutine(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{"default", nil},
		{"WithConcurrency(1)", []Option{WithConcurrency(1)}},
		{"WithConcurrency(4) then WithConcurrency(1)", []Option{WithConcurrency(4), WithConcurrency(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			caller := goroutineID()
			var others []string
			h := Batch(env.engine, func(context.Context, events.SQSMessage) error {
				if id := goroutineID(); id != caller {
					others = append(others, id)
				}
				return nil
			}, tc.opts...)
			resp, err := h(context.Background(), standardBatch(3, "arn:aws:sqs:us-east-1:123456789012:orders"))
			require.NoError(t, err)
			assert.Empty(t, resp.BatchItemFailures)
			assert.Empty(t, others, "handled on the caller's goroutine")
		})
	}
}
