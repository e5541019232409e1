package store_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

func TestLoadKeyFile(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name    string
		content []byte
		mode    fs.FileMode
		want    error // nil: loads key
	}{
		{"raw 0600", key, 0o600, nil},
		{"hex with newline 0400", []byte(hex.EncodeToString(key) + "\n"), 0o400, nil},
		{"group readable", key, 0o640, store.ErrKeyFileMode},
		{"world readable", key, 0o644, store.ErrKeyFileMode},
		{"short", key[:16], 0o600, store.ErrBadKey},
		{"bad hex", []byte(strings.Repeat("zz", 32)), 0o600, store.ErrBadKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, tc.content, tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode) // not subject to umask
			got, err := store.LoadKeyFile(path)
			if tc.want == nil {
				if err != nil || !bytes.Equal(got, key) {
					t.Fatalf("got %x, %v", got, err)
				}
				return
			}
			var kfe *store.KeyFileError
			if !errors.Is(err, tc.want) || !errors.As(err, &kfe) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want %v naming the file", err, tc.want)
			}
			if tc.want == store.ErrKeyFileMode && !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("no hint in %q", err)
			}
		})
	}
}

func TestGenerateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	key, created, err := store.LoadOrCreateKeyFile(path)
	if err != nil || !created || len(key) != 32 {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file mode %o", fi.Mode().Perm())
	}
	again, created, err := store.LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	if _, err := store.GenerateKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("generate over an existing key: %v", err)
	}
}

// Sealed values are unreadable in the raw file and do not open under another
// key or at another record key.
func TestSealedAtRest(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	secret := []byte("jane.doe@example.com")
	err := db.Update(func(tx *store.Tx) error {
		b := tx.Bucket(store.CacheBucket(store.BucketProfiles, 0))
		if err := b.PutSealed([]byte("p1"), secret); err != nil {
			return err
		}
		raw, _ := b.Get([]byte("p1"))
		// Copy the sealed bytes under another key: they must not open there.
		return b.Put([]byte("p2"), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, store.Entry{Class: store.Critical, Payload: []byte("outbox " + string(secret))})
	db.View(func(tx *store.Tx) error {
		b := tx.Bucket(store.CacheBucket(store.BucketProfiles, 0))
		if got, err := b.GetSealed([]byte("p1")); err != nil || !bytes.Equal(got, secret) {
			t.Errorf("open p1: %q %v", got, err)
		}
		if _, err := b.GetSealed([]byte("p2")); !store.IsCorrupt(err) {
			t.Errorf("moved sealed value opened: %v", err)
		}
		return nil
	})
	db.Close()
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, secret) || bytes.Contains(raw, []byte("jane")) {
		t.Fatal("clear personal data in the database file")
	}
	other := storetest.Key(t)
	db2, err := store.Open(path, store.Options{Key: other})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := db2.ReadOutbox(0, 10, 1<<20); !store.IsCorrupt(err) {
		t.Fatalf("outbox read under the wrong key: %v", err)
	}
}

func TestOpenRequiresKey(t *testing.T) {
	_, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if !errors.Is(err, store.ErrBadKey) {
		t.Fatalf("open without key: %v", err)
	}
}
