package idempotenttest

import (
	"context"
	"sync"
	"time"
)

// Clock is a manual clock for tests: time moves only when the test says so. It is safe for concurrent use and
// satisfies idempotent.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Sleep moves the clock forward by d instead of waiting, and returns at once (with ctx's error if ctx has ended),
// so code that backs off or waits through an idempotent.Sleeper runs without delay in tests while its instants
// still advance. It satisfies idempotent.Sleeper.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}
