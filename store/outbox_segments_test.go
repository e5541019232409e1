package store_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// checkOutbox fails unless the outbox holds exactly the records want (by
// sequence number) and its counters, subject index and telemetry index agree
// with them.
func checkOutbox(t *testing.T, db *store.DB, want []uint64, subject []byte) {
	t.Helper()
	recs, err := db.ReadOutbox(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	var crit, tel uint64
	var bySubject []uint64
	for _, r := range recs {
		got = append(got, r.Seq)
		if r.Class == store.Critical {
			crit++
		} else {
			tel++
		}
		if string(r.Subject) == string(subject) {
			bySubject = append(bySubject, r.Seq)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox holds %d records (%v...), want %d", len(got), got[:min(len(got), 5)], len(want))
	}
	s, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Critical.Records != crit || s.Telemetry.Records != tel {
		t.Fatalf("counters say %d critical and %d telemetry, the records %d and %d", s.Critical.Records, s.Telemetry.Records, crit, tel)
	}
	if len(want) > 0 && s.FirstSeq != want[0] || len(want) == 0 && s.FirstSeq != 0 {
		t.Fatalf("first seq %d, want %v", s.FirstSeq, want[:min(len(want), 1)])
	}
	if tel == 0 && s.Telemetry.OldestAt != 0 {
		t.Fatal("the telemetry index outlives the telemetry")
	}
	var idx []uint64
	db.View(func(tx *store.Tx) error { idx, err = tx.OutboxBySubject(subject); return err })
	if !slices.Equal(idx, bySubject) {
		t.Fatalf("subject index lists %d records, the outbox holds %d of the subject", len(idx), len(bySubject))
	}
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for q := from; q <= to; q++ {
		s = append(s, q)
	}
	return s
}

// An acked range that holds all of a segment's records drops the segment
// whole; one that holds part of it deletes that part. Either way the
// counters and indexes follow, and appends go on in a fresh segment.
func TestOutboxSegmentsGoWhole(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	subject := []byte("subject-7")
	const n = 2500
	appendMixed(t, db, n, subject)
	if got := db.OutboxSegmentsForTest(); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("segments %v for seqs 1..%d", got, n)
	}
	steps := []struct {
		name        string
		first, last uint64
		deleted     int
		left        []uint64
		segments    []uint64
	}{
		{"a whole segment", store.OutboxSegment, 2*store.OutboxSegment - 1, store.OutboxSegment,
			append(seqs(1, store.OutboxSegment-1), seqs(2*store.OutboxSegment, n)...), []uint64{0, 2}},
		{"past all a segment holds", 1, 1500, store.OutboxSegment - 1, seqs(2*store.OutboxSegment, n), []uint64{2}},
		{"part of a segment", 2 * store.OutboxSegment, 2100, 2100 - 2*store.OutboxSegment + 1, seqs(2101, n), []uint64{2}},
		{"the rest of it", 2101, n, n - 2100, nil, nil},
	}
	for _, s := range steps {
		got, err := db.DeleteOutboxRange(s.first, s.last)
		if err != nil || got != s.deleted {
			t.Fatalf("%s: deleted %d (%v), want %d", s.name, got, err, s.deleted)
		}
		checkOutbox(t, db, s.left, subject)
		if segs := db.OutboxSegmentsForTest(); !slices.Equal(segs, s.segments) {
			t.Fatalf("%s: segments %v, want %v", s.name, segs, s.segments)
		}
		if segs := db.TelSegmentsForTest(); !slices.Equal(segs, s.segments) {
			t.Fatalf("%s: telemetry index segments %v, want %v", s.name, segs, s.segments)
		}
	}
	seq := mustAppend(t, db, crit("after"))
	if seq != n+1 || !slices.Equal(payloads(t, db, 0), []string{"after"}) {
		t.Fatalf("append after the outbox emptied: seq %d, %v", seq, payloads(t, db, 0))
	}
}

// Segment records are outbox records to Dump: opened, so a test that proves
// an erasure sees their content.
func TestDumpOpensSegments(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	mustAppend(t, db, crit("secret-in-a-segment"))
	found := ""
	err := db.Dump(func(bucket string, k, v []byte) error {
		if strings.Contains(string(v), "secret-in-a-segment") {
			found = bucket
		}
		return nil
	})
	if err != nil || !strings.HasPrefix(found, "outbox/") {
		t.Fatalf("dump found the payload in %q (%v)", found, err)
	}
}

// A file from before segments keeps its records in the "outbox" bucket.
// They read first, new records follow them in segments, and a range
// deleted across both goes from both.
func TestOutboxBeforeSegments(t *testing.T) {
	key := storetest.Key(t)
	path := filepath.Join(t.TempDir(), "s.db")
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	subject := []byte("subject-1")
	mustAppend(t, db, store.Entry{Class: store.Critical, Subject: subject, Payload: []byte("old 1")})
	mustAppend(t, db, tel("old 2"))
	mustAppend(t, db, store.Entry{Class: store.Telemetry, Subject: subject, Payload: []byte("old 3")})
	db.Close()
	toSchema2(t, path)

	db = storetest.OpenAt(t, path, store.Options{Key: key})
	if segs := append(db.OutboxSegmentsForTest(), db.TelSegmentsForTest()...); len(segs) != 0 {
		t.Fatalf("an old file has segments %v", segs)
	}
	checkOutbox(t, db, seqs(1, 3), subject)
	mustAppend(t, db, crit("new 4"))
	mustAppend(t, db, store.Entry{Class: store.Critical, Subject: subject, Payload: []byte("new 5")})
	if got := payloads(t, db, 0); !slices.Equal(got, []string{"old 1", "old 2", "old 3", "new 4", "new 5"}) {
		t.Fatalf("read across both layouts: %v", got)
	}
	if got := payloads(t, db, 3); !slices.Equal(got, []string{"old 3", "new 4", "new 5"}) {
		t.Fatalf("read from 3: %v", got)
	}
	if n, err := db.DeleteOutboxRange(2, 4); err != nil || n != 3 {
		t.Fatalf("delete across both layouts: %d, %v", n, err)
	}
	checkOutbox(t, db, []uint64{1, 5}, subject)
	var rec store.Record
	db.View(func(tx *store.Tx) error { rec, _, _ = tx.OutboxRecord(1); return nil })
	if string(rec.Payload) != "old 1" {
		t.Fatalf("old record by seq: %q", rec.Payload)
	}
}

// toSchema2 rewrites the file at path as schema 2 wrote it: every outbox
// record in the "outbox" bucket, every telemetry index entry in
// "outbox_tel", no segments.
func toSchema2(t *testing.T, path string) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		var segs [][]byte
		tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			family, _, ok := strings.Cut(string(name), "/")
			if !ok {
				return nil
			}
			legacy := tx.Bucket([]byte(family))
			segs = append(segs, slices.Clone(name))
			return b.ForEach(func(k, v []byte) error { return legacy.Put(slices.Clone(k), slices.Clone(v)) })
		})
		for _, s := range segs {
			if err := tx.DeleteBucket(s); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("store.schema"), []byte{0, 0, 0, 0, 0, 0, 0, 2})
	})
}
