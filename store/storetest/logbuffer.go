package storetest

import (
	"bytes"
	"sync"
)

// LogBuffer is a log sink any goroutine may write while the test reads it:
// the one the tests of every package share, whether they capture a
// daemon's slog output or a subprocess's lines.
type LogBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
