package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/idemkit/idemkit/idempotent"
)

// Store keeps records in a map guarded by a mutex. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	records map[string]idempotent.Record
}

// New returns an empty Store.
func New() *Store {
	return &Store{records: make(map[string]idempotent.Record)}
}

var _ idempotent.Store = (*Store)(nil)

// Claim implements idempotent.Store.
func (s *Store) Claim(ctx context.Context, c idempotent.Claim) (*idempotent.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.records[c.Record.ID]; ok && !old.Claimable(c.Now, c.Takeover) {
		if old.Status == idempotent.StatusInProgress && old.Owner == c.Record.Owner {
			return nil, nil // this very claim, made before (see idempotent.Store)
		}
		return clone(old), nil
	}
	rec := c.Record
	rec.Status = idempotent.StatusInProgress
	rec.Response = nil
	s.records[rec.ID] = rec
	return nil, nil
}

// Complete implements idempotent.Store. The in-memory store cannot commit foreign writes atomically, so any effect
// is refused with idempotent.ErrUnsupportedEffect.
func (s *Store) Complete(ctx context.Context, rec idempotent.Record, effects []idempotent.Effect) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(effects) > 0 {
		return fmt.Errorf("memstore: %w: %T", idempotent.ErrUnsupportedEffect, effects[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.records[rec.ID]
	if !ok || old.Status != idempotent.StatusInProgress || old.Owner != rec.Owner {
		return fmt.Errorf("memstore: complete %s: %w", rec.ID, idempotent.ErrFenced)
	}
	rec.Status = idempotent.StatusCompleted
	rec.Response = bytes.Clone(rec.Response)
	s.records[rec.ID] = rec
	return nil
}

var _ idempotent.ClaimCompleter = (*Store)(nil)

// ClaimComplete implements idempotent.ClaimCompleter: the claim and the completion in one step under the lock. Like
// Complete, it refuses any effect with idempotent.ErrUnsupportedEffect and writes nothing then.
func (s *Store) ClaimComplete(ctx context.Context, c idempotent.Claim, effects []idempotent.Effect) (*idempotent.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(effects) > 0 {
		return nil, fmt.Errorf("memstore: %w: %T", idempotent.ErrUnsupportedEffect, effects[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.records[c.Record.ID]; ok && !old.Claimable(c.Now, c.Takeover) {
		if old.Status == idempotent.StatusCompleted && old.Owner == c.Record.Owner {
			return nil, nil // this very write, made before (see idempotent.ClaimCompleter)
		}
		return clone(old), nil
	}
	rec := c.Record
	rec.Status = idempotent.StatusCompleted
	rec.LeaseEnd = time.Time{}
	rec.Response = bytes.Clone(rec.Response)
	s.records[rec.ID] = rec
	return nil, nil
}

// Release implements idempotent.Store.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.records[id]
	if !ok {
		return nil // nothing of owner's remains
	}
	if old.Status != idempotent.StatusInProgress || old.Owner != owner {
		return fmt.Errorf("memstore: release %s: %w", id, idempotent.ErrFenced)
	}
	delete(s.records, id)
	return nil
}

// Get implements idempotent.Store.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (*idempotent.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[id]
	if !ok || rec.Expired(now) {
		return nil, nil
	}
	return clone(rec), nil
}

// Len returns the number of records held, expired ones included (like a DynamoDB table before its TTL sweep).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

func clone(r idempotent.Record) *idempotent.Record {
	r.Response = bytes.Clone(r.Response) // keeps nil apart from empty (see idempotent.Record.Response)
	return &r
}
