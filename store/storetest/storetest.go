// Package storetest opens real store files for tests, the way bbolt's
// internal/btesting does: a fresh file in t.TempDir(), closed and checked
// for consistency by bbolt's own checker when the test ends. It also holds
// the log sink every package's tests share (LogBuffer): every test of the
// project that needs one already reaches this package.
package storetest

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/storeagent/storeagent/store"
)

// Key returns a fresh random at-rest key.
func Key(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, store.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// Open opens a new store file in t.TempDir() with opts (a random key if
// opts.Key is nil). At cleanup it closes the store, reopens the file
// read-only and fails the test if bbolt's consistency check finds anything.
func Open(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	if opts.Key == nil {
		opts.Key = Key(t)
	}
	return OpenAt(t, filepath.Join(t.TempDir(), "store.db"), opts)
}

// OpenAt is Open on a path the test chose.
func OpenAt(t testing.TB, path string, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { closeAndCheck(t, db, opts) })
	return db
}

func closeAndCheck(t testing.TB, db *store.DB, opts store.Options) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
	ro, err := store.OpenReadOnly(db.Path(), opts)
	if err != nil {
		t.Errorf("reopen store to check it: %v", err)
		return
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Errorf("store consistency check: %v", err)
	}
}
