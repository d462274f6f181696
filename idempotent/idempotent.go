package idempotent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Engine runs handlers at most once per idempotency key. Create one per function at init time with New and share
// it across invocations; it is safe for concurrent use.
type Engine struct {
	store  Store
	cfg    config
	logger *slog.Logger
	cache  *recordCache
	// durations feeds Retry-After with how long each route's requests take.
	durations *durations
}

// New returns an Engine that keeps its records in store. store may be nil only when idempotency is disabled
// (WithDisabled(true) or IDEMPOTENCY_DISABLED).
func New(store Store, opts ...Option) *Engine {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if store == nil && !cfg.disabled {
		panic("idempotent: New needs a Store")
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{store: store, cfg: cfg, logger: logger, cache: newRecordCache(cfg.cacheSize, cfg.cacheTTL),
		durations: newDurations()}
}

// Disabled reports whether idempotency is switched off for this engine.
func (e *Engine) Disabled() bool { return e.cfg.disabled }

// Now returns the engine clock's time. Adapters use it so that Retry-After agrees with the engine.
func (e *Engine) Now() time.Time { return e.cfg.clock.Now() }

// InvalidKey reports a key that an adapter refused for a reason the engine cannot see (several header values, an
// unreadable field): it is counted and logged as OutcomeInvalidKey like the engine's own refusals, and the returned
// *KeyError is the adapter's to answer.
func (e *Engine) InvalidKey(ctx context.Context, reason string) *KeyError {
	err := &KeyError{Reason: reason}
	e.observe(ctx, Event{Outcome: OutcomeInvalidKey, Err: err}, time.Time{})
	return err
}

// Request is what an adapter extracts from an event before the engine decides.
type Request struct {
	// Key is the client's idempotency key as received; empty when absent.
	Key string
	// KeyOptional lets a request without a key run the handler with no idempotency (OutcomePassThrough). When
	// false, a missing key is ErrMissingKey.
	KeyOptional bool
	// Scope binds the key to a caller and an operation.
	Scope Scope
	// Fingerprint identifies the payload (see Fingerprint). A duplicate with another fingerprint is refused.
	Fingerprint string
	// LegacyFingerprint, when set, computes the request's fingerprint as releases before version 2 did (see
	// LegacyFingerprint). It is called only for a record such a release wrote, whose fingerprint carries no
	// version, so that its retries still match; without it such a record is a mismatch.
	LegacyFingerprint LegacyFingerprinter
}

// LegacyFingerprinter computes a request's version 1 fingerprint on demand (see Request.LegacyFingerprint). An
// interface rather than a func, so that an adapter can pass a pointer it already holds instead of allocating a
// closure on every request.
type LegacyFingerprinter interface {
	LegacyFingerprint() string
}

// LegacyFingerprintFunc adapts a function to LegacyFingerprinter.
type LegacyFingerprintFunc func() string

// LegacyFingerprint calls f.
func (f LegacyFingerprintFunc) LegacyFingerprint() string { return f() }

// Codec turns a handler's result into the bytes a record keeps, and back for replays. Replays must be faithful:
// Decode(Encode(v)) must answer exactly as v would.
type Codec[Out any] interface {
	Encode(Out) ([]byte, error)
	Decode([]byte) (Out, error)
}

// JSONCodec encodes results with encoding/json.
type JSONCodec[Out any] struct{}

// Encode marshals v as JSON.
func (JSONCodec[Out]) Encode(v Out) ([]byte, error) { return json.Marshal(v) }

// Decode unmarshals JSON into a new Out.
func (JSONCodec[Out]) Decode(b []byte) (Out, error) {
	var v Out
	err := json.Unmarshal(b, &v)
	return v, err
}

// Spec tells the engine how to record one handler type's results.
type Spec[Out any] struct {
	// Codec encodes results for the store. Nil means JSONCodec.
	Codec Codec[Out]
	// Record decides whether a successful result is recorded for replay. When it returns false the claim is
	// released, so the same key can be used again (for example after a 400 the client corrects). Nil records every
	// result. Handler errors and panics are never recorded.
	Record func(Out) bool
	// MergeClaim runs the handler before anything is written and then claims and completes the key in one store
	// call together with the handler's effects (ClaimCompleter; with dynamostore one TransactWriteItems), so a first
	// request costs one call instead of two. Of concurrent first requests exactly one commits; the others replay
	// its answer. Default false: claim first, then run the handler.
	//
	// Safe only when every side effect of the handler is a store write handed over with AddEffect and the handler
	// calls nothing outside (no other service, no write of its own): nothing protects the handler itself from
	// running once per concurrent request, only its effects commit once. When an effect's own condition fails,
	// nothing was written and the handler is asked once more, with AddEffect returning false, so it writes itself
	// and answers the conflict as it would without a key; that answer is not recorded. A store without the
	// capability is used in the claim-first way.
	MergeClaim bool
}

// Result is the answer of Run.
type Result[Out any] struct {
	// Value is the handler's result, or the recorded one when Outcome is OutcomeReplayed.
	Value Out
	// Outcome is OutcomeExecuted, OutcomeReplayed or OutcomePassThrough.
	Outcome Outcome
}

// Replayed reports whether Value was replayed from a record.
func (r Result[Out]) Replayed() bool { return r.Outcome == OutcomeReplayed }

// Run executes fn at most once for req's key within the retention period and answers duplicates from the record.
//
// The errors it returns itself, to branch on with errors.Is: ErrMissingKey, ErrInvalidKey (*KeyError),
// ErrInProgress (*InProgressError), ErrPayloadMismatch, ErrOutcomeUnknown, ErrResponseUnavailable, ErrEffectFailed
// and *StoreError. With WithWait, a request that finds its key held by a running one first waits for its answer
// (see WithWait). With Spec.MergeClaim, fn runs before the key is claimed (see there). Any
// other error is fn's own, returned unchanged; the claim is then released so a retry runs fn again. A panic in fn
// releases the claim and is re-raised.
func Run[Out any](ctx context.Context, e *Engine, req Request, spec Spec[Out], fn func(context.Context) (Out, error)) (Result[Out], error) {
	if spec.Codec == nil {
		spec.Codec = JSONCodec[Out]{}
	}
	start := e.cfg.clock.Now()
	ev := Event{}
	defer func() { e.observe(ctx, ev, start) }()
	res, err := run(ctx, e, req, spec, fn, start, &ev)
	ev.Err = err
	return res, err
}

// run decides and runs the request; start is when Run began, which also serves as the instant of the cache
// lookup and of the first claim.
func run[Out any](ctx context.Context, e *Engine, req Request, spec Spec[Out], fn func(context.Context) (Out, error), start time.Time, ev *Event) (Result[Out], error) {
	var zero Result[Out]
	if e.cfg.disabled || (req.Key == "" && req.KeyOptional) {
		ev.Outcome = OutcomePassThrough
		v, err := fn(ctx)
		return Result[Out]{Value: v, Outcome: OutcomePassThrough}, err
	}
	if req.Key == "" {
		ev.Outcome = OutcomeMissingKey
		return zero, ErrMissingKey
	}
	if err := ValidateKey(req.Key); err != nil {
		ev.Outcome = OutcomeInvalidKey
		return zero, err
	}
	id := req.Scope.ID(req.Key)
	ev.ID = id

	if e.cache != nil {
		if rec := e.cache.get(id, start); rec != nil {
			return decideDuplicate(e, rec, true, &req, spec, start, ev)
		}
	}

	if spec.MergeClaim {
		if cc, ok := e.store.(ClaimCompleter); ok {
			return runMerged(ctx, e, cc, req, id, spec, fn, ev)
		}
	}

	takeover := e.cfg.leasePolicy == LeaseReRun
	waited := false
	attempts := e.cfg.maxAttempts
	for attempt := 0; attempt < attempts; attempt++ {
		now := start
		if attempt > 0 {
			now = e.cfg.clock.Now()
		}
		rec := Record{
			ID:          id,
			Status:      StatusInProgress,
			Fingerprint: req.Fingerprint,
			Owner:       newOwnerToken(),
			LeaseEnd:    e.leaseEnd(ctx, now),
			ExpiresAt:   now.Add(e.cfg.retention),
		}
		existing, err := e.store.Claim(ctx, Claim{Record: rec, Now: now, Takeover: takeover})
		switch {
		case errors.Is(err, ErrRecordChanged):
			continue
		case errors.Is(err, ErrResponseUnavailable):
			ev.Outcome = OutcomeUnavailable
			return zero, err
		case err != nil:
			ev.Outcome = OutcomeStoreError
			return zero, &StoreError{Op: "claim", Err: err}
		case existing == nil:
			ev.Outcome = OutcomeExecuted
			return execute(ctx, e, req, rec, spec, fn, ev)
		case existing.Claimable(now, takeover):
			// The store judged the record live at a slightly different instant; claim again.
			continue
		}
		if !waited && e.shouldWait(existing, &req, now) {
			waited = true
			got, at, err := e.await(ctx, id, existing, now, ev)
			if err != nil {
				ev.Outcome = OutcomeStoreError
				return zero, err
			}
			if got == nil || got.Claimable(at, takeover) {
				attempts++ // the holder released the key or its lease ended: claim it, with an attempt of its own
				continue
			}
			existing, now = got, at
		}
		return decideDuplicate(e, existing, false, &req, spec, now, ev)
	}
	ev.Outcome = OutcomeStoreError
	return zero, &StoreError{Op: "claim", Err: fmt.Errorf("%w %d times in a row", ErrRecordChanged, e.cfg.maxAttempts)}
}

// decideDuplicate answers a request whose key is held by a live record; cached says rec came from the local
// cache, which then need not be told about it again.
func decideDuplicate[Out any](e *Engine, rec *Record, cached bool, req *Request, spec Spec[Out], now time.Time, ev *Event) (Result[Out], error) {
	var zero Result[Out]
	if !req.matches(rec.Fingerprint) {
		ev.Outcome = OutcomeMismatch
		return zero, ErrPayloadMismatch
	}
	if rec.Status == StatusCompleted {
		if rec.Response == nil {
			// Kept without its response (see Record.Response). Stores answer a claim meeting such a record with
			// ErrResponseUnavailable themselves when the fingerprints are equal; this is the record a wait read, or
			// one whose fingerprint only the request's LegacyFingerprint matches.
			ev.Outcome = OutcomeUnavailable
			return zero, fmt.Errorf("idempotent: record %s was kept without its response: %w", rec.ID, ErrResponseUnavailable)
		}
		v, err := spec.Codec.Decode(rec.Response)
		if err != nil {
			ev.Outcome = OutcomeStoreError
			return zero, &StoreError{Op: "decode", Err: err}
		}
		if !cached {
			e.cache.put(rec, now)
		}
		ev.Outcome = OutcomeReplayed
		return Result[Out]{Value: v, Outcome: OutcomeReplayed}, nil
	}
	if rec.LeaseEnded(now) {
		ev.Outcome = OutcomeUnknown
		return zero, ErrOutcomeUnknown
	}
	ev.Outcome = OutcomeInProgress
	return zero, e.inProgress(rec, req.Scope, now)
}

// recorded is data as a record holds it: never nil, because a nil Response means the response was not kept.
func recorded(data []byte) []byte {
	if data == nil {
		return []byte{}
	}
	return data
}

// matches reports whether stored, a record's fingerprint, is r's: equal to r.Fingerprint, or, for a record of
// version 1, to r.LegacyFingerprint, computed only then.
func (r *Request) matches(stored string) bool {
	if stored == r.Fingerprint {
		return true
	}
	return r.LegacyFingerprint != nil && IsLegacyFingerprint(stored) && stored == r.LegacyFingerprint.LegacyFingerprint()
}

// execute runs fn under the claim rec and records or releases the outcome.
func execute[Out any](ctx context.Context, e *Engine, req Request, rec Record, spec Spec[Out], fn func(context.Context) (Out, error), ev *Event) (Result[Out], error) {
	var zero Result[Out]
	began := e.cfg.clock.Now()
	inv := &invocation{Invocation: Invocation{ID: rec.ID, Scope: req.Scope}}
	hctx := context.WithValue(ctx, invocationKey{}, inv)

	out, err := func() (out Out, err error) {
		defer func() {
			if p := recover(); p != nil {
				inv.takeEffects()
				ev.StoreErr = e.release(ctx, rec)
				panic(p)
			}
		}()
		return fn(hctx)
	}()
	effects := inv.takeEffects()
	if err != nil {
		ev.StoreErr = e.release(ctx, rec)
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, err
	}
	if spec.Record != nil && !spec.Record(out) {
		if len(effects) > 0 {
			// The handler asked for writes that only commit with a recorded response; there is none to commit them
			// with, so they are dropped and the request fails rather than pretending they happened.
			ev.StoreErr = e.release(ctx, rec)
			return zero, &StoreError{Op: "complete", Err: fmt.Errorf("%d effects added to a response the record policy does not record", len(effects))}
		}
		ev.StoreErr = e.release(ctx, rec)
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
	}

	data, err := spec.Codec.Encode(out)
	if err != nil {
		err = fmt.Errorf("encode response: %w", err)
		if len(effects) > 0 {
			ev.StoreErr = e.release(ctx, rec)
			return zero, &StoreError{Op: "complete", Err: err}
		}
		// The handler's side effects happened; its response is true. Keep the claim until the lease ends rather
		// than releasing it and inviting a second execution.
		ev.StoreErr = &StoreError{Op: "complete", Err: err}
		return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
	}
	now := e.cfg.clock.Now()
	done := rec
	done.Status = StatusCompleted
	done.Response = recorded(data)
	done.LeaseEnd = time.Time{}
	done.ExpiresAt = now.Add(e.cfg.retention)

	if err := e.complete(ctx, done, effects); err != nil {
		switch {
		case errors.Is(err, ErrEffectFailed):
			// Nothing was committed: free the key so a retry runs the handler again.
			ev.StoreErr = e.release(ctx, rec)
			return zero, err
		case len(effects) > 0:
			committed, serr := e.releaseUncertain(ctx, rec, err)
			if !committed {
				ev.StoreErr = serr
				return zero, &StoreError{Op: "complete", Err: err}
			}
			// The transaction committed after all, effects included: the response is recorded (below).
		default:
			ev.StoreErr = &StoreError{Op: "complete", Err: err}
			return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
		}
	}
	ev.Recorded = true
	e.durations.observe(req.Scope, e.cfg.clock.Now().Sub(began))
	if e.cache != nil {
		// A copy, taken only here, keeps done itself off the heap when there is no cache.
		cached := done
		e.cache.put(&cached, now)
	}
	return Result[Out]{Value: out, Outcome: OutcomeExecuted}, nil
}

// complete records rec, retrying transient store failures within the completion budget. The budget ignores the
// request context's cancellation (the handler's work is done and must be recorded) but not its deadline.
func (e *Engine) complete(ctx context.Context, rec Record, effects []Effect) error {
	cctx, cancel := e.detached(ctx)
	defer cancel()
	backoff := 20 * time.Millisecond
	for {
		err := e.store.Complete(cctx, rec, effects)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrFenced) {
			// This attempt, an earlier one or a transport-level retry under it may have committed before its
			// answer was lost; if the record is ours and COMPLETED, it did. A fence failure is rare, so the extra
			// read costs nothing on the common path.
			if ours, _ := e.completedByOwner(cctx, rec); ours {
				return nil
			}
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrEffectFailed) || errors.Is(err, ErrUnsupportedEffect) ||
			errors.Is(err, ErrPermanent) {
			return err
		}
		timer := time.NewTimer(backoff)
		select {
		case <-cctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		backoff *= 2
	}
}

// completedByOwner reports whether the record rec.ID is COMPLETED and held by rec.Owner: a completion of this claim
// committed, whatever answer it gave. Owner tokens are random per claim, so no other invocation writes one.
func (e *Engine) completedByOwner(ctx context.Context, rec Record) (bool, error) {
	got, err := e.store.Get(ctx, rec.ID, e.cfg.clock.Now())
	if err != nil {
		return false, &StoreError{Op: "get", Err: err}
	}
	return got != nil && got.Status == StatusCompleted && got.Owner == rec.Owner, nil
}

// releaseUncertain releases the claim rec after its completion with effects failed with err, so that a retry can
// re-run a handler whose writes are conditional. Whether the effects committed is unknown: the release is fenced,
// and when it meets the fence the record is read. If it is COMPLETED by rec.Owner, the transaction committed and
// only its answer was lost, and releaseUncertain reports committed. Otherwise it returns the failure to log: the
// completion's, joined with the release's and the read's when they failed too.
func (e *Engine) releaseUncertain(ctx context.Context, rec Record, err error) (committed bool, storeErr error) {
	cerr := &StoreError{Op: "complete", Err: err}
	rerr := e.release(ctx, rec)
	if rerr == nil {
		return false, cerr
	}
	if !errors.Is(rerr, ErrFenced) {
		return false, errors.Join(cerr, rerr)
	}
	gctx, cancel := e.detached(ctx)
	defer cancel()
	ours, gerr := e.completedByOwner(gctx, rec)
	if ours {
		return true, nil
	}
	return false, errors.Join(cerr, rerr, gerr)
}

// release frees the claim after a handler error, a panic or an unrecorded response. A failure is returned for
// logging only: the key then stays claimed until its lease ends, which is safe.
func (e *Engine) release(ctx context.Context, rec Record) error {
	rctx, cancel := e.detached(ctx)
	defer cancel()
	if err := e.store.Release(rctx, rec.ID, rec.Owner); err != nil {
		return &StoreError{Op: "release", Err: err}
	}
	return nil
}

// detached returns a context that survives ctx's cancellation, bounded by the completion timeout and by ctx's
// deadline when it has one.
func (e *Engine) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	budget := e.cfg.completeTime
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < budget {
			budget = max(left, 100*time.Millisecond)
		}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), budget)
}

// leaseEnd is when a claim made at now stops protecting its key: the invocation's deadline (Lambda's remaining
// time) plus the margin, or the default lease when the context has no deadline. The remaining time is measured on
// the wall clock and added to the engine clock, so an injected clock stays consistent.
func (e *Engine) leaseEnd(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return now.Add(max(time.Until(dl), 0) + e.cfg.leaseMargin)
	}
	return now.Add(e.cfg.lease)
}

func newOwnerToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
