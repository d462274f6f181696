package apigw

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// storeCalls is memstore counting its claims and merged writes.
type storeCalls struct {
	*memstore.Store
	claims, merged atomic.Int32
}

func (s *storeCalls) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	s.claims.Add(1)
	return s.Store.Claim(ctx, c)
}

func (s *storeCalls) ClaimComplete(ctx context.Context, c idempotent.Claim, eff []idempotent.Effect) (*idempotent.Record, error) {
	s.merged.Add(1)
	return s.Store.ClaimComplete(ctx, c, eff)
}

// TestWithMergedClaim: the option makes the engine claim and record in one merged write; without it the key is
// claimed first.
func TestWithMergedClaim(t *testing.T) {
	for _, k := range frontEnds {
		for _, merged := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/merged=%v", k.name, merged), func(t *testing.T) { testMergedClaim(t, k, merged) })
		}
	}
}

func testMergedClaim(t *testing.T, k kind, merged bool) {
	st := &storeCalls{Store: memstore.New()}
	e := idempotent.New(st, idempotent.WithClock(idempotenttest.NewClock(epoch)),
		idempotent.WithDisabled(false), idempotent.WithLogger(slog.New(slog.DiscardHandler)))
	var opts []Option
	if merged {
		opts = append(opts, WithMergedClaim())
	}
	var c counter
	send := k.wrap(e, c.handle, opts...)
	for i, replayed := range []string{"false", "true"} {
		r, err := send(context.Background(), input{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusCreated, r.StatusCode, "request %d", i)
		assert.Equal(t, replayed, r.Headers[ReplayedHeader], "request %d", i)
	}
	if merged {
		assert.Equal(t, int32(2), st.merged.Load(), "one merged write per request")
		assert.Zero(t, st.claims.Load())
	} else {
		assert.Equal(t, int32(2), st.claims.Load(), "one claim per request")
		assert.Zero(t, st.merged.Load())
	}
}
