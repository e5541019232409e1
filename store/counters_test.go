package store

import (
	"context"
	"testing"
)

// Two commits' writers may publish their counters in either order; the
// later commit's stay.
func TestCountersPublishedInCommitOrder(t *testing.T) {
	db := &DB{}
	db.publishCounters(5, &outboxCounters{CritRecs: 1})
	db.publishCounters(4, &outboxCounters{}) // an earlier commit, returning late
	if got := db.QueuedRecords(); got != 1 {
		t.Fatalf("queued %d after an earlier commit published late, want the later commit's 1", got)
	}
	db.publishCounters(6, &outboxCounters{TelRecs: 3})
	if got := db.QueuedRecords(); got != 3 {
		t.Fatalf("queued %d, want 3", got)
	}
}

// A compaction starts a new file whose transactions are numbered afresh:
// the depth still follows the commits after it.
func TestQueuedRecordsAfterCompaction(t *testing.T) {
	db, err := Open(t.TempDir()+"/s.db", Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 50 { // commits enough that the old file's ids pass the new one's
		if _, err := db.Append(context.Background(), Entry{Class: Critical, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Compact(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(context.Background(), Entry{Class: Critical, Payload: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	if got := db.QueuedRecords(); got != 51 {
		t.Fatalf("queued %d after a compaction and an append, want 51", got)
	}
}
