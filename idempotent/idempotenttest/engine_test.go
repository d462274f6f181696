package idempotenttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

// The engine-level cases hold on memstore, which keeps every instant exactly: what they check is the engine and
// the store's contract, not a server. The real stores run them in their own packages, with their call counts.

// counted wraps a store and counts its calls by method, as the stores' tests count theirs at the client.
type counted struct {
	idempotent.Store
	n map[string]int
}

func (c *counted) Claim(ctx context.Context, cl idempotent.Claim) (*idempotent.Record, error) {
	c.n["Claim"]++
	return c.Store.Claim(ctx, cl)
}

func (c *counted) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	c.n["Complete"]++
	return c.Store.Complete(ctx, rec, effects)
}

func (c *counted) Release(ctx context.Context, id, owner string) error {
	c.n["Release"]++
	return c.Store.Release(ctx, id, owner)
}

func (c *counted) take() map[string]int {
	n := c.n
	c.n = map[string]int{}
	return n
}

func TestEngineCasesOnMemstore(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("RoundTrips", func(t *testing.T) {
		s := &counted{Store: memstore.New(), n: map[string]int{}}
		idempotenttest.RunRoundTrips(t, idempotent.New(s), s.take, idempotenttest.RoundTrips{
			First:        map[string]int{"Claim": 1, "Complete": 1},
			Duplicate:    map[string]int{"Claim": 1},
			Mismatch:     map[string]int{"Claim": 1},
			InProgress:   map[string]int{"Claim": 1},
			Completion:   map[string]int{"Complete": 1},
			HandlerError: map[string]int{"Claim": 1, "Release": 1},
		}, func(t *testing.T, id string) {
			rec, err := s.Get(context.Background(), id, time.Now())
			require.NoError(t, err)
			require.Nil(t, rec, "released")
		})
	})
	t.Run("LocalCache", func(t *testing.T) {
		s := &counted{Store: memstore.New(), n: map[string]int{}}
		engine := idempotent.New(s, idempotent.WithLocalCache(16, time.Minute))
		idempotenttest.RunLocalCacheMakesNoCalls(t, engine, s.take, map[string]int{"Claim": 1, "Complete": 1})
	})
	t.Run("Expiry", func(t *testing.T) {
		idempotenttest.RunExpiredRecordIsReclaimed(t, memstore.New(), "expiring", start, time.Nanosecond, nil)
	})
	t.Run("EndedLease", func(t *testing.T) {
		s := memstore.New()
		idempotenttest.RunEndedLease(t, s, start, time.Nanosecond, func(t *testing.T, id string) any {
			rec, err := s.Get(context.Background(), id, start)
			require.NoError(t, err)
			return rec
		})
	})
	t.Run("ConcurrentDuplicates", func(t *testing.T) {
		s := memstore.New()
		idempotenttest.RunConcurrentDuplicates(t, []*idempotent.Engine{idempotent.New(s), idempotent.New(s)}, "burst")
	})
}
