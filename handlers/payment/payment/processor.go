package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
)

// Processor charges cards. Implementations must treat Charge.Reference as an idempotency key: a second charge
// with the same reference returns the first authorization instead of moving money again. Card processors offer
// exactly this (an idempotency key per request), and it is what closes the last window in which the service
// could charge twice: two invocations that both pass the "not yet paid" read charge with the same reference.
type Processor interface {
	Charge(ctx context.Context, c Charge) (Authorization, error)
}

// Charge is one request to the processor.
type Charge struct {
	Reference string // the payment ID; the processor's idempotency key
	Amount    int64  // minor units
	Currency  string // lower-case ISO 4217
	Card      Card
}

// Authorization is a successful charge.
type Authorization struct {
	ID string // the processor's reference for the charge; stored with the payment
}

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

// simulatedMemory bounds how many references the SimulatedProcessor remembers, so a warm Lambda instance's memory
// stays flat however many payments it serves; the oldest are forgotten first.
const simulatedMemory = 10_000

// SimulatedProcessor is an in-process Processor with no network: it approves every card except the test cards
// above, and it honours references as idempotency keys for the last 10,000 charges of the process (a real
// processor keeps them for a day or more, across all callers). It is safe for concurrent use.
type SimulatedProcessor struct {
	mu      sync.Mutex
	charged map[string]Authorization
	order   []string // references in charge order, for forgetting the oldest
	total   int      // distinct references ever charged
	calls   int
}

// NewSimulatedProcessor returns a processor with no charges.
func NewSimulatedProcessor() *SimulatedProcessor {
	return &SimulatedProcessor{charged: make(map[string]Authorization)}
}

// Charge approves or declines c.
func (p *SimulatedProcessor) Charge(ctx context.Context, c Charge) (Authorization, error) {
	if err := ctx.Err(); err != nil {
		return Authorization{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	switch c.Card.Number {
	case TestCardDeclined:
		return Authorization{}, &DeclineError{Code: "generic_decline", Message: "The card was declined."}
	case TestCardInsufficientFunds:
		return Authorization{}, &DeclineError{Code: "insufficient_funds", Message: "The card has insufficient funds."}
	case TestCardProcessingError:
		return Authorization{}, ErrProcessorUnavailable
	}
	if a, ok := p.charged[c.Reference]; ok {
		return a, nil
	}
	sum := sha256.Sum256([]byte("authorization\x00" + c.Reference))
	a := Authorization{ID: "auth_" + hex.EncodeToString(sum[:12])}
	p.charged[c.Reference] = a
	p.order = append(p.order, c.Reference)
	p.total++
	if len(p.order) > simulatedMemory {
		delete(p.charged, p.order[0])
		p.order = p.order[1:]
	}
	return a, nil
}

// Charges is the number of distinct references charged successfully (money moved), for tests.
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
