package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// The CLI's read-only open never waits on a running daemon: it fails fast
// with ErrLocked and the daemon keeps writing.
func TestReadOnlyWhileDaemonRuns(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	mustAppend(t, db, crit("a"))

	start := time.Now()
	_, err := store.OpenReadOnly(path, store.Options{Key: key})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("read-only open beside a writer: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("read-only open waited %v", took)
	}
	mustAppend(t, db, crit("b"))
	db.Close()

	ro, err := store.OpenReadOnly(path, store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := payloads(t, ro, 0); len(got) != 2 {
		t.Fatalf("read-only sees %v", got)
	}
	if _, err := ro.Append(context.Background(), crit("c")); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("append on read-only: %v", err)
	}
	if err := ro.Update(func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("update on read-only: %v", err)
	}
	if _, err := ro.Compact(context.Background(), nil); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("compact on read-only: %v", err)
	}
	// Two readers share the lock.
	ro2, err := store.OpenReadOnly(path, store.Options{Key: key})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	ro2.Close()
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.db")
	if _, err := store.OpenReadOnly(path, store.Options{Key: storetest.Key(t)}); err == nil {
		t.Fatal("read-only open created a file")
	}
}
