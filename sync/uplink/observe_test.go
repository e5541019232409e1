package uplink

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// Config.ObserveAck sees each acked batch once, with its time from send to
// ack.
func TestObserveAck(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 30, store.Critical)
	var n, longest atomic.Int64
	f := start(t, db, Config{MaxEvents: 10, ObserveAck: func(d time.Duration) {
		n.Add(1)
		if int64(d) > longest.Load() {
			longest.Store(int64(d))
		}
	}})
	bs := f.pub.waitBatches(t, 3)
	time.Sleep(20 * time.Millisecond)
	ackAll(f, bs)
	waitAcked(t, f, 30)
	if n.Load() != 3 {
		t.Fatalf("observed %d acks, want 3", n.Load())
	}
	if d := time.Duration(longest.Load()); d < 20*time.Millisecond || d > 10*time.Second {
		t.Fatalf("ack latency %v", d)
	}
}
