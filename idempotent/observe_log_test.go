package idempotent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

// TestObserveLogs: with no hook and no metrics, the log alone still gets every request, at DEBUG; a store failure
// before the handler ran, and one after it, are logged at ERROR with messages that tell them apart.
func TestObserveLogs(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	claimFails := errors.New("claim refused")
	for _, tc := range []struct {
		name       string
		store      func() idempotent.Store
		handlerErr error
		level, msg string
		attr       string // an attribute the record carries
	}{
		{name: "Executed", store: func() idempotent.Store { return memstore.New() },
			level: "DEBUG", msg: "idempotency", attr: "recorded"},
		{name: "RefusedByStore", store: func() idempotent.Store {
			return &claimHook{Store: memstore.New(), claim: func(idempotent.Claim) (*idempotent.Record, bool, error) { return nil, true, claimFails }}
		}, level: "ERROR", msg: "idempotency store failed; request refused", attr: "error"},
		{name: "FailedAfterHandler", store: func() idempotent.Store { return releaseFails{memstore.New()} }, handlerErr: errors.New("handler failed"),
			level: "ERROR", msg: "idempotency store failed after the handler ran", attr: "store_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			e := idempotent.New(tc.store(), idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithLogger(logger))
			_, _ = idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"}, idempotent.Spec[string]{},
				func(context.Context) (string, error) { return "ok", tc.handlerErr })
			var rec map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one record: %s", buf.String())
			assert.Equal(t, tc.level, rec["level"])
			assert.Equal(t, tc.msg, rec["msg"])
			assert.Contains(t, rec, tc.attr)
		})
	}
}

// TestOutcomeStringOutOfRange: a value that names no outcome, beyond the table or zero, reads "unknown".
func TestOutcomeStringOutOfRange(t *testing.T) {
	assert.Equal(t, "pass_through", idempotent.OutcomePassThrough.String())
	for _, o := range []idempotent.Outcome{0, idempotent.OutcomePassThrough + 1, 255} {
		assert.Equal(t, "unknown", o.String(), "%d", o)
	}
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
