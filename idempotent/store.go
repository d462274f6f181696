package idempotent

import (
	"context"
	"time"
)

// Store persists idempotency records. Implementations must be safe for concurrent use and make each method one
// atomic operation: the engine's guarantees are exactly as strong as the store's conditional writes.
// The package idempotenttest holds a conformance suite that every implementation should pass.
type Store interface {
	// Claim creates c.Record (status INPROGRESS) unless a live record holds c.Record.ID. A record is not live when
	// it has expired at c.Now, or when it is INPROGRESS, its lease has ended at c.Now and c.Takeover is set.
	//
	// On success Claim returns (nil, nil). When a live record holds the ID it returns that record and a nil error.
	// When the conflicting record vanished before it could be read, it returns ErrRecordChanged so the caller can
	// try again. When the live record is COMPLETED with the same fingerprint but its response was not kept, it
	// returns an error wrapping ErrResponseUnavailable. Any other failure is returned as an error and nothing is known to have been written.
	//
	// A live INPROGRESS record held by c.Record.Owner is this very claim, written by an earlier attempt of the
	// same write whose answer was lost (a transport-level retry): owner tokens are random per claim, so no one
	// else holds it. Claim then succeeds and returns (nil, nil).
	Claim(ctx context.Context, c Claim) (*Record, error)

	// Complete replaces the INPROGRESS record rec.ID owned by rec.Owner with rec (status COMPLETED), together
	// with effects in one atomic write. When the record is not INPROGRESS or has another owner, nothing is
	// written and the error wraps ErrFenced. Effects are store-specific writes (see AddEffect); a store that
	// cannot commit a given effect returns an error wrapping ErrUnsupportedEffect and writes nothing. A failure
	// that no retry can fix should wrap ErrPermanent, so that the engine does not retry it.
	Complete(ctx context.Context, rec Record, effects []Effect) error

	// Release deletes the INPROGRESS record id if owner holds it. When there is no record id, nothing of owner's
	// remains (an earlier attempt of the same delete may have applied, its answer lost) and Release returns nil.
	// When the record is COMPLETED or held by another owner, nothing changes and the error wraps ErrFenced.
	Release(ctx context.Context, id, owner string) error

	// Get returns the record id with a strongly consistent read, or nil when it is absent or expired at now.
	Get(ctx context.Context, id string, now time.Time) (*Record, error)
}

// Claim is the input of Store.Claim.
type Claim struct {
	// Record is the INPROGRESS record to create. Its Owner fences later Complete and Release calls.
	Record Record
	// Now is the instant at which expiry and leases are judged.
	Now time.Time
	// Takeover allows replacing an INPROGRESS record whose lease has ended (LeaseReRun). When false such a
	// record stays until it expires (LeaseRefuse).
	Takeover bool
}

// Effect is a write a store commits atomically with a completion, such as a DynamoDB TransactWriteItem for the
// dynamostore package. Its concrete type is defined by the store.
type Effect any

// ClaimCompleter is a Store capability the engine discovers by type assertion: the claim merged into the
// completion, for handlers whose only side effects are effects handed to the store (see Spec.MergeClaim). With it
// a first request costs one store call instead of two.
type ClaimCompleter interface {
	// ClaimComplete writes c.Record (status COMPLETED, its Response set) together with effects in one atomic write,
	// unless a live record holds c.Record.ID; a record is live as for Claim (not expired at c.Now, and not an
	// INPROGRESS record whose lease has ended at c.Now when c.Takeover is set).
	//
	// On success it returns (nil, nil). When a live record holds the ID, nothing is written, effects included, and
	// it returns that record and a nil error; a COMPLETED record held by c.Record.Owner is this very write, applied
	// by an earlier attempt whose answer was lost, and counts as success. When the conflicting record vanished
	// before it could be read, or a concurrent write to the record made the store give up (a DynamoDB transaction
	// conflict), it returns ErrRecordChanged and nothing was written. When the live record is COMPLETED with the same
	// fingerprint but its response was not kept, the error wraps ErrResponseUnavailable. When an effect's own
	// condition failed while the ID was free, the error wraps ErrEffectFailed and nothing was written. Effects the
	// store cannot commit give ErrUnsupportedEffect as in Complete, and failures no retry can fix wrap ErrPermanent.
	// Any other failure leaves unknown whether the write was applied.
	ClaimComplete(ctx context.Context, c Claim, effects []Effect) (*Record, error)
}
