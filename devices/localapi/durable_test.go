package localapi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// TestEventDurableOn202 protects invariant 1: a 202 on POST /v1/events
// means the event is on disk. Right after the 202 the database file is
// copied as it is (what a power cut would leave, with the page cache
// flushed), then the store is closed and reopened; both hold the event
// under the sequence number the 202 gave.
func TestEventDurableOn202(t *testing.T) {
	key := storetest.Key(t)
	f := newFixture(t, fixtureOpts{store: store.Options{Key: key}})
	f.seed(t)
	c := f.client("unix")
	id := event.NewID()
	res, err := c.Capture(context.Background(), localapi.EventRequest{
		MessageID: id, Event: "Order Completed", UserID: userID, Device: "pos-1",
		Properties: map[string]any{"total": 12.5},
	})
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(t.TempDir(), "image.db")
	copyFile(t, f.db.Path(), image)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{image, f.db.Path()} {
		findEvent(t, path, key, id, res.Seq)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// findEvent opens the store file at path and fails unless its outbox holds
// the event messageID at seq.
func findEvent(t *testing.T, path string, key []byte, messageID string, seq uint64) {
	t.Helper()
	db, err := store.Open(path, store.Options{Key: key})
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(path), err)
	}
	defer db.Close()
	recs, err := db.ReadOutbox(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ev, err := event.Decode(r.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if ev.MessageID == messageID {
			if r.Seq != seq || r.Class != store.Critical || ev.UserID != userID {
				t.Fatalf("%s: event at seq %d class %v user %q, want seq %d", filepath.Base(path), r.Seq, r.Class, ev.UserID, seq)
			}
			return
		}
	}
	t.Fatalf("%s: event acknowledged with 202 is not in the outbox (%d records)", filepath.Base(path), len(recs))
}
