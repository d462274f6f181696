package redisstore_test

import (
	"testing"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/redisstore"
	"github.com/idemkit/idemkit/internal/redislocal/redistest"
)

func TestConformance(t *testing.T) {
	layouts := []struct {
		name string
		opt  func(*redisstore.Options)
	}{
		{"Default", func(*redisstore.Options) {}},
		// Every response compressed, even the tiny ones (kept only when smaller).
		{"CompressAll", func(o *redisstore.Options) { o.CompressThreshold = 1 }},
		{"NoCompression", func(o *redisstore.Options) { o.CompressThreshold = -1 }},
		// A hash tag in the prefix, as for keeping a function's records on one cluster slot.
		{"HashTag", func(o *redisstore.Options) { o.KeyPrefix += "{payments}:" }},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			store := newStore(t, redistest.Client(t), l.opt)
			idempotenttest.RunStoreTests(t, func(*testing.T) idempotent.Store { return store })
		})
	}
}
