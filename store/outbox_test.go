package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

func crit(payload string) store.Entry {
	return store.Entry{Class: store.Critical, Payload: []byte(payload)}
}

func tel(payload string) store.Entry {
	return store.Entry{Class: store.Telemetry, Payload: []byte(payload)}
}

func mustAppend(t *testing.T, db *store.DB, e store.Entry) uint64 {
	t.Helper()
	seq, err := db.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return seq
}

func payloads(t *testing.T, db *store.DB, from uint64) []string {
	t.Helper()
	recs, err := db.ReadOutbox(from, 1<<20, 1<<30)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Payload))
	}
	return out
}

func TestAppendReadDelete(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, mustAppend(t, db, crit(fmt.Sprint("e", i))))
	}
	if !slices.IsSorted(seqs) || seqs[0] == 0 {
		t.Fatalf("sequence numbers %v: want increasing from 1", seqs)
	}
	if got := payloads(t, db, seqs[2]); !slices.Equal(got, []string{"e2", "e3", "e4"}) {
		t.Fatalf("read from seq %d: %v", seqs[2], got)
	}
	n, err := db.DeleteOutboxRange(seqs[0], seqs[2])
	if err != nil || n != 3 {
		t.Fatalf("delete range: n=%d err=%v", n, err)
	}
	if got := payloads(t, db, 0); !slices.Equal(got, []string{"e3", "e4"}) {
		t.Fatalf("after delete: %v", got)
	}
	// Sequence numbers never go back, even when the outbox is emptied.
	if _, err := db.DeleteOutboxRange(0, 1<<62); err != nil {
		t.Fatal(err)
	}
	if next := mustAppend(t, db, crit("after")); next <= seqs[4] {
		t.Fatalf("sequence %d after emptying, want > %d", next, seqs[4])
	}
}

func TestReadOutboxPages(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	for i := range 10 {
		mustAppend(t, db, crit(fmt.Sprintf("%03d", i)))
	}
	tests := []struct {
		name       string
		max, bytes int
		want       int
	}{
		{"by count", 4, 1 << 20, 4},
		{"by bytes", 100, 7, 2},
		{"first always fits", 100, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := db.ReadOutbox(0, tc.max, tc.bytes)
			if err != nil || len(recs) != tc.want {
				t.Fatalf("got %d records (err %v), want %d", len(recs), err, tc.want)
			}
		})
	}
}

// Concurrent appenders share commits; every one gets a distinct sequence
// number and the records read back in sequence order are exactly theirs.
func TestAppendConcurrentGroupCommit(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	const workers, each = 32, 40
	var mu sync.Mutex
	got := map[uint64]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				p := fmt.Sprintf("w%d-%d", w, i)
				seq, err := db.Append(context.Background(), crit(p))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[seq]; dup {
					t.Errorf("seq %d given twice (%s, %s)", seq, prev, p)
				}
				got[seq] = p
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	recs, err := db.ReadOutbox(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != workers*each {
		t.Fatalf("read %d records, want %d", len(recs), workers*each)
	}
	for i, r := range recs {
		if got[r.Seq] != string(r.Payload) {
			t.Fatalf("seq %d holds %q, appender was told %q", r.Seq, r.Payload, got[r.Seq])
		}
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Fatalf("records out of order at %d", i)
		}
	}
}

