package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

var epoch = time.Date(2024, 3, 12, 10, 15, 30, 0, time.UTC)

type flakyStore struct {
	*memstore.Store
	failClaim atomic.Bool
}

func (s *flakyStore) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if s.failClaim.Load() {
		return nil, errors.New("connection refused")
	}
	return s.Store.Claim(ctx, c)
}

type env struct {
	engine *idempotent.Engine
	clock  *idempotenttest.Clock
	store  *flakyStore
	logs   *syncBuffer
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

func newEnv(t *testing.T, opts ...idempotent.Option) *env {
	t.Helper()
	clk := idempotenttest.NewClock(epoch)
	st := &flakyStore{Store: memstore.New()}
	opts = append([]idempotent.Option{idempotent.WithClock(clk), idempotent.WithDisabled(false),
		idempotent.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return &env{engine: idempotent.New(st, opts...), clock: clk, store: st, logs: &syncBuffer{}}
}

func (e *env) logger() Option {
	return WithLogger(slog.New(slog.NewJSONHandler(e.logs, nil)))
}

func loadBatch(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var ev events.SQSEvent
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev
}

// recorder is a handler that records the bodies it saw and fails for the bodies in fail.
type recorder struct {
	mu   sync.Mutex
	seen []string
	fail map[string]bool
}

func (r *recorder) handle(_ context.Context, m events.SQSMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m.Body)
	if r.fail[m.Body] {
		return errors.New("downstream unavailable")
	}
	return nil
}

func (r *recorder) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func failures(resp events.SQSEventResponse) []string {
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestAllSucceed(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle)
	resp, err := h(context.Background(), loadBatch(t, "standard-batch.json"))
	require.NoError(t, err)
	wire, _ := json.Marshal(resp)
	assert.JSONEq(t, `{"batchItemFailures":[]}`, string(wire))
	assert.Equal(t, []string{`{"orderId":"ord-1","amount":100}`, `{"orderId":"ord-2","amount":200}`, `{"orderId":"ord-3","amount":300}`}, rec.bodies())
}

func TestDuplicatesAreSkipped(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle)
	batch := loadBatch(t, "standard-batch.json")
	_, err := h(context.Background(), batch)
	require.NoError(t, err)
	env.clock.Advance(time.Hour)
	// A redelivery of the whole batch (its deletion failed, say): nothing runs again, nothing is reported.
	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rec.bodies(), 3)
}

func TestFailuresAreReportedAndRetried(t *testing.T) {
	env := newEnv(t)
	rec := recorder{fail: map[string]bool{`{"orderId":"ord-2","amount":200}`: true}}
	h := Batch(env.engine, rec.handle, env.logger())
	batch := loadBatch(t, "standard-batch.json")
	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	wire, _ := json.Marshal(resp)
	assert.JSONEq(t, `{"batchItemFailures":[{"itemIdentifier":"2e1424d4-f796-459a-8184-9c92662be6da"}]}`, string(wire))
	assert.Contains(t, env.logs.String(), "downstream unavailable")

	// SQS delivers the failed message again; the handler runs for it (its key was released) and only for it.
	rec.fail = nil
	resp, err = h(context.Background(), events.SQSEvent{Records: batch.Records[1:2]})
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rec.bodies(), 4)
}

func TestInProgressElsewhereIsReported(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, env.logger())
	batch := loadBatch(t, "standard-batch.json")
	m := batch.Records[0]
	now := env.clock.Now()
	_, err := env.store.Claim(context.Background(), idempotent.Claim{Now: now, Record: idempotent.Record{
		ID:          idempotent.Scope{Route: m.EventSourceARN}.ID(m.MessageId),
		Status:      idempotent.StatusInProgress,
		Fingerprint: idempotent.Fingerprint("", m.EventSourceARN, []byte(m.Body)),
		Owner:       "other-invocation",
		LeaseEnd:    now.Add(time.Minute),
		ExpiresAt:   now.Add(24 * time.Hour),
	}})
	require.NoError(t, err)
	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Equal(t, []string{m.MessageId}, failures(resp))
	assert.Len(t, rec.bodies(), 2)
	assert.Contains(t, env.logs.String(), "another invocation")
}

