package idempotent

import (
	"context"
	"errors"
	"fmt"
)

// mergedAttempts bounds the merged writes of one request. A write is repeated when it met a concurrent one (a
// DynamoDB transaction conflict, after a jittered pause) or when the record it met turned out claimable; both end
// within a few attempts, as the concurrent write has committed or failed by then.
const mergedAttempts = 6

// runMerged runs fn first and then claims and completes the key in one store call with fn's effects (Spec.MergeClaim).
func runMerged[Out any](ctx context.Context, e *Engine, cc ClaimCompleter, req Request, id string, spec Spec[Out],
	fn func(context.Context) (Out, error), ev *Event) (Result[Out], error) {
	var zero Result[Out]
	began := e.cfg.clock.Now()
	inv := &invocation{Invocation: Invocation{ID: id, Scope: req.Scope}}
	out, err := func() (Out, error) {
		// Nothing is written before fn returns, so a panic has nothing to release.
		defer inv.takeEffects()
		return fn(context.WithValue(ctx, invocationKey{}, inv))
	}()
	effects := inv.takeEffects()
	ev.Outcome = OutcomeExecuted
	if err != nil {
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, err
	}
	if spec.Record != nil && !spec.Record(out) {
		if len(effects) > 0 {
			return zero, &StoreError{Op: "complete", Err: fmt.Errorf("%d effects added to a response the record policy does not record", len(effects))}
		}
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
	}
	data, err := spec.Codec.Encode(out)
	if err != nil {
		err = fmt.Errorf("encode response: %w", err)
		if len(effects) > 0 {
			return zero, &StoreError{Op: "complete", Err: err}
		}
		// fn wrote nothing and nothing was recorded: its answer stands, as a request without a key would get it.
		ev.StoreErr = &StoreError{Op: "complete", Err: err}
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
	}

	wctx, cancel := e.detached(ctx)
	defer cancel()
	takeover := e.cfg.leasePolicy == LeaseReRun
	waited := false
	for attempt := 0; attempt < mergedAttempts; attempt++ {
		if attempt > 0 {
			ev.Waits++
		}
		now := e.cfg.clock.Now()
		rec := Record{
			ID:          id,
			Status:      StatusCompleted,
			Fingerprint: req.Fingerprint,
			// A new owner per attempt: an attempt is a new write, not a retry of the same one (dynamostore derives the
			// transaction's idempotency token from it).
			Owner:     newOwnerToken(),
			ExpiresAt: now.Add(e.cfg.retention),
			Response:  recorded(data),
		}
		existing, err := cc.ClaimComplete(wctx, Claim{Record: rec, Now: now, Takeover: takeover}, effects)
		switch {
		case err == nil && existing == nil:
			ev.Recorded = true
			e.durations.observe(req.Scope, e.cfg.clock.Now().Sub(began))
			if e.cache != nil {
				e.cache.put(&rec, now)
			}
			return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
		case errors.Is(err, ErrRecordChanged):
			if serr := e.sleep(wctx, pause(attempt)); serr != nil {
				ev.Outcome = OutcomeStoreError
				return zero, &StoreError{Op: "complete", Err: err}
			}
			continue
		case errors.Is(err, ErrResponseUnavailable):
			ev.Outcome = OutcomeUnavailable
			return zero, err
		case errors.Is(err, ErrEffectFailed):
			// Nothing was written. fn answers the conflict itself, with AddEffect refusing (its direct path).
			return rerun(ctx, inv, fn)
		case errors.Is(err, ErrPermanent), errors.Is(err, ErrUnsupportedEffect):
			ev.Outcome = OutcomeStoreError
			return zero, &StoreError{Op: "complete", Err: err}
		case err != nil:
			// Whether the write was applied is unknown. If the record is ours, it was, effects included.
			if ours, _ := e.completedByOwner(wctx, rec); ours {
				ev.Recorded = true
				return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
			}
			// Either way a retry of the request is right: it replays if the write was applied, and runs again (the
			// effects with it) if it was not.
			ev.Outcome = OutcomeStoreError
			return zero, &StoreError{Op: "complete", Err: err}
		case existing.Claimable(now, takeover):
			continue
		}
		// Another request holds the key: this run's effects were not written, and its answer is the holder's.
		if !waited && e.shouldWait(existing, &req, now) {
			waited = true
			got, at, werr := e.await(ctx, id, existing, now, ev)
			if werr != nil {
				ev.Outcome = OutcomeStoreError
				return zero, werr
			}
			if got == nil || got.Claimable(at, takeover) {
				continue // the holder let go: commit this run's answer
			}
			existing, now = got, at
		}
		return decideDuplicate(e, existing, false, &req, spec, now, ev)
	}
	ev.Outcome = OutcomeStoreError
	return zero, &StoreError{Op: "complete", Err: fmt.Errorf("%w %d times in a row", ErrRecordChanged, mergedAttempts)}
}

// rerun asks fn again after its effects failed their own conditions in a merged write: the invocation is closed,
// so AddEffect returns false and fn performs and judges its writes itself. Its answer is not recorded.
func rerun[Out any](ctx context.Context, inv *invocation, fn func(context.Context) (Out, error)) (Result[Out], error) {
	closed := &invocation{Invocation: inv.Invocation, closed: true}
	out, err := fn(context.WithValue(ctx, invocationKey{}, closed))
	return Result[Out]{Value: out, Outcome: OutcomeExecuted}, err
}