func TestAppendRejectsBadEntries(t *testing.T) {
	db := storetest.Open(t, store.Options{Outbox: store.OutboxLimits{MaxEntryBytes: 100}})
	tests := []struct {
		name string
		e    store.Entry
		want error
	}{
		{"too large", crit(string(make([]byte, 101))), store.ErrRecordTooLarge},
		{"long subject", store.Entry{Class: store.Critical, Subject: make([]byte, 256)}, store.ErrRecordTooLarge},
		{"no class", store.Entry{Payload: []byte("x")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Append(context.Background(), tc.e)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := payloads(t, db, 0); len(got) != 0 {
		t.Fatalf("refused entries were stored: %d", len(got))
	}
}

// The bounds: telemetry fills at most Max-Reserved and is shed oldest-first;
// critical records use the reserve, are never shed, and past the bound the
// append fails with ErrOutboxFull leaving everything stored as it was.
func TestOutboxBounds(t *testing.T) {
	lim := store.OutboxLimits{MaxRecords: 10, ReservedRecords: 4, MaxBytes: 1 << 20, ReservedBytes: 1 << 10, MaxEntryBytes: 512}
	db := storetest.Open(t, store.Options{Outbox: lim})

	for i := range 8 {
		mustAppend(t, db, tel(fmt.Sprint("t", i)))
	}
	// Telemetry may use only 6 slots: t0 and t1 were shed, oldest first.
	if got := payloads(t, db, 0); !slices.Equal(got, []string{"t2", "t3", "t4", "t5", "t6", "t7"}) {
		t.Fatalf("after 8 telemetry appends: %v", got)
	}
	for i := range 4 {
		mustAppend(t, db, crit(fmt.Sprint("c", i)))
	}
	// Critical took the reserve without shedding: 6 + 4 = 10.
	if got := payloads(t, db, 0); len(got) != 10 {
		t.Fatalf("after reserve: %v", got)
	}
	// Full: a critical record sheds the oldest telemetry.
	for i := range 6 {
		mustAppend(t, db, crit(fmt.Sprint("d", i)))
	}
	want := []string{"c0", "c1", "c2", "c3", "d0", "d1", "d2", "d3", "d4", "d5"}
	if got := payloads(t, db, 0); !slices.Equal(got, want) {
		t.Fatalf("after shedding all telemetry: %v", got)
	}
	// Nothing left to shed: both classes are refused, nothing is lost.
	for _, e := range []store.Entry{crit("x"), tel("y")} {
		if _, err := db.Append(context.Background(), e); !errors.Is(err, store.ErrOutboxFull) {
			t.Fatalf("append %s to a full outbox: %v, want ErrOutboxFull", e.Class, err)
		}
	}
	if got := payloads(t, db, 0); !slices.Equal(got, want) {
		t.Fatalf("a refused append changed the outbox: %v", got)
	}
	st, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Critical.Records != 10 || st.Telemetry.Records != 0 || st.Shed != 8 || st.Rejected != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOutboxByteBound(t *testing.T) {
	lim := store.OutboxLimits{MaxRecords: 1000, ReservedRecords: 1, MaxBytes: 4000, ReservedBytes: 1000, MaxEntryBytes: 500}
	db := storetest.Open(t, store.Options{Outbox: lim})
	big := string(bytes.Repeat([]byte("b"), 400))
	for range 20 {
		mustAppend(t, db, tel(big))
	}
	st, _ := db.OutboxStats()
	if st.Telemetry.Bytes > 3000 || st.Shed == 0 {
		t.Fatalf("telemetry bytes %d over its share 3000 (shed %d)", st.Telemetry.Bytes, st.Shed)
	}
	for range 20 {
		db.Append(context.Background(), crit(big))
	}
	st, _ = db.OutboxStats()
	if total := st.Critical.Bytes + st.Telemetry.Bytes; total > 4000 {
		t.Fatalf("outbox holds %d bytes, bound 4000", total)
	}
}

// Counters are part of the file, not of the process.
func TestOutboxStatsSurviveReopen(t *testing.T) {
	key := storetest.Key(t)
	path := t.TempDir() + "/s.db"
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	mustAppend(t, db, crit("a"))
	mustAppend(t, db, tel("b"))
	before, _ := db.OutboxStats()
	db.Close()
	db = storetest.OpenAt(t, path, store.Options{Key: key})
	after, err := db.OutboxStats()
	if err != nil || after.Critical != before.Critical || after.Telemetry != before.Telemetry || after.LastSeq != before.LastSeq {
		t.Fatalf("stats before %+v after %+v (%v)", before, after, err)
	}
	if after.FirstSeq != 1 || after.OldestAt == 0 || db.QueuedRecords() != 2 {
		t.Fatalf("oldest: %+v, queued %d", after, db.QueuedRecords())
	}
}

func TestOutboxBySubjectAndReplace(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	alice, bob := []byte("subject-alice"), []byte("subject-bob")
	var aliceSeqs []uint64
	for i := range 3 {
		aliceSeqs = append(aliceSeqs, mustAppend(t, db, store.Entry{Class: store.Critical, Subject: alice, Label: "marketing", Payload: []byte(fmt.Sprint("alice", i))}))
		mustAppend(t, db, store.Entry{Class: store.Critical, Subject: bob, Payload: []byte("bob")})
	}
	err := db.Update(func(tx *store.Tx) error {
		seqs, err := tx.OutboxBySubject(alice)
		if err != nil || !slices.Equal(seqs, aliceSeqs) {
			return fmt.Errorf("by subject: %v %v, want %v", seqs, err, aliceSeqs)
		}
		// Strip identity from the first, drop the second.
		if err := tx.ReplaceOutbox(seqs[0], store.Entry{Label: "marketing", Payload: []byte("anonymous")}); err != nil {
			return err
		}
		return tx.DeleteOutbox(seqs[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *store.Tx) error {
		seqs, _ := tx.OutboxBySubject(alice)
		if !slices.Equal(seqs, aliceSeqs[2:]) {
			t.Errorf("after strip and delete, alice has %v", seqs)
		}
		r, ok, err := tx.OutboxRecord(aliceSeqs[0])
		if !ok || err != nil || string(r.Payload) != "anonymous" || r.Subject != nil || r.Class != store.Critical {
			t.Errorf("replaced record: %+v ok=%v err=%v", r, ok, err)
		}
		return nil
	})
	if got := payloads(t, db, 0); !slices.Equal(got, []string{"anonymous", "bob", "bob", "alice2", "bob"}) {
		t.Fatalf("outbox after strip: %v", got)
	}
}

func TestAppendAfterClose(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	db.Close()
	if _, err := db.Append(context.Background(), crit("x")); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := db.Update(func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
}

func TestAppendContextCancelled(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The committer may take the request before select sees ctx: either the
	// record is durable with a sequence number or refused with ctx.Err().
	seq, err := db.Append(ctx, crit("x"))
	if (err == nil) == (seq == 0) || (err != nil && !errors.Is(err, context.Canceled)) {
		t.Fatalf("seq %d err %v", seq, err)
	}
}

func TestAppendedSignal(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	select {
	case <-db.Appended():
		t.Fatal("signal before any append")
	default:
	}
	mustAppend(t, db, crit("a"))
	mustAppend(t, db, crit("b"))
	select {
	case <-db.Appended():
	default:
		t.Fatal("no signal after appends")
	}
	select {
	case <-db.Appended():
		t.Fatal("two appends before a read left two signals, want one")
	default:
	}
	db.DeleteOutboxRange(0, 100)
	select {
	case <-db.Appended():
		t.Fatal("a delete signalled an append")
	default:
	}
}

// Ranges deleted in one transaction, overlapping and spanning many pages,
// as the uplink's deleter hands them over: every record of their union
// goes with its index entries, the others stay, and the counters follow.
func TestDeleteOutboxRangesInOneTransaction(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	const n = 3000
	subject := []byte("subject-tag")
	appendMixed(t, db, n, subject)
	// Sequence numbers are 1..n.
	ranges := [][2]uint64{{1500, 2000}, {1001, 2500}, {10, 20}, {2990, 5000}, {1200, 1300}}
	gone := map[uint64]bool{}
	want := 0
	for _, r := range ranges {
		for s := r[0]; s <= min(r[1], n); s++ {
			if !gone[s] {
				want++
			}
			gone[s] = true
		}
	}
	deleted := 0
	err := db.Update(func(tx *store.Tx) error {
		for _, r := range ranges {
			k, err := tx.DeleteOutboxRange(r[0], r[1])
			if err != nil {
				return err
			}
			deleted += k
		}
		return nil
	})
	if err != nil || deleted != want {
		t.Fatalf("deleted %d (%v), want %d", deleted, err, want)
	}
	recs, err := db.ReadOutbox(0, n, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var left []uint64
	for s := uint64(1); s <= n; s++ {
		if !gone[s] {
			left = append(left, s)
		}
	}
	var got []uint64
	for _, r := range recs {
		got = append(got, r.Seq)
	}
	if !slices.Equal(got, left) {
		t.Fatalf("%d records left, want %d (first %v)", len(got), len(left), got[:min(5, len(got))])
	}
	st, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	var crit, tels uint64
	for _, s := range left {
		if s%2 == 1 { // the i-th append, i even, has sequence i+1
			crit++
		} else {
			tels++
		}
	}
	if st.Critical.Records != crit || st.Telemetry.Records != tels {
		t.Fatalf("counters: %d critical, %d telemetry; want %d, %d", st.Critical.Records, st.Telemetry.Records, crit, tels)
	}
	err = db.View(func(tx *store.Tx) error {
		seqs, err := tx.OutboxBySubject(subject)
		if err != nil {
			return err
		}
		var want []uint64
		for _, s := range left {
			if s%2 == 1 {
				want = append(want, s)
			}
		}
		if !slices.Equal(seqs, want) {
			t.Fatalf("subject index holds %d sequence numbers, want %d", len(seqs), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The telemetry index follows: shedding finds only live records.
	if st.Telemetry.OldestAt == 0 {
		t.Fatal("no oldest telemetry time: the telemetry index lost live records")
	}
}

// appendMixed appends n records in one transaction: critical ones linked to
// subject and telemetry, in turn, each with 100 bytes of padding. Their
// sequence numbers are those that follow the last.
func appendMixed(t *testing.T, db *store.DB, n int, subject []byte) {
	t.Helper()
	err := db.Update(func(tx *store.Tx) error {
		for i := range n {
			e := tel(fmt.Sprintf("event %04d %s", i, strings.Repeat("x", 100)))
			if i%2 == 0 {
				e = crit(fmt.Sprintf("event %04d %s", i, strings.Repeat("x", 100)))
				e.Subject = subject
			}
			if _, err := tx.AppendOutbox(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
