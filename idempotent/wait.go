package idempotent

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Waiting for a running request's answer (WithWait).
const (
	// waitFirst is the first pause before reading the record again; the pauses double up to waitCap. A fast route
	// (a few DynamoDB writes) finishes within tens of milliseconds, so the first reads come soon and the later ones
	// space out, which keeps the reads of a long wait few.
	waitFirst = 20 * time.Millisecond
	waitCap   = 320 * time.Millisecond
	// waitReserve is kept free before the request's deadline: the time to answer after the last read.
	waitReserve = 250 * time.Millisecond
)

// pause returns the n-th pause (from 0) of the wait and of retries after a concurrent write: waitFirst doubled n
// times up to waitCap, of which the second half is random ("equal jitter"), so that duplicates that arrived
// together do not read together.
func pause(n int) time.Duration {
	d := waitCap
	if n < 5 {
		d = min(waitFirst<<n, waitCap)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// sleep pauses d on the engine's clock: through it when it is a Sleeper, else on a real timer.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if s, ok := e.cfg.clock.(Sleeper); ok {
		return s.Sleep(ctx, d)
	}
	return sleep(ctx, d)
}

// shouldWait reports whether a request meeting rec at now waits for it: waiting is on, rec is a running claim
// for the same payload (another payload is answered at once), and its lease has not ended.
func (e *Engine) shouldWait(rec *Record, req *Request, now time.Time) bool {
	return e.cfg.wait > 0 && rec.Status == StatusInProgress && !rec.LeaseEnded(now) && req.matches(rec.Fingerprint)
}

// await waits for the running claim held on id to end, reading the record consistently after each pause. It returns
// the record that ended the wait and the instant it was read at: COMPLETED, INPROGRESS with an ended lease, nil
// when the key was released or expired, or still INPROGRESS when the bound or the deadline came first. Every read
// is counted in ev.Waits. A failed read is a *StoreError.
func (e *Engine) await(ctx context.Context, id string, held *Record, now time.Time, ev *Event) (*Record, time.Time, error) {
	waited := time.Duration(0)
	for n := 0; ; n++ {
		d := pause(n)
		// The bound counts the planned pauses, not clock readings, so the wait ends even under a clock that does not
		// move while the engine sleeps.
		if waited+d > e.cfg.wait {
			return held, now, nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl)-waitReserve < d {
			return held, now, nil
		}
		if err := e.sleep(ctx, d); err != nil {
			return held, now, nil // the request ended; answer what is known
		}
		waited += d
		now = e.cfg.clock.Now()
		ev.Waits++
		got, err := e.store.Get(ctx, id, now)
		if err != nil {
			return nil, now, &StoreError{Op: "get", Err: err}
		}
		if got == nil || got.Status == StatusCompleted || got.LeaseEnded(now) {
			return got, now, nil
		}
		held = got
	}
}

// durations keeps how long executions of each route take on this instance, for Retry-After.
type durations struct {
	lru *lru.Cache[routeID, *atomic.Int64]
}

// routeID names a route: a struct rather than a joined string, so looking it up allocates nothing.
type routeID struct{ method, route string }

// routesKept bounds the routes whose durations are kept: routes are templates, but a Function URL's route is its
// raw path, which a client chooses.
const routesKept = 256

func newDurations() *durations {
	c, _ := lru.New[routeID, *atomic.Int64](routesKept) // fails only for a size <= 0
	return &durations{lru: c}
}

func routeKey(s Scope) routeID { return routeID{s.Method, s.Route} }

// observe folds d into the route's moving average (weight 1/4 for the newest), so a slow request shows at once
// while one outlier fades after a few requests.
func (t *durations) observe(s Scope, d time.Duration) {
	k := routeKey(s)
	v, ok := t.lru.Get(k)
	if !ok {
		v = new(atomic.Int64)
		v.Store(int64(d))
		prev, found, _ := t.lru.PeekOrAdd(k, v)
		if !found {
			return
		}
		v = prev
	}
	for {
		old := v.Load()
		if v.CompareAndSwap(old, old+(int64(d)-old)/4) {
			return
		}
	}
}

// typical returns the route's moving average, or 0 when this instance has not completed one yet.
func (t *durations) typical(s Scope) time.Duration {
	if v, ok := t.lru.Get(routeKey(s)); ok {
		return time.Duration(v.Load())
	}
	return 0
}

// inProgress is the answer to a request that finds its key held by a running claim: Retry-After is how long the
// route's requests take on this instance (rounded up to whole seconds, at least one), never more than what is left
// of the holder's lease, after which the key can be claimed again.
func (e *Engine) inProgress(rec *Record, scope Scope, now time.Time) *InProgressError {
	left := rec.LeaseEnd.Sub(now)
	d := min(e.durations.typical(scope), left)
	return &InProgressError{LeaseEnd: rec.LeaseEnd, RetryAfter: retryAfter(d)}
}
