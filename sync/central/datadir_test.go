package central

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/storeagent/storeagent/sync/wire"
)

// writeLog writes a data file of the given payloads and returns its path
// and the end offset of each frame.
func writeLog(t *testing.T, payloads ...[]byte) (string, []int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	l, err := openLogFile(path, magicJournal, quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for _, p := range payloads {
		if _, err := l.append(p); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, l.size)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	return path, ends
}

func readAll(t *testing.T, path string) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	l, err := openLogFile(path, magicJournal, quietLogger(), func(_ int64, p []byte) error {
		got = append(got, bytes.Clone(p))
		return nil
	})
	if err == nil {
		l.close()
	}
	return got, err
}

func TestLogFileTails(t *testing.T) {
	one, two := []byte("first record"), []byte("second record")
	for _, tc := range []struct {
		name    string
		damage  func(b []byte, ends []int64) []byte
		want    int // records read back
		corrupt bool
	}{
		{"intact", func(b []byte, _ []int64) []byte { return b }, 2, false},
		{"torn payload", func(b []byte, _ []int64) []byte { return b[:len(b)-3] }, 1, false},
		{"torn header", func(b []byte, e []int64) []byte { return b[:e[0]+5] }, 1, false},
		{"zero tail", func(b []byte, _ []int64) []byte { return append(b, make([]byte, 4096)...) }, 2, false},
		{"bad crc at the tail", func(b []byte, _ []int64) []byte { b[len(b)-1] ^= 1; return b }, 1, false},
		{"bad crc in the middle", func(b []byte, e []int64) []byte { b[e[0]-1] ^= 1; return b }, 0, true},
		{"garbage after the end", func(b []byte, _ []int64) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5) }, 0, true},
		{"not a data file", func(b []byte, _ []int64) []byte { return []byte("hello, world") }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, ends := writeLog(t, one, two)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b, ends), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, path)
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("read %d records, %v; want %d", len(got), err, tc.want)
			}
			// The torn tail is gone: appending again gives a clean file.
			l, err := openLogFile(path, magicJournal, quietLogger(), func(int64, []byte) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			l.append([]byte("after"))
			l.close()
			if got, err := readAll(t, path); err != nil || len(got) != tc.want+1 || string(got[tc.want]) != "after" {
				t.Fatalf("after append: %d records, %v", len(got), err)
			}
		})
	}
}

func TestDataDirGuards(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "", dir, 100)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("second central on the directory: %v", err)
	}
	c.Close()

	for name, change := range map[string]func(*Config){
		"customers": func(c *Config) { c.Customers = 101 },
		"seed":      func(c *Config) { c.Seed++ },
		"tenant":    func(c *Config) { c.Tenant = "other" },
		"key":       func(c *Config) { c.Key = testKey("other") },
	} {
		other := cfg
		change(&other)
		if _, err := New(other); !errors.Is(err, ErrDataMismatch) {
			t.Errorf("%s changed: %v, want ErrDataMismatch", name, err)
		}
	}
	if _, err := ReadReport(t.TempDir()); err == nil {
		t.Error("a report from an empty directory")
	}
}

// TestChangeLogSurvivesRestart checks that the seq, the profile state and
// the runs come back from the change log.
func TestChangeLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "", dir, 50)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []wire.Body{
		&wire.EraseChange{Profile: ProfileID(1)},
		&wire.RestrictChange{Profile: ProfileID(2), Restricted: true},
		DefaultPolicy(),
	} {
		if _, err := c.Publish(t.Context(), testStore, b); !errors.Is(err, ErrNotPublished) {
			t.Fatal(err)
		}
	}
	before := snapshotOf(t, c)
	c.Close()

	c, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	after := snapshotOf(t, c)
	if after.to != 4 || len(after.profiles) != 49 || !after.restrict[ProfileID(2)] {
		t.Errorf("after restart: at %d, %d profiles, restrictions %v", after.to, len(after.profiles), after.restrict)
	}
	if len(before.profiles) != len(after.profiles) || before.to != after.to {
		t.Error("the snapshot differs across a restart")
	}
	seq, _ := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: ProfileID(3)})
	if seq != 5 {
		t.Errorf("next seq %d, want 5", seq)
	}
	sl, _ := c.storeLog(testStore, false)
	v := sl.view()
	for s := uint64(2); s <= 5; s++ {
		if ch, err := v.change(c, s); err != nil || ch.Seq != s {
			t.Errorf("logged change %d: %v", s, err)
		}
	}

	// A log edited by hand, checksums fixed, no longer verifies.
	c.Close()
	path := storePath(dir, testStore)
	b, _ := os.ReadFile(path)
	out := []byte(magicChanges)
	if _, err := scanFrames(bytes.NewReader(b), int64(len(b)), magicChanges, func(_ int64, p []byte) error {
		p = bytes.Clone(p)
		if i := bytes.Index(p, []byte(ProfileID(1))); i >= 0 {
			p[i+len(ProfileID(1))-1] = '9' // erase someone else
		}
		out = appendFrame(out, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, out, 0o600)
	if _, err := New(cfg); !errors.Is(err, ErrDataMismatch) {
		t.Errorf("a tampered change log: %v, want ErrDataMismatch", err)
	}
}

func snapshotOf(t *testing.T, c *Central) snapshotState {
	t.Helper()
	scope := wire.Scope{Tenant: testTenant, Store: testStore, Agent: "pos-1"}
	v := testVerifier(t)
	var sets []wire.ChangeSet
	if _, err := c.Snapshot(t.Context(), scope, func(msg []byte) error {
		cs, err := wire.VerifyChangeSet(v, scope, msg)
		sets = append(sets, cs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return checkSnapshot(t, sets, nil)
}
