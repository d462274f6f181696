package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// TestNewNeedsStore: an engine without a store is a programming error, unless idempotency is disabled.
func TestNewNeedsStore(t *testing.T) {
	assert.PanicsWithValue(t, "idempotent: New needs a Store", func() { idempotent.New(nil) })
	assert.NotPanics(t, func() { idempotent.New(nil, idempotent.WithDisabled(true)) })
}

// readFails is a memstore whose key is held by a running claim and whose reads fail.
type readFails struct {
	*memstore.Store
	holder idempotent.Record
}

func (s *readFails) Claim(context.Context, idempotent.Claim) (*idempotent.Record, error) {
	h := s.holder
	return &h, nil
}

func (s *readFails) ClaimComplete(context.Context, idempotent.Claim, []idempotent.Effect) (*idempotent.Record, error) {
	h := s.holder
	return &h, nil
}

func (s *readFails) Get(context.Context, string, time.Time) (*idempotent.Record, error) {
	return nil, errors.New("read refused")
}

// TestWaitReadFails: a failed read while waiting for a running holder is a store error, claim first or merged.
func TestWaitReadFails(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprint("merged=", merged), func(t *testing.T) {
			store := &readFails{Store: memstore.New(), holder: idempotent.Record{ID: "id", Status: idempotent.StatusInProgress,
				Fingerprint: "fp", Owner: "holder", LeaseEnd: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}}
			var log eventLog
			e := idempotent.New(store, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithWait(time.Second),
				idempotent.WithOutcomeHook(log.hook))
			_, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
				idempotent.Spec[string]{MergeClaim: merged}, func(context.Context) (string, error) { return "ok", nil })
			var se *idempotent.StoreError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "get", se.Op)
			assert.ErrorContains(t, err, "read refused")
			assert.Equal(t, idempotent.OutcomeStoreError, log.only(t).Outcome)
		})
	}
}

// TestReplayDecodeFails: a recorded response the codec cannot read is a store error, not a replay.
func TestReplayDecodeFails(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx := context.Background()
	mem := memstore.New()
	req := idempotent.Request{Key: "key-1", Fingerprint: "fp"}
	storeCompleted(t, mem, req.Scope.ID(req.Key), "fp", []byte(`not json`), base)
	var log eventLog
	e := idempotent.New(mem, idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithOutcomeHook(log.hook))
	_, err := idempotent.Run(ctx, e, req, idempotent.Spec[string]{}, func(context.Context) (string, error) { return "mine", nil })
	var se *idempotent.StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "decode", se.Op)
	assert.Equal(t, idempotent.OutcomeStoreError, log.only(t).Outcome)
}

// TestEncodeFails: a response that does not encode fails the request when effects would have committed with it;
// without effects the handler's answer stands, the failure reported as a store error after the handler (claim
// first, the claim is kept until its lease ends; merged, nothing was written). Claim first and merged alike.
func TestEncodeFails(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, merged := range []bool{false, true} {
		for _, withEffect := range []bool{false, true} {
			t.Run(fmt.Sprintf("merged=%t/effect=%t", merged, withEffect), func(t *testing.T) {
				var log eventLog
				e := idempotent.New(memstore.New(), idempotent.WithClock(idempotenttest.NewClock(base)), idempotent.WithOutcomeHook(log.hook))
				res, err := idempotent.Run(context.Background(), e, idempotent.Request{Key: "key-1", Fingerprint: "fp"},
					idempotent.Spec[string]{MergeClaim: merged, Codec: unencodable{}}, func(ctx context.Context) (string, error) {
						if withEffect {
							require.True(t, idempotent.AddEffect(ctx, "write"))
						}
						return "ok", nil
					})
				ev := log.only(t)
				if withEffect {
					var se *idempotent.StoreError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, "complete", se.Op)
					assert.ErrorContains(t, err, "encode response: cannot encode")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, "ok", res.Value)
				require.Error(t, ev.StoreErr)
				assert.ErrorContains(t, ev.StoreErr, "encode response: cannot encode")
				assert.False(t, ev.Recorded)
			})
		}
	}
}
