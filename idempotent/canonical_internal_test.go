package idempotent

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCanonicalizerRelease: a pooled canonicaliser keeps each buffer up to its limit (64 KiB of bytes, or that
// many bytes' worth of entries) for the next fingerprint, and drops a larger one, so that one huge body does not
// pin its memory in the pool.
func TestCanonicalizerRelease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int // in elements
		set   func(c *canonicalizer, n int)
		kept  func(c *canonicalizer) bool
	}{
		{"buf", 65536, func(c *canonicalizer, n int) { c.buf = make([]byte, 0, n) }, func(c *canonicalizer) bool { return c.buf != nil }},
		{"tmp", 65536, func(c *canonicalizer, n int) { c.tmp = make([]byte, 0, n) }, func(c *canonicalizer) bool { return c.tmp != nil }},
		{"arena", 65536, func(c *canonicalizer, n int) { c.arena = make([]byte, 0, n) }, func(c *canonicalizer) bool { return c.arena != nil }},
		{"members", 2048, func(c *canonicalizer, n int) { c.members = make([]member, 0, n) }, func(c *canonicalizer) bool { return c.members != nil }},
		{"stack", 2048, func(c *canonicalizer, n int) { c.stack = make([]frame, 0, n) }, func(c *canonicalizer) bool { return c.stack != nil }},
		{"spans", 4096, func(c *canonicalizer, n int) { c.spans = make([]span, 0, n) }, func(c *canonicalizer) bool { return c.spans != nil }},
		{"reorders", 2048, func(c *canonicalizer, n int) { c.reorders = make([]reorder, 0, n) }, func(c *canonicalizer) bool { return c.reorders != nil }},
		{"folds", 8192, func(c *canonicalizer, n int) { c.folds = make([]uint64, 0, n) }, func(c *canonicalizer) bool { return c.folds != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{tc.limit, tc.limit + 1} {
				c := new(canonicalizer)
				tc.set(c, n)
				c.release()
				assert.Equal(t, n == tc.limit, tc.kept(c), "capacity %d", n)
			}
		})
	}
}
