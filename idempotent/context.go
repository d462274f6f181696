package idempotent

import (
	"context"
	"sync"
)

// Invocation describes the idempotent execution a handler is running in.
type Invocation struct {
	// ID is the record ID: the hex SHA-256 of the scope and the client's key. It is stable across retries of the
	// same request, so a handler can derive the IDs of what it creates from it (the example payment service does).
	ID string
	// Scope is the scope the key was bound to.
	Scope Scope
}

type invocationKey struct{}

// invocation is what the engine puts into the handler's context.
type invocation struct {
	Invocation
	mu      sync.Mutex
	effects []Effect
	closed  bool
}

// FromContext returns the invocation a handler runs in. ok is false outside an idempotent execution (no key on an
// optional route, idempotency disabled, or a context not made by the engine).
func FromContext(ctx context.Context) (inv Invocation, ok bool) {
	v, ok := ctx.Value(invocationKey{}).(*invocation)
	if !ok {
		return Invocation{}, false
	}
	return v.Invocation, true
}

// AddEffect asks the engine to commit effect in the same atomic write as the completed record, so the effect
// exists if and only if the response is recorded. The effect's type is defined by the store: with dynamostore it
// is a DynamoDB types.TransactWriteItem (see dynamostore.Put and friends). It returns false when ctx belongs to no
// idempotent execution (or the execution has already finished); the caller must then perform the write itself.
//
// If an effect's own condition fails, nothing is committed, the claim is released and the request fails with an
// error wrapping ErrEffectFailed.
func AddEffect(ctx context.Context, effect Effect) bool {
	v, ok := ctx.Value(invocationKey{}).(*invocation)
	if !ok {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return false
	}
	v.effects = append(v.effects, effect)
	return true
}

// takeEffects closes the invocation to further effects and returns those added.
func (v *invocation) takeEffects() []Effect {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	return v.effects
}
