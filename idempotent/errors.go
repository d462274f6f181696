package idempotent

import (
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on with errors.Is. The apigw package maps each to an HTTP answer.
var (
	// ErrMissingKey: the route requires an idempotency key and the request has none (HTTP 400).
	ErrMissingKey = errors.New("idempotent: idempotency key required")
	// ErrInvalidKey: the key breaks the key grammar (HTTP 400). The error is a *KeyError.
	ErrInvalidKey = errors.New("idempotent: invalid idempotency key")
	// ErrInProgress: another invocation holds the key and its lease has not ended (HTTP 409), and WithWait, if
	// given, did not see it finish within its bound. The error is an *InProgressError carrying the lease end and a
	// Retry-After.
	ErrInProgress = errors.New("idempotent: a request with this key is in progress")
	// ErrPayloadMismatch: the key was used with another payload within retention (HTTP 422).
	ErrPayloadMismatch = errors.New("idempotent: idempotency key reused with a different payload")
	// ErrOutcomeUnknown: under LeaseRefuse, the invocation that held the key ended without completing or releasing
	// it, so whether its side effects happened is unknown (HTTP 409, not retryable with this key).
	ErrOutcomeUnknown = errors.New("idempotent: outcome of the earlier request with this key is unknown")
	// ErrRecordChanged: the record changed between two store calls. Stores return it from Claim when the
	// conflicting record vanished before it could be read; the engine retries a bounded number of times.
	ErrRecordChanged = errors.New("idempotent: record changed concurrently")
	// ErrFenced: Complete or Release was called by an invocation that no longer holds the claim.
	ErrFenced = errors.New("idempotent: claim is not held by this invocation")
	// ErrUnsupportedEffect: the store cannot commit an effect of this type atomically with the completion.
	ErrUnsupportedEffect = errors.New("idempotent: effect type not supported by this store")
	// ErrResponseUnavailable: the key's first request completed, but its response could not be kept (for example it
	// exceeded the store's item size), so a duplicate can be neither replayed nor run again (HTTP 409).
	ErrResponseUnavailable = errors.New("idempotent: the recorded response is not available for replay")
	// ErrEffectFailed: an effect's own condition failed, so neither the effects nor the completion were written.
	// The claim is released so a retry runs the handler again.
	ErrEffectFailed = errors.New("idempotent: effect condition failed; nothing was committed")
	// ErrPermanent: the store refused a request that no retry can fix (for example DynamoDB's ValidationException:
	// a malformed expression, an item over the size limit). A store wraps it into such failures, and the engine
	// then stops retrying the completion instead of spending its whole budget on it.
	ErrPermanent = errors.New("idempotent: the store refused the request; retrying cannot help")
)

// KeyError describes why a key is invalid. It wraps ErrInvalidKey.
type KeyError struct {
	// Reason is a short, client-safe explanation such as "longer than 255 characters".
	Reason string
}

func (e *KeyError) Error() string { return "idempotent: invalid idempotency key: " + e.Reason }

// Unwrap returns ErrInvalidKey.
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// InProgressError is returned while another invocation holds the key. It wraps ErrInProgress.
type InProgressError struct {
	// LeaseEnd is when the holder's lease ends; after it the key may be claimed again (LeaseReRun).
	LeaseEnd time.Time
	// RetryAfter is how long requests of the route take, as this engine observed them (a moving average of its
	// executions, claim to completion), rounded up to whole seconds: at least one second (also when none has been
	// observed yet), and never more than the time left until LeaseEnd.
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("idempotent: a request with this key is in progress; retry after %s", e.RetryAfter)
}

// Unwrap returns ErrInProgress.
func (e *InProgressError) Unwrap() error { return ErrInProgress }

// StoreError reports a failed Store call. Op is "claim", "complete", "release" or "get", or "decode" when a
// recorded response could not be decoded by the Codec (a record written by an incompatible version).
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string { return "idempotent: store " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// retryAfter rounds d up to whole seconds, with a floor of one second, as HTTP Retry-After needs.
func retryAfter(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
}
