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
