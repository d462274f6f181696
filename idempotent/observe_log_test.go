package idempotent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// releaseFails is a memstore whose Release fails.
type releaseFails struct{ *memstore.Store }

func (releaseFails) Release(context.Context, string, string) error {
	return errors.New("release refused")
}

// TestObserveLogs: with no hook and no metrics, the log alone still gets every request, at DEBUG, with the
// attributes that apply to it; a store failure before the handler ran, and one after it, are logged at ERROR with
// messages that tell them apart.
func TestObserveLogs(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	claimFails := errors.New("claim refused")
	id := idempotent.Scope{}.ID("key-1")
	for _, tc := range []struct {
		name       string
		store      func() idempotent.Store
		opts       []idempotent.Option
		req        idempotent.Request
		handlerErr error
		level, msg string
		want       map[string]any // attributes the record carries, with their values
		absent     []string       // attributes it does not carry
	}{
		{name: "Executed", store: func() idempotent.Store { return memstore.New() }, req: idempotent.Request{Key: "key-1", Fingerprint: "fp"},
			level: "DEBUG", msg: "idempotency",
			want:   map[string]any{"outcome": "executed", "idempotency_id": id, "recorded": true},
			absent: []string{"waits", "error", "store_error"}},
		{name: "PassThrough", store: func() idempotent.Store { return memstore.New() }, req: idempotent.Request{KeyOptional: true},
			level: "DEBUG", msg: "idempotency",
			want:   map[string]any{"outcome": "pass_through"},
			absent: []string{"idempotency_id", "recorded", "waits"}},
		{name: "Waited", store: func() idempotent.Store {
			return &heldTwice{Store: memstore.New(), holder: func(owner string) *idempotent.Record {
				return &idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Fingerprint: "fp", Owner: owner,
					LeaseEnd: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}
			}}
		}, opts: []idempotent.Option{idempotent.WithWait(time.Second)}, req: idempotent.Request{Key: "key-1", Fingerprint: "fp"},
			level: "DEBUG", msg: "idempotency",
			want:   map[string]any{"outcome": "in_progress", "waits": float64(1)},
			absent: []string{"recorded"}},
		{name: "RefusedByStore", store: func() idempotent.Store {
			return &claimHook{Store: memstore.New(), claim: func(idempotent.Claim) (*idempotent.Record, bool, error) { return nil, true, claimFails }}
		}, req: idempotent.Request{Key: "key-1", Fingerprint: "fp"},
			level: "ERROR", msg: "idempotency store failed; request refused",
			want:   map[string]any{"outcome": "store_error", "error": "idempotent: store claim: claim refused"},
			absent: []string{"store_error"}},
		{name: "FailedAfterHandler", store: func() idempotent.Store { return releaseFails{memstore.New()} }, req: idempotent.Request{Key: "key-1", Fingerprint: "fp"},
			handlerErr: errors.New("handler failed"),
			level:      "ERROR", msg: "idempotency store failed after the handler ran",
			want:   map[string]any{"outcome": "executed", "store_error": "idempotent: store release: release refused"},
			absent: []string{"error", "recorded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			opts := append([]idempotent.Option{idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithLogger(logger)}, tc.opts...)
			e := idempotent.New(tc.store(), opts...)
			_, _ = idempotent.Run(context.Background(), e, tc.req, idempotent.Spec[string]{},
				func(context.Context) (string, error) { return "ok", tc.handlerErr })
			var rec map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one record: %s", buf.String())
			assert.Equal(t, tc.level, rec["level"])
			assert.Equal(t, tc.msg, rec["msg"])
			for k, v := range tc.want {
				assert.Equal(t, v, rec[k], k)
			}
			for _, k := range tc.absent {
				assert.NotContains(t, rec, k)
			}
		})
	}
}

// TestOutcomeStringOutOfRange: a value that names no outcome, beyond the table or zero, reads "unknown".
func TestOutcomeStringOutOfRange(t *testing.T) {
	assert.Equal(t, "pass_through", idempotent.OutcomePassThrough.String())
	for _, o := range []idempotent.Outcome{0, idempotent.OutcomePassThrough + 1, 255} {
		assert.Equal(t, "unknown", o.String(), "%d", o)
	}
	// The zero Status is no status either, so a record whose status was never set cannot pass for a claim.
	assert.Equal(t, "Status(0)", idempotent.Status(0).String())
	assert.Equal(t, "INPROGRESS", idempotent.StatusInProgress.String())
}

