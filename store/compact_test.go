package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// A marker written and deleted stays in the raw file until compaction, and
// is gone after it; live data and sequence numbers survive.
func TestCompactRemovesDeletedBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: storetest.Key(t)})
	marker := []byte("MARKER-4af1c9-do-not-keep")
	// Stored in the clear on purpose: the test is about deleted bytes.
	err := db.Update(func(tx *store.Tx) error {
		return tx.Bucket(store.BucketState).Put([]byte("marker"), bytes.Repeat(marker, 50))
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		mustAppend(t, db, crit("live data"))
	}
	err = db.Update(func(tx *store.Tx) error {
		if err := tx.Bucket(store.BucketState).Delete([]byte("marker")); err != nil {
			return err
		}
		return tx.MarkForCompaction()
	})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, marker) {
		t.Fatal("marker not in the file after delete: this test cannot tell compaction worked")
	}
	if due, _ := db.CompactionDue(); due == 0 {
		t.Fatal("no compaction due after a marked delete")
	}
	lastBefore, _ := db.OutboxStats()

	var calls, lastDone, lastTotal uint64
	res, err := db.Compact(context.Background(), func(done, total uint64) { calls++; lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, marker) {
		t.Fatal("marker still in the file after compaction")
	}
	if calls == 0 || lastDone != lastTotal || lastDone != res.Keys || res.Keys < 200 {
		t.Fatalf("progress: %d calls, last %d/%d, result %+v", calls, lastDone, lastTotal, res)
	}
	if due, _ := db.CompactionDue(); due != 0 {
		t.Fatal("compaction still due after compacting")
	}
	if got := payloads(t, db, 0); len(got) != 200 {
		t.Fatalf("live records after compaction: %d", len(got))
	}
	if seq := mustAppend(t, db, crit("after")); seq != lastBefore.LastSeq+1 {
		t.Fatalf("sequence after compaction %d, want %d", seq, lastBefore.LastSeq+1)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCompactCancelledKeepsOriginal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: storetest.Key(t)})
	err := db.Update(func(tx *store.Tx) error {
		for range 5000 {
			if _, err := tx.AppendOutbox(crit("x")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = db.Compact(ctx, func(done, total uint64) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled compaction: %v", err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("partial copy left behind: %v", err)
	}
	if got := payloads(t, db, 0); len(got) != 5000 {
		t.Fatalf("records after a cancelled compaction: %d", len(got))
	}
	mustAppend(t, db, crit("still writable"))
}