func TestStoreFailureIsReported(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, env.logger())
	env.store.failClaim.Store(true)
	batch := loadBatch(t, "standard-batch.json")
	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Len(t, resp.BatchItemFailures, 3)
	assert.Empty(t, rec.bodies())
}

func TestBodyFieldKey(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, WithKeyField("orderId"), env.logger())
	batch := loadBatch(t, "standard-batch.json")
	// The producer sent ord-1 twice, as separate messages with separate ids: the copy is skipped.
	dup := batch.Records[0]
	dup.MessageId = "dddddddd-0000-4000-8000-000000000001"
	dup.Body = `{ "amount": 100, "orderId": "ord-1" }` // same JSON, other spelling
	// Another message reuses ord-2's key with another body: a mismatch, reported and logged.
	clash := batch.Records[1]
	clash.MessageId = "cccccccc-0000-4000-8000-000000000002"
	clash.Body = `{"orderId":"ord-2","amount":999}`
	// No key at all: required by default.
	keyless := batch.Records[2]
	keyless.MessageId = "eeeeeeee-0000-4000-8000-000000000003"
	keyless.Body = `{"amount":5}`
	batch.Records = append(batch.Records, dup, clash, keyless)

	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Equal(t, []string{clash.MessageId, keyless.MessageId}, failures(resp))
	assert.Len(t, rec.bodies(), 3)
	logs := env.logs.String()
	assert.Contains(t, logs, `"level":"ERROR","msg":"sqs message reuses an idempotency key with another body`)
	assert.Contains(t, logs, clash.MessageId)
	assert.Contains(t, logs, "no usable idempotency key")
	assert.NotContains(t, logs, "ord-2", "keys and bodies are not logged")

	t.Run("optional", func(t *testing.T) {
		env := newEnv(t)
		var rec recorder
		h := Batch(env.engine, rec.handle, WithKeyField("orderId"), WithKeyOptional())
		for range 2 {
			resp, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{keyless}})
			require.NoError(t, err)
			assert.Empty(t, resp.BatchItemFailures)
		}
		assert.Len(t, rec.bodies(), 2, "without a key there is no de-duplication")
	})
}

