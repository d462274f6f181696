package testwait_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/idemkit/idemkit/internal/testwait"
)

// fakeT records a Fatalf instead of ending the goroutine, and has a near deadline so the bound is short.
type fakeT struct {
	testing.TB
	deadline time.Time
	failed   string
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Deadline() (time.Time, bool)       { return f.deadline, true }
func (f *fakeT) Fatalf(format string, args ...any) { f.failed = format }

func TestBound(t *testing.T) {
	near := &fakeT{deadline: time.Now().Add(20 * time.Second)}
	assert.InDelta(t, float64(18*time.Second), float64(testwait.Bound(near)), float64(time.Second), "nine tenths of what is left")
	far := &fakeT{deadline: time.Now().Add(time.Hour)}
	assert.Equal(t, testwait.Generous, testwait.Bound(far))
	past := &fakeT{deadline: time.Now().Add(-time.Minute)}
	assert.Equal(t, time.Second, testwait.Bound(past), "never under a second")
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	assert.Equal(t, 7, testwait.Recv(t, ch, "seven"))

	ft := &fakeT{deadline: time.Now()} // bound: one second
	assert.Equal(t, 0, testwait.Recv(ft, make(chan int), "nothing"))
	assert.Contains(t, ft.failed, "waiting for")
}

func TestGroup(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	go wg.Done()
	testwait.Group(t, &wg, "one goroutine")

	ft := &fakeT{deadline: time.Now()}
	var stuck sync.WaitGroup
	stuck.Add(1)
	testwait.Group(ft, &stuck, "a goroutine that never ends")
	assert.NotEmpty(t, ft.failed)
	stuck.Done()
}

func TestUntil(t *testing.T) {
	n := 0
	testwait.Until(t, "three polls", func() bool { n++; return n == 3 })
	assert.Equal(t, 3, n)

	ft := &fakeT{deadline: time.Now()}
	testwait.Until(ft, "never", func() bool { return false })
	assert.NotEmpty(t, ft.failed)
}
