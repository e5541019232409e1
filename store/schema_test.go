package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// rawUpdate runs fn in a write transaction on the file at path, opened
// with bbolt alone, as a damaged or older file would be made.
func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func setRawSchema(t *testing.T, path string, v uint64) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		var k [8]byte
		for i := range 8 {
			k[7-i] = byte(v >> (8 * i))
		}
		return b.Put([]byte("store.schema"), k[:])
	})
}

func TestOpenNewerSchemaFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	setRawSchema(t, path, store.SchemaVersion+7)
	before, _ := os.ReadFile(path)
	for name, open := range map[string]func(string, store.Options) (*store.DB, error){"writable": store.Open, "read-only": store.OpenReadOnly} {
		_, err := open(path, store.Options{Key: storetest.Key(t)})
		var se *store.SchemaError
		if !errors.Is(err, store.ErrNewerSchema) || !errors.As(err, &se) || se.Have != store.SchemaVersion+7 {
			t.Fatalf("%s open of a newer file: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused open changed the file")
	}
}

// Forward migrations run in order, once, each with its version bump; a
// failing step rolls back and leaves the file at the last good version.
func TestMigrationsForward(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	// Plain opens: storetest's cleanup would run after the test restored
	// the migration list, and see a "newer" file.
	db, err := store.Open(path, store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	var ran []string
	fail := true
	restore := store.SetMigrationsForTest(
		func(tx *store.Tx) error {
			ran = append(ran, "a")
			return tx.Bucket(store.BucketState).Put([]byte("k"), []byte("v2"))
		},
		func(tx *store.Tx) error {
			ran = append(ran, "b")
			if fail {
				tx.Bucket(store.BucketState).Put([]byte("k"), []byte("half-done"))
				return errors.New("disk on fire")
			}
			return nil
		},
	)
	defer restore()

	if _, err := store.Open(path, store.Options{Key: key}); err == nil {
		t.Fatal("open with a failing migration succeeded")
	}
	// The read-only open sees the file stopped after step a, untouched by b.
	if _, err := store.OpenReadOnly(path, store.Options{Key: key}); !errors.Is(err, store.ErrOlderSchema) {
		t.Fatalf("read-only open of a file needing migration: %v", err)
	}
	fail = false
	db, err = store.Open(path, store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	db.View(func(tx *store.Tx) error { got, _ = tx.Bucket(store.BucketState).Get([]byte("k")); return nil })
	if string(got) != "v2" {
		t.Fatalf("value after migrations %q", got)
	}
	if want := []string{"a", "b", "b"}; !equal(ran, want) {
		t.Fatalf("steps ran %v, want %v", ran, want)
	}
	db.Close()
	db, err = store.Open(path, store.Options{Key: key})
	if err != nil || len(ran) != 3 {
		t.Fatalf("reopen a current file: %v; steps ran %v", err, ran)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
