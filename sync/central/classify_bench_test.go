package central

import (
	"crypto/rand"
	"testing"

	"github.com/storeagent/storeagent/sync/wire"
)

// BenchmarkClassify measures the duplicate check of a drain: 200,000 new
// messageIds in batches of 1,000 into an empty seen set, then the same
// batches again (all duplicates).
func BenchmarkClassify(b *testing.B) {
	const batches, per = 200, 1000
	ids := make([][][idSize]byte, batches)
	for i := range ids {
		ids[i] = make([][idSize]byte, per)
		for j := range ids[i] {
			rand.Read(ids[i][j][:])
		}
	}
	for b.Loop() {
		c := &Central{seen: map[[idSize]byte]struct{}{}}
		for round := range 2 {
			for i, batch := range ids {
				first := uint64(i*per + 1)
				_, dups, _ := c.classify(wire.EventBatch{First: first, Last: first + per - 1}, batch, first-1)
				if want := uint32(round * per); dups != want {
					b.Fatalf("round %d: %d duplicates, want %d", round, dups, want)
				}
			}
		}
	}
	b.ReportMetric(float64(2*batches*per)*float64(b.N)/b.Elapsed().Seconds(), "ids/s")
}
