package idempotent_test

import (
	"context"
	"errors"
	"testing"

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
	t.Run("EmptyKeyIsInvalidEvenIfOptional", func(t *testing.T) {
		type msg struct {
			Key string `json:"key"`
		}
		f := newFixture(t)
		h := idempotent.Wrap(f.eng, idempotent.FieldKey[msg]("key"), func(context.Context, msg) (int, error) {
			t.Fatal("handler ran")
			return 0, nil
		}, idempotent.WithKeyOptional())
		_, err := h(context.Background(), msg{})
		require.ErrorIs(t, err, idempotent.ErrInvalidKey)
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
