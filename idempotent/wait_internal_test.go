package idempotent

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestPause: the n-th pause is in the upper half of 20 ms doubled n times, capped at 320 ms, and its jitter spreads.
func TestPause(t *testing.T) {
	for n, nominal := range []time.Duration{20, 40, 80, 160, 320, 320, 320, 320} {
		nominal *= time.Millisecond
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := pause(n)
				assert.GreaterOrEqual(t, d, nominal/2)
				assert.LessOrEqual(t, d, nominal)
				seen[d] = true
			}
			assert.Greater(t, len(seen), 1, "jittered")
		})
	}
}

// TestDurationsBounded: the durations of at most 256 routes are kept (a Function URL's route is a raw path a client
// chooses), the least recently used dropped first.
func TestDurationsBounded(t *testing.T) {
	d := newDurations()
	for i := range 300 {
		d.observe(Scope{Method: "POST", Route: fmt.Sprint("/r/", i)}, time.Second)
	}
	assert.Equal(t, 256, d.lru.Len())
	assert.Zero(t, d.typical(Scope{Method: "POST", Route: "/r/43"}))
	assert.Equal(t, time.Second, d.typical(Scope{Method: "POST", Route: "/r/44"}))
}