func TestFIFOStopsAtFirstFailure(t *testing.T) {
	batch := loadBatch(t, "fifo-batch.json")
	ids := func(idx ...int) []string {
		out := []string{}
		for _, i := range idx {
			out = append(out, batch.Records[i].MessageId)
		}
		return out
	}
	// Batch order: A1, A2, B1, A3, B2; A2 fails.
	cases := []struct {
		name      string
		opts      []Option
		failed    []string
		processed []string
	}{
		{"default: every later message", nil, ids(1, 2, 3, 4),
			[]string{`{"orderId":"A1"}`, `{"orderId":"A2"}`}},
		{"skip group: the failed group only", []Option{WithSkipGroupOnError()}, ids(1, 3),
			[]string{`{"orderId":"A1"}`, `{"orderId":"A2"}`, `{"orderId":"B1"}`, `{"orderId":"B2"}`}},
		{"concurrency is ignored for FIFO", []Option{WithConcurrency(8)}, ids(1, 2, 3, 4),
			[]string{`{"orderId":"A1"}`, `{"orderId":"A2"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			rec := recorder{fail: map[string]bool{`{"orderId":"A2"}`: true}}
			h := Batch(env.engine, rec.handle, tc.opts...)
			resp, err := h(context.Background(), batch)
			require.NoError(t, err)
			assert.Equal(t, tc.failed, failures(resp))
			assert.Equal(t, tc.processed, rec.bodies())
		})
	}
	t.Run("in progress counts as a failure", func(t *testing.T) {
		env := newEnv(t)
		var rec recorder
		h := Batch(env.engine, rec.handle)
		m := batch.Records[0]
		now := env.clock.Now()
		_, err := env.store.Claim(context.Background(), idempotent.Claim{Now: now, Record: idempotent.Record{
			ID: idempotent.Scope{Route: m.EventSourceARN}.ID(m.MessageId), Status: idempotent.StatusInProgress,
			Fingerprint: idempotent.Fingerprint("", m.EventSourceARN, []byte(m.Body)), Owner: "other",
			LeaseEnd: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour),
		}})
		require.NoError(t, err)
		resp, err := h(context.Background(), batch)
		require.NoError(t, err)
		assert.Equal(t, ids(0, 1, 2, 3, 4), failures(resp))
		assert.Empty(t, rec.bodies())
	})
}

func TestConcurrentStandardQueue(t *testing.T) {
	env := newEnv(t)
	arn := "arn:aws:sqs:us-east-1:123456789012:orders"
	var batch events.SQSEvent
	fail := map[string]bool{}
	var want []string
	for i := range 40 {
		body := fmt.Sprintf(`{"n":%d}`, i)
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: id, Body: body, EventSourceARN: arn})
		if i%7 == 0 {
			fail[body] = true
			want = append(want, id)
		}
	}
	rec := recorder{fail: fail}
	var running, peak atomic.Int64
	h := Batch(env.engine, func(ctx context.Context, m events.SQSMessage) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return rec.handle(ctx, m)
	}, WithConcurrency(4))
	resp, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Equal(t, want, failures(resp), "failures in batch order")
	assert.Len(t, rec.bodies(), 40)
	assert.LessOrEqual(t, peak.Load(), int64(4))
}

func TestPanicPropagatesAndReleases(t *testing.T) {
	for _, conc := range []int{1, 3} {
		t.Run(fmt.Sprint("concurrency ", conc), func(t *testing.T) {
			env := newEnv(t)
			var calls atomic.Int64
			h := Batch(env.engine, func(_ context.Context, m events.SQSMessage) error {
				if calls.Add(1) == 1 {
					panic("handler bug")
				}
				return nil
			}, WithConcurrency(conc))
			batch := loadBatch(t, "standard-batch.json")
			assert.PanicsWithValue(t, "handler bug", func() { _, _ = h(context.Background(), batch) })
			before := calls.Load()
			resp, err := h(context.Background(), batch)
			require.NoError(t, err)
			assert.Empty(t, resp.BatchItemFailures)
			// The panicking message's key was released, so the redelivery runs it; completed ones are skipped.
			assert.GreaterOrEqual(t, calls.Load(), before+1)
			resp, err = h(context.Background(), batch)
			require.NoError(t, err)
			assert.Empty(t, resp.BatchItemFailures)
			assert.LessOrEqual(t, calls.Load(), int64(len(batch.Records)+1), "no message ran twice after succeeding")
		})
	}
}

func TestEndingInvocationLeavesMessages(t *testing.T) {
	env := newEnv(t)
	var rec recorder
	h := Batch(env.engine, rec.handle, env.logger())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := h(ctx, loadBatch(t, "standard-batch.json"))
	require.NoError(t, err)
	assert.Len(t, resp.BatchItemFailures, 3)
	assert.Empty(t, rec.bodies())
}

func TestScopeNameAndKeyFunc(t *testing.T) {
	env := newEnv(t)
	var scopes []idempotent.Scope
	h := Batch(env.engine, func(ctx context.Context, m events.SQSMessage) error {
		inv, ok := idempotent.FromContext(ctx)
		require.True(t, ok)
		scopes = append(scopes, inv.Scope)
		return nil
	}, WithName("orders"), WithKeyFunc(func(_ context.Context, m events.SQSMessage) (string, error) {
		return strings.ToUpper(m.MessageId[:8]), nil
	}))
	batch := loadBatch(t, "standard-batch.json")
	_, err := h(context.Background(), batch)
	require.NoError(t, err)
	assert.Equal(t, []idempotent.Scope{{Route: "orders"}, {Route: "orders"}, {Route: "orders"}}, scopes)
	// A second queue feeding the same logical stream shares the records under the same name.
	for i := range batch.Records {
		batch.Records[i].EventSourceARN = "arn:aws:sqs:eu-west-1:123456789012:orders"
	}
	_, err = h(context.Background(), batch)
	require.NoError(t, err)
	assert.Len(t, scopes, 3)
}

func TestDisabledEngine(t *testing.T) {
	e := idempotent.New(nil, idempotent.WithDisabled(true))
	var rec recorder
	h := Batch(e, rec.handle)
	batch := loadBatch(t, "standard-batch.json")
	for range 2 {
		resp, err := h(context.Background(), batch)
		require.NoError(t, err)
		assert.Empty(t, resp.BatchItemFailures)
	}
	assert.Len(t, rec.bodies(), 6)
}
