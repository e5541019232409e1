package central

import (
	"runtime"
	"testing"
	"time"

	"github.com/storeagent/storeagent/sync/wire"
)

// snapshotRun is what one measured snapshot took.
type snapshotRun struct {
	res      SyncResult
	elapsed  time.Duration
	peakHeap uint64 // highest HeapAlloc seen at a chunk, above the start
}

// measureSnapshot snapshots n customers to a function that keeps nothing,
// sampling the heap at every chunk.
func measureSnapshot(t testing.TB, n int) snapshotRun {
	t.Helper()
	c, err := New(testConfig(t, "", t.TempDir(), n))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	scope := wire.Scope{Tenant: testTenant, Store: testStore, Agent: "pos-1"}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	start := time.Now()
	res, err := c.Snapshot(t.Context(), scope, func(msg []byte) error {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base {
			peak = max(peak, ms.HeapAlloc-base)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snapshotRun{res: res, elapsed: time.Since(start), peakHeap: peak}
}

// TestSnapshotMillionFlatMemory snapshots one million customers and checks
// that the heap stays flat: the peak above the start must not grow with
// the population (compared with a snapshot a tenth the size) and stays
// within a few chunks' worth. It takes about 15 s, so -short and the race
// detector (ten times slower) skip it; BenchmarkSnapshot reports the same
// numbers.
func TestSnapshotMillionFlatMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("one million customers: skipped with -short and -race (see BenchmarkSnapshot)")
	}
	small := measureSnapshot(t, 100_000)
	big := measureSnapshot(t, 1_000_000)
	t.Logf("100k: %d chunks in %v, peak heap +%d MiB", small.res.Chunks, small.elapsed.Round(time.Millisecond), small.peakHeap>>20)
	t.Logf("1M:   %d chunks in %v (%.0f customers/s, %.1f chunks/s), peak heap +%d MiB",
		big.res.Chunks, big.elapsed.Round(time.Millisecond), 1e6/big.elapsed.Seconds(),
		float64(big.res.Chunks)/big.elapsed.Seconds(), big.peakHeap>>20)
	if big.res.Changes < 2_000_000 {
		t.Errorf("%d changes for a million customers", big.res.Changes)
	}
	const limit = 160 << 20 // a handful of 4 MiB chunks, decoded into Go values
	if big.peakHeap > limit {
		t.Errorf("peak heap +%d MiB for 1M customers, limit %d MiB", big.peakHeap>>20, limit>>20)
	}
	if big.peakHeap > 2*small.peakHeap+(32<<20) {
		t.Errorf("heap grows with the population: +%d MiB at 1M, +%d MiB at 100k", big.peakHeap>>20, small.peakHeap>>20)
	}
}

// BenchmarkSnapshot measures snapshotting one million customers (sign
// included, no broker): customers/s, chunks/s and the heap's peak.
func BenchmarkSnapshot(b *testing.B) {
	for b.Loop() {
		r := measureSnapshot(b, 1_000_000)
		b.ReportMetric(1e6/r.elapsed.Seconds(), "customers/s")
		b.ReportMetric(float64(r.res.Chunks)/r.elapsed.Seconds(), "chunks/s")
		b.ReportMetric(float64(r.peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(r.res.Bytes)/(1<<20)/r.elapsed.Seconds(), "MiB/s")
	}
}
