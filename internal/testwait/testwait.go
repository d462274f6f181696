// Package testwait bounds the waits of tests: a receive, a WaitGroup, a condition polled until it holds. A test
// that waits forever on a regression tells nothing and holds up the whole run until `go test` panics; these
// helpers fail the test with a message naming what it waited for.
//
// The bound is generous (the machine running the tests may be loaded: it is never a budget that real work must
// beat) and ends before the test binary's own deadline, so the failure message is what the run reports.
package testwait

import (
	"sync"
	"testing"
	"time"
)

// Generous is the longest a single wait lasts when the test has no nearer deadline.
const Generous = 5 * time.Minute

// Bound returns how long a wait in t may last: Generous, or less so that it ends (with a message) before the
// test binary's -timeout panics. It is never under a second.
func Bound(t testing.TB) time.Duration {
	d := Generous
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := tt.Deadline(); ok {
			left := time.Until(dl)
			left -= left / 10 // leave time to report and clean up
			d = min(d, left)
		}
	}
	return max(d, time.Second)
}

// Recv receives one value from ch, failing t when none arrives within Bound(t). what names the value in the
// failure message ("the stale handler's result").
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Bound(t))
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("testwait: gave up after %s waiting for %s", Bound(t).Round(time.Second), what)
		var zero T
		return zero
	}
}

// Group waits for wg, failing t when it is not done within Bound(t). The goroutines keep running: the test fails
// rather than hangs.
func Group(t testing.TB, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	Recv(t, done, what)
}

// Until polls cond every few milliseconds until it holds, failing t when it does not within Bound(t). Use it for
// state that something outside the test changes (a process exits, a line is logged); never to wait out a lease or
// an expiry (inject the clock instead).
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Bound(t))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testwait: gave up after %s waiting for %s", Bound(t).Round(time.Second), what)
			return // only a fake T returns from Fatalf
		}
		time.Sleep(10 * time.Millisecond)
	}
}
