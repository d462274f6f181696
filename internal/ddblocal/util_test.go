package ddblocal_test

import (
	"io"
	"sync"
)

// syncWriter lets the JVM's two output pipes write one buffer without a race.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
