package idempotent_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
)

type event struct {
	Key   string `json:"key,omitempty"`
	Value int    `json:"value"`
	Trace string `json:"trace"`
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []idempotent.WrapOption
		calls    []event
		wantRuns int
		wantErr  error
	}{
		{"DuplicateReplayed", nil, []event{{Key: "a", Value: 1}, {Key: "a", Value: 1}}, 1, nil},
		{"OtherKeyRuns", nil, []event{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, 2, nil},
		{"Mismatch", nil, []event{{Key: "a", Value: 1}, {Key: "a", Value: 2}}, 1, idempotent.ErrPayloadMismatch},
		{"VolatileFieldMismatchesByDefault", nil, []event{{Key: "a", Trace: "t1"}, {Key: "a", Trace: "t2"}}, 1, idempotent.ErrPayloadMismatch},
		{"PayloadFieldsIgnoreVolatile", []idempotent.WrapOption{idempotent.WithPayloadFields("value")}, []event{{Key: "a", Trace: "t1"}, {Key: "a", Trace: "t2"}}, 1, nil},
		{"MissingKeyRequired", nil, []event{{Value: 1}}, 0, idempotent.ErrMissingKey},
		{"MissingKeyOptional", []idempotent.WrapOption{idempotent.WithKeyOptional()}, []event{{Value: 1}, {Value: 1}}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			runs := 0
			h := idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), func(_ context.Context, e event) (int, error) {
				runs++
				return e.Value * 10, nil
			}, append(tc.opts, idempotent.WithName("op"))...)
			var err error
			for _, c := range tc.calls {
				_, err = h(context.Background(), c)
			}
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantRuns, runs)
		})
	}
	t.Run("KeyFuncErrorStopsEarly", func(t *testing.T) {
		f := newFixture(t)
		bad := errors.New("no key here")
		h := idempotent.Wrap(f.eng, func(context.Context, event) (string, error) { return "", bad },
			func(context.Context, event) (int, error) { t.Fatal("handler ran"); return 0, nil })
		_, err := h(context.Background(), event{})
		require.ErrorIs(t, err, bad)
	})
	// A plain string field cannot tell an absent key from an empty one once the input is a Go value, so FieldKey
	// reads "" as no key: required, it is ErrMissingKey; optional, the handler runs without idempotency.
	t.Run("EmptyStringFieldIsNoKey", func(t *testing.T) {
		type msg struct {
			Key   string `json:"key"`
			Value int    `json:"value"`
		}
		for _, tc := range []struct {
			name     string
			opts     []idempotent.WrapOption
			wantRuns int
			wantErr  error
		}{
			{"Required", nil, 0, idempotent.ErrMissingKey},
			{"Optional", []idempotent.WrapOption{idempotent.WithKeyOptional()}, 2, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				runs := 0
				h := idempotent.Wrap(f.eng, idempotent.FieldKey[msg]("key"), func(context.Context, msg) (int, error) {
					runs++
					return runs, nil
				}, tc.opts...)
				for range 2 {
					_, err := h(context.Background(), msg{Value: 1})
					if tc.wantErr != nil {
						require.ErrorIs(t, err, tc.wantErr)
						assert.NotErrorIs(t, err, idempotent.ErrInvalidKey)
					} else {
						require.NoError(t, err)
					}
				}
				assert.Equal(t, tc.wantRuns, runs)
			})
		}
	})
	t.Run("KeyErrorsReadOnce", func(t *testing.T) {
		type msg struct {
			Key any `json:"key"`
		}
		never := func(context.Context, msg) (int, error) { t.Fatal("handler ran"); return 0, nil }
		for _, tc := range []struct {
			name    string
			key     idempotent.KeyFunc[msg]
			wantMsg string
			wantErr error
		}{
			{"FieldOfWrongType", idempotent.FieldKey[msg]("key"),
				"idempotent: invalid idempotency key: the field is a JSON boolean, not a string", idempotent.ErrInvalidKey},
			{"KeyErrorOfOwnKeyFunc", func(context.Context, msg) (string, error) { return "", &idempotent.KeyError{Reason: "no tenant"} },
				"idempotent: invalid idempotency key: no tenant", idempotent.ErrInvalidKey},
			{"OtherErrorOfOwnKeyFunc", func(context.Context, msg) (string, error) { return "", errors.New("no key here") },
				"idempotent: key function: no key here", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				_, err := idempotent.Wrap(f.eng, tc.key, never)(context.Background(), msg{Key: true})
				require.Error(t, err)
				assert.Equal(t, tc.wantMsg, err.Error())
				if tc.wantErr != nil {
					assert.ErrorIs(t, err, tc.wantErr)
				} else {
					assert.NotErrorIs(t, err, idempotent.ErrInvalidKey)
				}
			})
		}
	})
	t.Run("NamesScopeKeys", func(t *testing.T) {
		f := newFixture(t)
		runs := 0
		h := func(context.Context, event) (int, error) { runs++; return runs, nil }
		a := idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), h, idempotent.WithName("a"))
		b := idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), h, idempotent.WithName("b"))
		_, err := a(context.Background(), event{Key: "k"})
		require.NoError(t, err)
		_, err = b(context.Background(), event{Key: "k"})
		require.NoError(t, err)
		assert.Equal(t, 2, runs, "the same key under two names is two records")
	})
}

