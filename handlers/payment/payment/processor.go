package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// Processor charges cards. Implementations must treat Charge.Reference as an idempotency key, as card processors
// do: a second charge with the same reference and the same details returns the first authorization with Replayed
// set instead of moving money again, and one with other details fails with ErrReferenceReused. That is what keeps
// a payment from being charged twice when the service runs the request again: after a completion that failed or
// came too late, after a crash, or on another instance.
type Processor interface {
	Charge(ctx context.Context, c Charge) (Authorization, error)
}

// Charge is one request to the processor.
type Charge struct {
	Reference string // the processor's idempotency key: derived from the idempotency record's scoped ID
	Amount    int64  // minor units
	Currency  string // lower-case ISO 4217
	Card      Card
}

// Authorization is a successful charge.
type Authorization struct {
	ID string // the processor's reference for the charge; stored with the payment
	// Replayed: the reference had been charged before, with the same details; no money moved now. The service then
	// looks for the payment an earlier run of the request may have written.
	Replayed bool
}

// ErrReferenceReused: the reference was charged before with other details (amount, currency or card). Nothing
// was charged; answered 422 like any reuse of an idempotency key for another payment.
var ErrReferenceReused = errors.New("payment processor: reference already used for a different charge")

// ErrDeclined is matched (errors.Is) by every *DeclineError.
var ErrDeclined = errors.New("card declined")

// DeclineError is the processor refusing the card: a final answer for this card, answered 402.
type DeclineError struct {
	Code    string // machine-readable reason, e.g. "generic_decline", "insufficient_funds"
	Message string // safe to show to the customer
}

func (e *DeclineError) Error() string        { return "card declined: " + e.Code }
func (e *DeclineError) Is(target error) bool { return target == ErrDeclined }

// Test card numbers the SimulatedProcessor refuses, after the conventions card processors use for test mode.
const (
	TestCardDeclined          = "4000000000000002" // generic_decline
	TestCardInsufficientFunds = "4000000000009995" // insufficient_funds
	TestCardProcessingError   = "4000000000000119" // the processor fails (not a decline): answered 502
)

// ErrProcessorUnavailable is what the SimulatedProcessor returns for TestCardProcessingError.
var ErrProcessorUnavailable = errors.New("payment processor unavailable")

// simulatedMemory bounds how many references the in-process ledger remembers, so a warm Lambda instance's memory
// stays flat however many payments it serves; the oldest are forgotten first.
const simulatedMemory = 10_000

// Ledger is where the SimulatedProcessor keeps the charges it made, by reference: what a real processor keeps on
// its side. Record stores e unless the reference is already there, and then returns the entry stored first.
type Ledger interface {
	Record(ctx context.Context, e LedgerEntry) (existing *LedgerEntry, err error)
}

// LedgerEntry is one charge as the processor remembers it: enough to recognise a retry of it, no card number.
type LedgerEntry struct {
	Reference       string `dynamodbav:"reference"`
	AuthorizationID string `dynamodbav:"authorization_id"`
	Amount          int64  `dynamodbav:"amount"`
	Currency        string `dynamodbav:"currency"`
	Brand           string `dynamodbav:"brand"`
	Last4           string `dynamodbav:"last4"`
	ExpMonth        int    `dynamodbav:"exp_month"`
	ExpYear         int    `dynamodbav:"exp_year"`
	// Expiration is when the processor forgets the reference (epoch seconds, the table's TTL attribute).
	Expiration int64 `dynamodbav:"expiration"`
}

func (e LedgerEntry) sameCharge(o LedgerEntry) bool {
	return e.Amount == o.Amount && e.Currency == o.Currency && e.Brand == o.Brand && e.Last4 == o.Last4 &&
		e.ExpMonth == o.ExpMonth && e.ExpYear == o.ExpYear
}

// ProcessorOptions configure a SimulatedProcessor.
type ProcessorOptions struct {
	// Ledger keeps the charges. Default (nil): an in-process ledger of the last 10,000 references, which
	// de-duplicates only within one process; give every instance the same durable ledger (NewDynamoLedger) to
	// de-duplicate across instances, as a real processor does.
	Ledger Ledger
}

// SimulatedProcessor is a Processor with no network: it approves every card except the test cards above, and it
// honours references as idempotency keys through its Ledger. It is safe for concurrent use.
type SimulatedProcessor struct {
	ledger Ledger
	mu     sync.Mutex
	total  int // references this processor charged first (money moved)
	calls  int
}

// NewSimulatedProcessor returns a processor with no charges.
func NewSimulatedProcessor(optFns ...func(*ProcessorOptions)) *SimulatedProcessor {
	var o ProcessorOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Ledger == nil {
		o.Ledger = newMemLedger(simulatedMemory)
	}
	return &SimulatedProcessor{ledger: o.Ledger}
}

// Charge approves or declines c.
func (p *SimulatedProcessor) Charge(ctx context.Context, c Charge) (Authorization, error) {
	if err := ctx.Err(); err != nil {
		return Authorization{}, err
	}
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	switch c.Card.Number {
	case TestCardDeclined:
		return Authorization{}, &DeclineError{Code: "generic_decline", Message: "The card was declined."}
	case TestCardInsufficientFunds:
		return Authorization{}, &DeclineError{Code: "insufficient_funds", Message: "The card has insufficient funds."}
	case TestCardProcessingError:
		return Authorization{}, ErrProcessorUnavailable
	}
	sum := sha256.Sum256([]byte("authorization\x00" + c.Reference))
	e := LedgerEntry{
		Reference: c.Reference, AuthorizationID: "auth_" + hex.EncodeToString(sum[:12]),
		Amount: c.Amount, Currency: c.Currency, Brand: c.Card.Brand(), Last4: c.Card.Last4(),
		ExpMonth: c.Card.ExpMonth, ExpYear: c.Card.ExpYear,
	}
	old, err := p.ledger.Record(ctx, e)
	switch {
	case err != nil:
		return Authorization{}, fmt.Errorf("%w: %w", ErrProcessorUnavailable, err)
	case old == nil:
		p.mu.Lock()
		p.total++
		p.mu.Unlock()
		return Authorization{ID: e.AuthorizationID}, nil
	case !old.sameCharge(e):
		return Authorization{}, ErrReferenceReused
	default:
		return Authorization{ID: old.AuthorizationID, Replayed: true}, nil
	}
}

// Charges is the number of references this processor charged first (money moved), for tests. With a shared
// ledger, count the ledger's entries instead.
func (p *SimulatedProcessor) Charges() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Calls is the number of Charge calls, approved or not, for tests.
func (p *SimulatedProcessor) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// memLedger is the in-process Ledger: the last max references of this process.
type memLedger struct {
	mu      sync.Mutex
	max     int
	entries map[string]LedgerEntry
	order   []string // references in charge order, for forgetting the oldest
}

func newMemLedger(max int) *memLedger {
	return &memLedger{max: max, entries: make(map[string]LedgerEntry)}
}

func (l *memLedger) Record(_ context.Context, e LedgerEntry) (*LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.entries[e.Reference]; ok {
		return &old, nil
	}
	l.entries[e.Reference] = e
	l.order = append(l.order, e.Reference)
	if len(l.order) > l.max {
		delete(l.entries, l.order[0])
		l.order = l.order[1:]
	}
	return nil, nil
}
