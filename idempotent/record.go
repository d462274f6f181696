package idempotent

import (
	"fmt"
	"time"
)

// Status is the state of an idempotency record.
type Status uint8

const (
	// StatusInProgress marks a key claimed by an invocation that has not finished yet.
	StatusInProgress Status = iota + 1
	// StatusCompleted marks a key whose response is recorded and is replayed to duplicates.
	StatusCompleted
)

// String returns the stored form of s: "INPROGRESS" or "COMPLETED".
func (s Status) String() string {
	switch s {
	case StatusInProgress:
		return "INPROGRESS"
	case StatusCompleted:
		return "COMPLETED"
	default:
		return fmt.Sprintf("Status(%d)", uint8(s))
	}
}

// ParseStatus is the inverse of Status.String. Stores use it to decode what they read.
func ParseStatus(s string) (Status, error) {
	switch s {
	case "INPROGRESS":
		return StatusInProgress, nil
	case "COMPLETED":
		return StatusCompleted, nil
	default:
		return 0, fmt.Errorf("idempotent: unknown record status %q", s)
	}
}

// Record is one idempotency record as a Store keeps it.
type Record struct {
	// ID is the storage key: a hex SHA-256 of the scope and the client's key. The raw key is never stored.
	ID string
	// Status is INPROGRESS while the claiming invocation runs, COMPLETED once its response is recorded.
	Status Status
	// Fingerprint identifies the request payload (see Fingerprint; records of earlier releases hold a bare hex
	// SHA-256, see LegacyFingerprint); a duplicate must carry the same one.
	Fingerprint string
	// Owner is the random token of the invocation holding the claim. Complete and Release are fenced by it.
	Owner string
	// LeaseEnd is when an INPROGRESS claim stops protecting the key (the claimant is presumed dead).
	LeaseEnd time.Time
	// ExpiresAt is the end of retention: from then on the record counts as absent.
	ExpiresAt time.Time
	// Response is the encoded response of a COMPLETED record. nil (not empty) means the store kept the record but
	// not its response (too large to store): a duplicate with the same payload gets ErrResponseUnavailable, and the
	// handler does not run again. The engine never records a nil response: an empty encoding is stored as empty.
	Response []byte
}

// Expired reports whether the record's retention has ended at now.
func (r *Record) Expired(now time.Time) bool { return !now.Before(r.ExpiresAt) }

// LeaseEnded reports whether r is INPROGRESS and its lease has ended at now.
func (r *Record) LeaseEnded(now time.Time) bool {
	return r.Status == StatusInProgress && !now.Before(r.LeaseEnd)
}

// Claimable reports whether a claim at now may replace r: r has expired, or it is an INPROGRESS record whose lease
// has ended and takeover is allowed.
func (r *Record) Claimable(now time.Time, takeover bool) bool {
	return r.Expired(now) || (takeover && r.LeaseEnded(now))
}
