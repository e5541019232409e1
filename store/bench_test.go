package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Benchmarks print what users care about (events/s, bytes per event, heap
// growth) and each comparison's baseline runs in the same invocation:
// `make bench` turns them into figure lines with cmd/benchfig.

func benchDB(b *testing.B, lim OutboxLimits) *DB {
	b.Helper()
	key := make([]byte, KeySize)
	rand.Read(key)
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{Key: key, Outbox: lim})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

var event300 = bytes.Repeat([]byte("e"), 300)

func benchEntry() Entry {
	return Entry{Class: Critical, Subject: []byte("0123456789abcdef"), Label: "analytics", Payload: event300}
}

// BenchmarkOutboxAppend measures durable appends per second: every record
// is fsynced before its caller hears back.
//
//   - naive: one db.Update (one transaction, one fsync) per record, the
//     baseline the issue names.
//   - bolt_batch_64w: bbolt's own DB.Batch with 64 appenders, the
//     alternative to our committer.
//   - group_Nw: N goroutines calling Append, sharing commits.
func BenchmarkOutboxAppend(b *testing.B) {
	b.Run("naive", func(b *testing.B) {
		db := benchDB(b, OutboxLimits{})
		runAppenders(b, 1, func() error {
			return db.Update(func(tx *Tx) error { _, err := tx.AppendOutbox(benchEntry()); return err })
		})
	})
	b.Run("bolt_batch_64w", func(b *testing.B) {
		db := benchDB(b, OutboxLimits{})
		runAppenders(b, 64, func() error {
			return db.bdb.Batch(func(btx *bolt.Tx) error {
				tx := &Tx{db: db, btx: btx, writable: true}
				if _, err := tx.AppendOutbox(benchEntry()); err != nil {
					return err
				}
				return tx.finish()
			})
		})
	})
	for _, w := range []int{1, 8, 64} {
		b.Run(map[int]string{1: "group_1w", 8: "group_8w", 64: "group_64w"}[w], func(b *testing.B) {
			db := benchDB(b, OutboxLimits{})
			runAppenders(b, w, func() error {
				_, err := db.Append(context.Background(), benchEntry())
				return err
			})
		})
	}
}

// runAppenders runs b.N calls of fn spread over w goroutines and reports
// events/s.
func runAppenders(b *testing.B, w int, fn func() error) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range w {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
}

// BenchmarkOutboxDiskBytes reports the pages the outbox (its segments) and its indexes
// occupy per 300-byte event (with its subject and label), after 100,000
// appends in group commits.
func BenchmarkOutboxDiskBytes(b *testing.B) {
	const n = 100_000
	for range b.N {
		db := benchDB(b, OutboxLimits{})
		fillOutbox(b, db, n, 1000)
		var bytes int
		db.View(func(tx *Tx) error {
			return tx.btx.ForEach(func(name []byte, b *bolt.Bucket) error {
				_, tel := telIndex.parse(name)
				if isOutboxBucket(name) || tel || string(name) == bucketOutboxTel || string(name) == bucketOutboxSubj {
					s := b.Stats()
					bytes += s.BranchAlloc + s.LeafAlloc
				}
				return nil
			})
		})
		b.ReportMetric(float64(bytes)/n, "disk-B/event")
		db.Close()
	}
}

func fillOutbox(b *testing.B, db *DB, n, group int) {
	for i := 0; i < n; i += group {
		err := db.Update(func(tx *Tx) error {
			for j := 0; j < group && i+j < n; j++ {
				if _, err := tx.AppendOutbox(benchEntry()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutboxBacklogHeap reports how much the Go heap grows when the
// outbox holds one million records and is read through once in pages, as
// a drain after a long outage would: memory must stay flat, whatever the
// backlog. The baseline is the heap of the same process with an empty
// store open. Run it with -benchtime=1x.
func BenchmarkOutboxBacklogHeap(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		db := benchDB(b, OutboxLimits{MaxRecords: 2 * n, MaxBytes: 4 << 30})
		base := heapInUse()
		fillOutbox(b, db, n, 4096)
		var read int
		for from := uint64(0); ; {
			recs, err := db.ReadOutbox(from, 500, 256<<10)
			if err != nil {
				b.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			read += len(recs)
			from = recs[len(recs)-1].Seq + 1
		}
		if read != n || db.QueuedRecords() != n {
			b.Fatalf("read %d of %d records", read, n)
		}
		grown := float64(int64(heapInUse())-int64(base)) / (1 << 20)
		b.ReportMetric(grown, "heap-MiB")
		size, _ := db.FileSize()
		b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		db.Close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
