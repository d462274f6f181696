package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/idemkit/idemkit/handlers/payment/payment"
	"github.com/idemkit/idemkit/internal/ddblocal/ddbtest"
)

// TestDynamoLedger: two processors over one ledger table charge a reference once; the same reference with other
// details is refused; a reference past its retention is forgotten, as a processor forgets its idempotency keys.
func TestDynamoLedger(t *testing.T) {
	client := ddbtest.Client(t)
	table := createProcessorTable(t, client)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	newProc := func() *payment.SimulatedProcessor {
		return payment.NewSimulatedProcessor(func(o *payment.ProcessorOptions) {
			o.Ledger = payment.DynamoLedger{DB: client, Table: table, Now: clock, Retention: time.Hour}
		})
	}
	a, b := newProc(), newProc()
	card := payment.Card{Number: "4242424242424242", CVV: "123", ExpMonth: 1, ExpYear: 2030}
	charge := payment.Charge{Reference: "pay_ledger", Amount: 100, Currency: "usd", Card: card}
	ctx := context.Background()

	first, err := a.Charge(ctx, charge)
	require.NoError(t, err)
	assert.False(t, first.Replayed)
	second, err := b.Charge(ctx, charge)
	require.NoError(t, err)
	assert.True(t, second.Replayed, "another instance's processor recognises the reference")
	assert.Equal(t, first.ID, second.ID)
	assert.Equal(t, 1, a.Charges()+b.Charges(), "money moved once")
	assert.Equal(t, 1, ledgerEntries(t, table, "pay_ledger"))

	for name, edit := range map[string]func(*payment.Charge){
		"amount":   func(c *payment.Charge) { c.Amount = 101 },
		"currency": func(c *payment.Charge) { c.Currency = "eur" },
		"card":     func(c *payment.Charge) { c.Card.Number = "5555555555554444" },
		"expiry":   func(c *payment.Charge) { c.Card.ExpYear = 2031 },
	} {
		t.Run(name, func(t *testing.T) {
			other := charge
			edit(&other)
			_, err := b.Charge(ctx, other)
			assert.ErrorIs(t, err, payment.ErrReferenceReused)
		})
	}

	now = now.Add(time.Hour + time.Second)
	later, err := b.Charge(ctx, charge)
	require.NoError(t, err)
	assert.False(t, later.Replayed, "past its retention the reference is new again")
}

// TestLedgerFailureIs502: a processor that cannot record the charge did not charge; the service answers 502 and
// stores nothing, and the client's retry with the same key is safe.
func TestLedgerFailureIs502(t *testing.T) {
	h := newHarness(t, scope("scope-1"))
	h.svc = payment.New(h.tb.db(), h.tb.name, scope("scope-1"), func(o *payment.Options) {
		o.Processor = payment.NewSimulatedProcessor(func(o *payment.ProcessorOptions) {
			o.Ledger = payment.DynamoLedger{DB: ddbtest.Client(t), Table: "no-such-table"}
		})
	})
	problem(t, h.do(t, createEvent(t)), 502)
	assert.Empty(t, h.tb.writes)
}
