package idempotent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// TestRecordKeptWithoutResponse: a COMPLETED record whose response the store did not keep (nil Response, as
// dynamostore and redisstore return a record marked too large) answers a duplicate with ErrResponseUnavailable and
// never runs the handler again, also when only the request's version 1 fingerprint matches it (a record of an
// earlier release, which the stores cannot recognise as the same payload themselves). Another payload is still a
// mismatch.
func TestRecordKeptWithoutResponse(t *testing.T) {
	const key = "k-unavailable"
	const body = `{"amount":2000}`
	scope := idempotent.Scope{Principal: "anonymous", Method: "POST", Route: "/payments"}
	for _, tc := range []struct {
		name   string
		stored string // the record's fingerprint
	}{
		{"CurrentFingerprint", idempotent.Fingerprint("POST", "/payments", []byte(body))},
		{"LegacyFingerprint", idempotent.LegacyFingerprint("POST", "/payments", []byte(body))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := idempotenttest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			store := memstore.New()
			storeCompleted(t, store, scope.ID(key), tc.stored, nil, clk.Now())

			var outcomes []idempotent.Outcome
			e := idempotent.New(store, idempotent.WithClock(clk), idempotent.WithDisabled(false),
				idempotent.WithOutcomeHook(func(_ context.Context, ev idempotent.Event) { outcomes = append(outcomes, ev.Outcome) }))
			runs := 0
			run := func(body string) error {
				req := idempotent.Request{Key: key, Scope: scope, Fingerprint: idempotent.Fingerprint("POST", "/payments", []byte(body)),
					LegacyFingerprint: idempotent.LegacyFingerprintFunc(func() string {
						return idempotent.LegacyFingerprint("POST", "/payments", []byte(body))
					})}
				_, err := idempotent.Run(ctx, e, req, idempotent.Spec[string]{}, func(context.Context) (string, error) {
					runs++
					return "ran again", nil
				})
				return err
			}
			err := run(body)
			require.ErrorIs(t, err, idempotent.ErrResponseUnavailable)
			assert.NotErrorIs(t, err, idempotent.ErrPayloadMismatch)
			require.ErrorIs(t, run(`{"amount":2500}`), idempotent.ErrPayloadMismatch)
			assert.Zero(t, runs, "the handler never runs again for the key")
			assert.Equal(t, []idempotent.Outcome{idempotent.OutcomeUnavailable, idempotent.OutcomeMismatch}, outcomes)
		})
	}
}

// nilCodec encodes every value as nil bytes, as a codec of a value with nothing to keep may.
type nilCodec struct{}

func (nilCodec) Encode(struct{}) ([]byte, error) { return nil, nil }
func (nilCodec) Decode(b []byte) (struct{}, error) {
	if b == nil {
		panic("nilCodec: the engine handed Decode a nil response")
	}
	return struct{}{}, nil
}

// TestEmptyEncodingIsRecorded: a response encoded as nil bytes is recorded as an empty response and replayed, in
// both modes: it must not read back as a response that was not kept (see Record.Response).
func TestEmptyEncodingIsRecorded(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(map[bool]string{false: "ClaimFirst", true: "Merged"}[merged], func(t *testing.T) {
			ctx := context.Background()
			store := memstore.New()
			e := idempotent.New(store, idempotent.WithDisabled(false))
			req := idempotent.Request{Key: "k-empty", Scope: idempotent.Scope{Route: "op"}, Fingerprint: idempotent.Fingerprint("", "op", []byte(`{}`))}
			spec := idempotent.Spec[struct{}]{Codec: nilCodec{}, MergeClaim: merged}
			runs := 0
			for range 2 {
				_, err := idempotent.Run(ctx, e, req, spec, func(context.Context) (struct{}, error) {
					runs++
					return struct{}{}, nil
				})
				require.NoError(t, err)
			}
			rec, err := store.Get(ctx, req.Scope.ID(req.Key), time.Now())
			require.NoError(t, err)
			require.NotNil(t, rec)
			assert.NotNil(t, rec.Response, "recorded as empty, not as not kept")
			assert.Empty(t, rec.Response)
			wantRuns := 1
			if merged {
				wantRuns = 2 // a merged duplicate runs the handler before its write finds the record (see Spec.MergeClaim)
			}
			assert.Equal(t, wantRuns, runs)
		})
	}
}