// TestEventDuration: a request's event carries the time it spent in the engine, on the engine's clock; a key the
// adapter refused before the engine saw the request carries none.
func TestEventDuration(t *testing.T) {
	clk := idempotenttest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var log eventLog
	e := idempotent.New(memstore.New(), idempotent.WithClock(clk), idempotent.WithOutcomeHook(log.hook))
	_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
		func(context.Context) (string, error) {
			clk.Advance(3 * time.Second)
			return "ok", nil
		})
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, log.only(t).Duration)

	var refused eventLog
	e = idempotent.New(memstore.New(), idempotent.WithClock(clk), idempotent.WithOutcomeHook(refused.hook))
	e.InvalidKey(context.Background(), "two values")
	ev := refused.only(t)
	assert.Equal(t, idempotent.OutcomeInvalidKey, ev.Outcome)
	assert.Zero(t, ev.Duration)
}

// TestMetricsStoreFailure: a store failure after the handler ran counts as store_error beside the request's own
// outcome; a request refused by the store counts once, as store_error; a clean one only by its outcome.
func TestMetricsStoreFailure(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		store      idempotent.Store
		handlerErr error
		want       []string
	}{
		{"Executed", memstore.New(), nil, []string{"executed"}},
		{"FailedAfterHandler", releaseFails{memstore.New()}, errors.New("handler failed"), []string{"executed", "store_error"}},
		{"RefusedByStore", &claimHook{Store: memstore.New(), claim: func(idempotent.Claim) (*idempotent.Record, bool, error) {
			return nil, true, errors.New("claim refused")
		}}, nil, []string{"store_error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := idempotent.New(tc.store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithMetrics(&buf, "ns", "svc"))
			_, _ = idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
				func(context.Context) (string, error) { return "ok", tc.handlerErr })
			var doc struct {
				AWS struct {
					CloudWatchMetrics []struct {
						Metrics []struct{ Name string }
					}
				} `json:"_aws"`
			}
			require.NoError(t, json.Unmarshal(buf.Bytes(), &doc), buf.String())
			require.Len(t, doc.AWS.CloudWatchMetrics, 1)
			var names []string
			for _, m := range doc.AWS.CloudWatchMetrics[0].Metrics {
				names = append(names, m.Name)
			}
			assert.Equal(t, tc.want, names)
		})
	}
}

// TestNewLoggerKeys: NewLogger writes Lambda's keys (message, timestamp in RFC 3339 UTC) at the top level only;
// attributes in a group keep their own names and values.
func TestNewLoggerKeys(t *testing.T) {
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "")
	var buf bytes.Buffer
	logger := idempotent.NewLogger(&buf)
	logger.Info("hello")
	logger.WithGroup("g").Info("grouped", "time", "not a time", "msg", "inner")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2, buf.String())
	var top map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &top))
	assert.Equal(t, "hello", top["message"])
	assert.NotContains(t, top, "msg")
	assert.NotContains(t, top, "time")
	ts, ok := top["timestamp"].(string)
	require.True(t, ok, "timestamp: %v", top["timestamp"])
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	require.NoError(t, err)
	assert.Equal(t, time.UTC, parsed.Location())
	var grouped map[string]any
	require.NoError(t, json.Unmarshal(lines[1], &grouped))
	assert.Equal(t, "grouped", grouped["message"])
	assert.Equal(t, map[string]any{"time": "not a time", "msg": "inner"}, grouped["g"])

	// The time is written in UTC with every digit it has, whatever its zone.
	buf.Reset()
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	require.NoError(t, logger.Handler().Handle(context.Background(), slog.NewRecord(at, slog.LevelInfo, "fixed", 0)))
	var fixed map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &fixed))
	assert.Equal(t, "2026-01-02T02:04:05.123456789Z", fixed["timestamp"])
}

// TestNewLoggerStdout: NewLogger(nil) writes to standard output, where Lambda collects the logs.
func TestNewLoggerStdout(t *testing.T) {
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout := os.Stdout
	os.Stdout = w
	logger := idempotent.NewLogger(nil)
	os.Stdout = stdout
	logger.Info("to stdout")
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"message":"to stdout"`)
}
