package store_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

func rawPut(t *testing.T, path, bucket string, key, val []byte) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put(key, val) })
}

func seqKey(seq uint64) []byte {
	return []byte{0, 0, 0, 0, 0, 0, 0, byte(seq)}
}

// A damaged outbox record stops the read at that record with an error that
// names it; quarantining it moves it aside and the drain goes on. Nothing
// else is lost.
func TestCorruptOutboxRecord(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	for _, p := range []string{"a", "b", "c"} {
		mustAppend(t, db, crit(p))
	}
	db.Close()
	tests := []struct {
		name string
		val  []byte
	}{
		{"not cbor", []byte{0xff, 0x00, 0x13}},
		{"bad seal", mustMarshal(t, map[int]any{0: 1, 1: 1, 2: 5, 5: []byte("0123456789abcdefghijklmnopqrstuvwxyz")})},
		{"unknown class", mustMarshal(t, map[int]any{0: 1, 1: 9, 2: 5, 5: []byte{}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rawPut(t, path, "outbox/0000000000000000", seqKey(2), tc.val) // record 2's segment
			db, err := store.Open(path, store.Options{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			recs, err := db.ReadOutbox(0, 10, 1<<20)
			var ce *store.CorruptError
			if !errors.As(err, &ce) || ce.Bucket != "outbox" || len(recs) != 1 || string(recs[0].Payload) != "a" {
				t.Fatalf("read over a corrupt record: %d records, %v; want the one before it and the error", len(recs), err)
			}
			if recs, err = db.ReadOutbox(3, 1, 1<<20); err != nil || string(recs[0].Payload) != "c" {
				t.Fatalf("record after the damage: %v", err)
			}
		})
	}
	db = storetest.OpenAt(t, path, store.Options{Key: key})
	if err := db.QuarantineOutbox(2); err != nil {
		t.Fatal(err)
	}
	if got := payloads(t, db, 0); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after quarantine: %v", got)
	}
}

// Damaged counters are rebuilt from the records at open.
func TestCorruptCountersRecounted(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	mustAppend(t, db, crit("a"))
	mustAppend(t, db, tel("b"))
	db.Close()
	rawPut(t, path, "meta", []byte("store.outbox_counters"), []byte("garbage"))
	db = storetest.OpenAt(t, path, store.Options{Key: key})
	st, err := db.OutboxStats()
	if err != nil || st.Critical.Records != 1 || st.Telemetry.Records != 1 {
		t.Fatalf("recounted stats %+v %v", st, err)
	}
}

func TestCorruptAuditEntry(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	db.Update(func(tx *store.Tx) error { return tx.Audit("test", nil) })
	db.Close()
	rawPut(t, path, "audit", seqKey(1), []byte{0xa1})
	db = storetest.OpenAt(t, path, store.Options{Key: key})
	if _, err := db.AuditLog(0, 10); !store.IsCorrupt(err) {
		t.Fatalf("audit read over a corrupt entry: %v", err)
	}
}
