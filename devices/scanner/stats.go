package scanner

import (
	"maps"
	"sync"
	"time"
)

// Stats is what a technician needs to see of one port. It never holds a
// scanned code: codes can be loyalty numbers, which are personal data.
type Stats struct {
	Port      string // Config.Name
	Path      string // Config.Path
	Connected bool   // the port is open now

	Frames  uint64            // good frames read (after debouncing), Dropped included
	Rejects map[Reason]uint64 // every reject reason, zeros included
	Dropped uint64            // good frames lost because the handler fell behind, or queued at shutdown

	Reopens      uint64 // successful opens after the first
	OpenFailures uint64 // failed attempts to open the port

	LastFrame   time.Time // when the last good frame arrived; zero if none yet
	LastError   string    // the last open or read error; empty if none yet
	LastErrorAt time.Time
}

// counters is the live form of Stats, written by the read loop and read by
// Stats from any goroutine.
type counters struct {
	mu sync.Mutex // guards every field below
	s  Stats
	// opened says the port was opened once already, so the next open is a
	// reopen.
	opened bool
}

func newCounters(cfg Config) *counters {
	c := &counters{s: Stats{Port: cfg.Name, Path: cfg.Path, Rejects: make(map[Reason]uint64)}}
	for r := Accepted + 1; r < numReasons; r++ {
		c.s.Rejects[r] = 0
	}
	return c
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Rejects = maps.Clone(c.s.Rejects)
	return s
}

func (c *counters) frame(f Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.OK() {
		c.s.Frames++
		c.s.LastFrame = f.At
		return
	}
	c.s.Rejects[f.Reason]++
}

func (c *counters) dropped(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Dropped += uint64(n)
}

// open records a successful open and reports whether it was a reopen.
func (c *counters) open() (reopen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	reopen = c.opened
	if reopen {
		c.s.Reopens++
	}
	c.opened = true
	c.s.Connected = true
	return reopen
}

func (c *counters) openFailed(err error, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.OpenFailures++
	c.s.LastError, c.s.LastErrorAt = err.Error(), at
}

// closed records the end of a connection; err is why, nil at shutdown.
func (c *counters) closed(err error, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Connected = false
	if err != nil {
		c.s.LastError, c.s.LastErrorAt = err.Error(), at
	}
}
