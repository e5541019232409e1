package store_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// A load of keys in random order, spread over many runs and many merge
// transactions, ends as exactly the added keys with their values, and
// leaves no scratch behind.
func TestLoaderManyRuns(t *testing.T) {
	defer store.SetLoadLimitsForTest(4<<10, 8<<10)()
	db := storetest.Open(t, store.Options{})
	target := store.CacheBucket(store.BucketIdents, 1)
	l, err := db.NewLoader(1, target, store.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		k := fmt.Sprintf("k%08x", r.Uint32())
		v := fmt.Sprintf("v%d", i)
		want[k] = v // a repeated key: the later value wins
		if err := l.Add([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := l.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(want)) {
		t.Fatalf("Finish wrote %d keys, want %d", n, len(want))
	}
	got := map[string]string{}
	var prev []byte
	err = db.View(func(tx *store.Tx) error {
		return tx.Bucket(target).ForEach(nil, func(k, v []byte) error {
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return fmt.Errorf("keys out of order: %q then %q", prev, k)
			}
			prev = bytes.Clone(k)
			got[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("bucket has %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
	if n, _ := store.ScratchEntries(db); n != 0 {
		t.Fatalf("%d scratch entries left", n)
	}
}

// merge sees every value of a key, oldest first, across runs.
func TestLoaderMergeOrder(t *testing.T) {
	defer store.SetLoadLimitsForTest(256, 256)()
	db := storetest.Open(t, store.Options{})
	target := store.CacheBucket(store.BucketExpiry, 0)
	l, err := db.NewLoader(2, target, store.LoadOptions{Merge: func(old, new []byte) ([]byte, error) {
		return append(append(old, ','), new...), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		// Key "a" in every run, key "b" in a few.
		if err := l.Add([]byte("a"), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			l.Add([]byte("b"), []byte(fmt.Sprint(i)))
		}
		l.Add([]byte(fmt.Sprintf("filler-%03d", i)), bytes.Repeat([]byte{'x'}, 20))
	}
	if _, err := l.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	var a, b []byte
	db.View(func(tx *store.Tx) error {
		a, _ = tx.Bucket(target).Get([]byte("a"))
		b, _ = tx.Bucket(target).Get([]byte("b"))
		return nil
	})
	var wantA []byte
	for i := range 200 {
		if i > 0 {
			wantA = append(wantA, ',')
		}
		wantA = fmt.Append(wantA, i)
	}
	if !bytes.Equal(a, wantA) {
		t.Fatalf("a = %s\nwant %s", a, wantA)
	}
	if string(b) != "0,50,100,150" {
		t.Fatalf("b = %s", b)
	}
}

// A sealed load never puts a value in the clear in the file, in the
// scratch runs or in the target; the target's values open under their own
// bucket and key.
func TestLoaderSealed(t *testing.T) {
	defer store.SetLoadLimitsForTest(2<<10, 2<<10)()
	path := filepath.Join(t.TempDir(), "store.db")
	db := storetest.OpenAt(t, path, store.Options{Key: storetest.Key(t)})
	target := store.CacheBucket(store.BucketProfiles, 0)
	l, err := db.NewLoader(3, target, store.LoadOptions{Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if err := l.Add(fmt.Appendf(nil, "p%04d", i), fmt.Appendf(nil, "MARKER-clear-%04d", i)); err != nil {
			t.Fatal(err)
		}
		if i == 200 { // runs are on disk now: they must be sealed too
			raw, _ := os.ReadFile(path)
			if bytes.Contains(raw, []byte("MARKER-clear")) {
				t.Fatal("a scratch run holds a value in the clear")
			}
		}
	}
	if _, err := l.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("MARKER-clear")) {
		t.Fatal("the loaded bucket holds a value in the clear")
	}
	db.View(func(tx *store.Tx) error {
		v, err := tx.Bucket(target).GetSealed([]byte("p0123"))
		if err != nil || string(v) != "MARKER-clear-0123" {
			t.Fatalf("GetSealed = %q, %v", v, err)
		}
		return nil
	})
}

// What a loader left when the process died is cleared by the next loader
// of the same id, and does not touch another id's runs.
func TestLoaderLeftoversCleared(t *testing.T) {
	defer store.SetLoadLimitsForTest(512, 512)()
	db := storetest.Open(t, store.Options{})
	dead, _ := db.NewLoader(4, store.CacheBucket(store.BucketIdents, 0), store.LoadOptions{})
	other, _ := db.NewLoader(5, store.CacheBucket(store.BucketExpiry, 0), store.LoadOptions{})
	for i := range 100 {
		dead.Add(fmt.Appendf(nil, "dead-%03d", i), bytes.Repeat([]byte{1}, 30))
		other.Add(fmt.Appendf(nil, "live-%03d", i), bytes.Repeat([]byte{2}, 30))
	}
	before, _ := store.ScratchEntries(db)
	if before == 0 {
		t.Fatal("no runs were written: the test proves nothing")
	}
	// dead is abandoned, as by a crash; a new loader 4 starts.
	again, err := db.NewLoader(4, store.CacheBucket(store.BucketIdents, 0), store.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again.Add([]byte("fresh"), []byte("1"))
	if _, err := again.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := other.Finish(context.Background()); err != nil || n != 100 {
		t.Fatalf("other loader: %d, %v", n, err)
	}
	db.View(func(tx *store.Tx) error {
		n := 0
		tx.Bucket(store.CacheBucket(store.BucketIdents, 0)).ForEach(nil, func(k, v []byte) error { n++; return nil })
		if n != 1 {
			t.Fatalf("idents.0 has %d keys, want only the fresh one", n)
		}
		return nil
	})
	if n, _ := store.ScratchEntries(db); n != 0 {
		t.Fatalf("%d scratch entries left", n)
	}
}

// Final sees each key once, in order, can leave keys out, and can feed a
// second loader that Between flushes: how a snapshot builds its indexes.
func TestLoaderFinalFeedsIndex(t *testing.T) {
	defer store.SetLoadLimitsForTest(1<<10, 1<<10)()
	db := storetest.Open(t, store.Options{})
	main, index := store.CacheBucket(store.BucketProfiles, 1), store.CacheBucket(store.BucketIdents, 1)
	idx, err := db.NewLoader(7, index, store.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seen [][]byte
	betweens := 0
	l, err := db.NewLoader(6, main, store.LoadOptions{
		Final: func(tx *store.Tx, key, val []byte) ([]byte, error) {
			seen = append(seen, bytes.Clone(key))
			if val[0]%2 == 1 {
				return nil, nil
			}
			idx.Buffer(append([]byte("i-"), key...), key)
			return val, nil
		},
		Between: func() error { betweens++; return idx.FlushIfFull() },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		l.Add(fmt.Appendf(nil, "%04d", (i*7919)%1000), []byte{byte(i)})
	}
	n, err := l.Finish(context.Background())
	if err != nil || n != 500 {
		t.Fatalf("Finish = %d, %v; want 500 kept", n, err)
	}
	if len(seen) != 1000 || betweens < 2 {
		t.Fatalf("Final saw %d keys, Between ran %d times", len(seen), betweens)
	}
	for i := 1; i < len(seen); i++ {
		if bytes.Compare(seen[i-1], seen[i]) >= 0 {
			t.Fatalf("Final out of order: %s then %s", seen[i-1], seen[i])
		}
	}
	if n, err := idx.Finish(context.Background()); err != nil || n != 500 {
		t.Fatalf("index Finish = %d, %v", n, err)
	}
}

// TestLoaderPause: a Final that buffers far more into another loader than
// it writes to its own target (a record sent to an index, a small pointer
// kept) ends its merge transactions whenever Pause says so, and Between
// flushes: the other loader's buffer never grows past its bound by more
// than one key's entry, whatever the merge transaction's own size.
func TestLoaderPause(t *testing.T) {
	defer store.SetLoadLimitsForTest(4<<10, 1<<20)() // runs of 4 KiB; merge transactions that would hold everything
	db := storetest.Open(t, store.Options{})
	main, index := store.CacheBucket(store.BucketProfiles, 1), store.CacheBucket(store.BucketIdents, 1)
	idx, err := db.NewLoader(7, index, store.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{'r'}, 300)
	buffered, most, betweens := 0, 0, 0
	for _, pause := range []bool{false, true} {
		o := store.LoadOptions{
			Final: func(tx *store.Tx, key, val []byte) ([]byte, error) {
				idx.Buffer(key, big)
				buffered += len(key) + len(big)
				most = max(most, buffered)
				return val[:1], nil
			},
			Between: func() error {
				betweens++
				if idx.Full() {
					buffered = 0
				}
				return idx.FlushIfFull()
			},
		}
		if pause {
			o.Pause = idx.Full
		}
		buffered, most, betweens = 0, 0, 0
		l, err := db.NewLoader(6, main, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			l.Add(fmt.Appendf(nil, "%05d", (i*7919)%2000), []byte{byte(i)})
		}
		if n, err := l.Finish(context.Background()); err != nil || n != 2000 {
			t.Fatalf("Finish = %d, %v", n, err)
		}
		t.Logf("pause %v: %d merge transactions, most buffered %d bytes", pause, betweens, most)
		if !pause && most < 100<<10 {
			t.Fatalf("without Pause the merge buffered at most %d bytes: the test cannot tell", most)
		}
		if pause && most > 4<<10+len(big)+64 {
			t.Fatalf("with Pause the merge buffered %d bytes into the index, past its bound of 4 KiB", most)
		}
		if _, err := idx.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
