package dynamostore_test

import (
	"testing"

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/dynamostore"
	"github.com/idemkit/idemkit/idempotent/idempotenttest"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

func TestConformance(t *testing.T) {
	layouts := map[string]func(*dynamostore.Options){
		"Default":   func(*dynamostore.Options) {},
		"KeyPrefix": func(o *dynamostore.Options) { o.KeyPrefix = "payments#" },
		"SortKey": func(o *dynamostore.Options) {
			o.SortKeyAttr = "sk"
			o.StaticPartitionKey = "idempotency#payments"
			o.KeyPrefix = "handler#"
		},
		"CustomNames": func(o *dynamostore.Options) {
			o.IDAttr, o.StatusAttr, o.ExpirationAttr = "pk", "st", "ttl"
			o.InProgressExpirationAttr, o.ValidationAttr, o.DataAttr = "lease", "fp", "resp"
			o.OwnerAttr, o.DataEncodingAttr = "holder", "enc"
			o.CompressThreshold = -1
		},
	}
	for name, opt := range layouts {
		t.Run(name, func(t *testing.T) {
			table := newTable(t, opt)
			store := dynamostore.New(ddbtest.Client(t), table, opt)
			idempotenttest.RunStoreTests(t, func(*testing.T) idempotent.Store { return store })
		})
	}
}
