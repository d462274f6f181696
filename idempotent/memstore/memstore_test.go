package memstore_test

import (
	"testing"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

func TestConformance(t *testing.T) {
	idempotenttest.RunStoreTests(t, func(*testing.T) idempotent.Store { return memstore.New() })
}