// voucher has what JSON cannot replay: an unexported field and a time in a named zone.
type voucher struct {
	ID   string
	note string
	At   time.Time
}

// voucherCodec keeps every part of a voucher, as a user's own codec would.
type voucherCodec struct{}

type voucherWire struct {
	ID, Note, Zone string
	Offset         int
	At             time.Time
}

func (voucherCodec) Encode(r voucher) ([]byte, error) {
	zone, offset := r.At.Zone()
	return json.Marshal(voucherWire{ID: r.ID, Note: r.note, Zone: zone, Offset: offset, At: r.At})
}

func (voucherCodec) Decode(b []byte) (voucher, error) {
	var w voucherWire
	if err := json.Unmarshal(b, &w); err != nil {
		return voucher{}, err
	}
	return voucher{ID: w.ID, note: w.Note, At: w.At.In(time.FixedZone(w.Zone, w.Offset))}, nil
}

func TestWrapCodec(t *testing.T) {
	first := voucher{ID: "r1", note: "gift wrap", At: time.Date(2026, 3, 1, 9, 30, 0, 0, time.FixedZone("XYZ", 3*3600+17*60))}
	for _, tc := range []struct {
		name       string
		opts       []idempotent.WrapOption
		wantReplay voucher
	}{
		// What the default JSONCodec replays: the unexported field is gone and the zone keeps only its offset (an
		// offset no machine's local zone has, or encoding/json would hand back time.Local).
		{"JSONByDefault", nil, voucher{ID: "r1", At: first.At.In(time.FixedZone("", 3*3600+17*60))}},
		{"WithCodec", []idempotent.WrapOption{idempotent.WithCodec[voucher](voucherCodec{})}, first},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			runs := 0
			h := idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), func(context.Context, event) (voucher, error) {
				runs++
				return first, nil
			}, tc.opts...)
			got, err := h(context.Background(), event{Key: "k"})
			require.NoError(t, err)
			require.Equal(t, first, got, "the first call returns the handler's own value")
			replay, err := h(context.Background(), event{Key: "k"})
			require.NoError(t, err)
			assert.Equal(t, 1, runs)
			assert.Equal(t, tc.wantReplay, replay)
		})
	}
	t.Run("CodecOfAnotherTypePanics", func(t *testing.T) {
		f := newFixture(t)
		assert.PanicsWithValue(t,
			"idempotent: Wrap: WithCodec got a idempotent.JSONCodec[string], which is not a Codec[int] for the handler's result",
			func() {
				idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), func(context.Context, event) (int, error) { return 0, nil },
					idempotent.WithCodec[string](idempotent.JSONCodec[string]{}))
			})
	})
}

// TestWrapMergedClaim: WithMergedClaim reaches the engine: one merged write per request and no claim, the
// duplicate running the handler and getting the first answer.
func TestWrapMergedClaim(t *testing.T) {
	for _, merged := range []bool{false, true} {
		f := newMergedFixture()
		var opts []idempotent.WrapOption
		if merged {
			opts = append(opts, idempotent.WithMergedClaim())
		}
		runs := 0
		h := idempotent.Wrap(f.eng, idempotent.FieldKey[event]("key"), func(_ context.Context, e event) (int, error) {
			runs++
			return runs, nil
		}, opts...)
		for range 2 {
			got, err := h(context.Background(), event{Key: "a", Value: 1})
			require.NoError(t, err)
			assert.Equal(t, 1, got, "merged=%v: the first answer", merged)
		}
		if merged {
			assert.Equal(t, int32(2), f.store.merged.Load())
			assert.Zero(t, f.store.claims.Load())
			assert.Equal(t, 2, runs, "a merged duplicate runs the handler before its write finds the record")
		} else {
			assert.Equal(t, int32(2), f.store.claims.Load())
			assert.Zero(t, f.store.merged.Load())
			assert.Equal(t, 1, runs)
		}
	}
}
