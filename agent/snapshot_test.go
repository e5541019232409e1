package agent

import (
	"context"
	"fmt"
	"testing"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// A snapshot is built beside the live cache, which keeps serving until the
// snapshot commits; then the cache is the snapshot's, at its cursor, with
// what only this store knows carried over.
func TestSnapshotReplacesCacheAtomically(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	// A decision made here, newer than anything the snapshot will say.
	f.local(t, "marketing", consent.Granted, f.a.now()+10)
	enrolled, err := f.a.Enroll(ctx, EnrollRequest{Scan: "4916338506082832", Purpose: "marketing"})
	if err != nil {
		t.Fatal(err)
	}

	snap, err := f.a.BeginSnapshot(ctx, 500)
	if err != nil {
		t.Fatal(err)
	}
	at := f.a.now()
	err = snap.Add(ctx, []Change{
		{Kind: ChangeProfile, Profile: "cust-1", Version: 7, Idents: [][]byte{identHash("loyalty", card)},
			Attrs: []Attribute{{Name: "tier", Purpose: "loyalty", Value: "platinum"}, {Name: "first_name", Purpose: "marketing", Value: "Ada"}}},
		{Kind: ChangeConsent, Profile: "cust-1", Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: at}, "marketing": {Status: consent.Denied, At: at}}},
		{Kind: ChangeProfile, Profile: "cust-2", Version: 1, Idents: [][]byte{identHash("loyalty", "4539578763621486")},
			Attrs: []Attribute{{Name: "tier", Purpose: "loyalty", Value: "silver"}}},
		{Kind: ChangeConsent, Profile: "cust-2", Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: at}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not committed: the old cache still answers.
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "loyalty"}); got.Attributes[0].Value != "gold" {
		t.Fatalf("before commit: %+v", got.Attributes)
	}
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: "4539578763621486", Purpose: "loyalty"}); got.Known {
		t.Fatal("a half-built snapshot is visible")
	}
	if err := snap.Add(ctx, []Change{{Kind: ChangeProfile, Profile: "cust-3", Version: 1, Idents: [][]byte{identHash("loyalty", "4556737586899855")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "loyalty"})
	if got.Attributes[0].Value != "platinum" {
		t.Fatalf("after commit: %+v", got.Attributes)
	}
	// The local grant was newer than the snapshot's denial: it stands.
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "marketing"}); !got.Permitted {
		t.Fatal("the snapshot overrode a newer local decision")
	}
	// Consent came after the slice in its chunk: the slice was kept all the same.
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: "4539578763621486", Purpose: "loyalty"}); !got.Known || len(got.Attributes) != 1 {
		t.Fatalf("snapshot profile after commit: %+v", got)
	}
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: "4916338506082832", Purpose: "loyalty"}); got.AnonymousID != enrolled {
		t.Fatalf("the enrolment made here was lost: %+v", got)
	}
	if cur, _ := f.a.Cursor(); cur != 500 {
		t.Fatalf("cursor %d after snapshot to 500", cur)
	}
	if due, _ := f.db.CompactionDue(); due == 0 {
		t.Fatal("no compaction scheduled after a snapshot")
	}
	// The next change applies at 501.
	f.apply(t, Change{Kind: ChangeRestrict, Profile: "cust-2", Restricted: true})
	if cur, _ := f.a.Cursor(); cur != 501 {
		t.Fatalf("cursor %d", cur)
	}
}

// Recheck strips a queued event whose purpose stopped being permitted by a
// path that did not strip the queue itself.
func TestRecheckBeforeSend(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"marketing": consent.Granted})
	capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1"})
	capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-1"})
	// Withdraw behind the agent's back: the cache changes, the queue does not.
	pk := f.a.pkey("cust-1")
	err := f.db.Update(func(tx *store.Tx) error {
		c := f.a.live(tx)
		rec, err := c.get(pk)
		if err != nil {
			return err
		}
		old := *rec
		rec.Consent["marketing"] = consent.Entry{Status: consent.Withdrawn, At: f.a.now(), Source: consent.Local}
		return c.put(pk, rec, &old)
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := f.outbox(t)
	payloads, err := f.a.Recheck(recs)
	if err != nil {
		t.Fatal(err)
	}
	stripped := 0
	for i, p := range payloads {
		ev, _ := decodeEvent(t, p)
		if ev.Event == "Offer Redeemed" && (ev.UserID != "" || containsAny(p, email)) {
			t.Fatal("recheck let a withdrawn purpose leave with identity")
		}
		if ev.Event == "Order Completed" && ev.UserID != "cust-1" {
			t.Fatal("recheck stripped a permitted purpose")
		}
		if string(p) != string(recs[i].Payload) {
			stripped++
		}
	}
	if stripped != 1 {
		t.Fatalf("%d payloads changed, want 1", stripped)
	}
	_ = ctx
}

// What happens here while a snapshot is being built is not lost when it
// commits: a decision made after the chunks arrived is carried over, and
// a customer erased here does not come back from the snapshot.
func TestSnapshotCarriesChangesMadeWhileBuilding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	f.seedCustomer(t, "cust-9", "4539578763621486", "nine@example.com", map[string]consent.Status{"loyalty": consent.Granted})
	snap, err := f.a.BeginSnapshot(ctx, 900)
	if err != nil {
		t.Fatal(err)
	}
	at := f.a.now()
	err = snap.Add(ctx, []Change{
		{Kind: ChangeProfile, Profile: "cust-1", Version: 3, Idents: [][]byte{identHash("loyalty", card)},
			Attrs: []Attribute{{Name: "tier", Purpose: "loyalty", Value: "gold"}}},
		{Kind: ChangeConsent, Profile: "cust-1", Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: at}, "marketing": {Status: consent.Denied, At: at}}},
		{Kind: ChangeProfile, Profile: "cust-9", Version: 3, Idents: [][]byte{identHash("loyalty", "4539578763621486")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.local(t, "marketing", consent.Granted, at+5)
	if err := f.a.Request(ctx, RightsRequest{UserID: "cust-9", Right: RightErase, Device: "kiosk-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "marketing"}); !got.Permitted {
		t.Fatal("a decision made while the snapshot was building was lost")
	}
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: "4539578763621486", Purpose: "loyalty"}); got.Known {
		t.Fatal("a customer erased while the snapshot was building came back")
	}
}

// A customer whose profile and consent come in different chunks is
// filtered by the consent all the same; past MaxProfiles the rest is left
// out and counted.
func TestSnapshotAcrossChunksAndBound(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxProfiles = 50 })
	ctx := context.Background()
	snap, err := f.a.BeginSnapshot(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	at := f.a.now()
	var first, second []Change
	for i := range 80 {
		id := fmt.Sprintf("c-%02d", i)
		first = append(first, Change{Kind: ChangeProfile, Profile: id, Version: 1,
			Idents: [][]byte{identHash("loyalty", cardNo(i))},
			Attrs:  []Attribute{{Name: "tier", Purpose: "loyalty", Value: "gold"}, {Name: "first_name", Purpose: "marketing", Value: "Ada"}}})
		second = append(second, Change{Kind: ChangeConsent, Profile: id, Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: at}}})
	}
	if err := snap.Add(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := snap.Add(ctx, second); err != nil {
		t.Fatal(err)
	}
	evicted := f.a.Stats()["evicted"]
	n, err := snap.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 50 || f.a.Stats()["evicted"]-evicted != 30 {
		t.Fatalf("kept %d, evicted %d; want 50 and 30", n, f.a.Stats()["evicted"]-evicted)
	}
	known := 0
	for i := range 80 {
		got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: cardNo(i), Purpose: "loyalty"})
		if !got.Known {
			continue
		}
		known++
		if len(got.Attributes) != 1 || got.Attributes[0].Name != "tier" {
			t.Fatalf("c-%02d: %+v (marketing was never granted: first_name must not be cached)", i, got.Attributes)
		}
	}
	if known != 50 {
		t.Fatalf("%d customers identified, want 50", known)
	}
}

// cardNo is a valid loyalty number (Luhn) made from i.
func cardNo(i int) string {
	p := fmt.Sprintf("400000000000%03d", i)
	return p + string(ident.LuhnCheckDigit(p))
}

// TestIdentifyAcrossGenerationSwitches: scans served while snapshots
// switch the live generation again and again always find the customer,
// and never see an older snapshot after a newer one (the live mark that
// spares Identify the generation's lookup is never stale).
func TestIdentifyAcrossGenerationSwitches(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	const rounds = 12
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			last := int64(-1)
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				got, err := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "loyalty"})
				if err != nil || !got.Known || len(got.Attributes) != 1 {
					errs <- fmt.Errorf("identify during switches: %+v %v", got, err)
					return
				}
				v, _ := got.Attributes[0].Value.(uint64) // the seeded "gold" reads as 0
				if int64(v) < last {
					errs <- fmt.Errorf("snapshot %d seen after snapshot %d", v, last)
					return
				}
				last = int64(v)
			}
		}()
	}
	at := f.a.now()
	for k := 1; k <= rounds; k++ {
		snap, err := f.a.BeginSnapshot(ctx, uint64(100*k))
		if err != nil {
			t.Fatal(err)
		}
		err = snap.Add(ctx, []Change{
			{Kind: ChangeProfile, Profile: "cust-1", Version: uint64(k), Idents: [][]byte{identHash("loyalty", card)},
				Attrs: []Attribute{{Name: "round", Purpose: "loyalty", Value: uint64(k)}}},
			{Kind: ChangeConsent, Profile: "cust-1", Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: at}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snap.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "loyalty"})
	if got.Attributes[0].Value != uint64(rounds) {
		t.Fatalf("after the last switch: %+v", got.Attributes)
	}
}

// TestLiveMarkSurvivesCompaction: a compaction starts the file's
// transaction ids again; the live mark is set anew on the new file, so
// Identify keeps skipping the generation's lookup, and it names the live
// generation.
func TestLiveMarkSurvivesCompaction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	for i := range 50 { // ids well past what the compacted file starts at
		if _, err := f.a.Capture(ctx, CaptureRequest{Event: "Product Viewed", AnonymousID: "v", Device: "pos-1", Properties: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := f.a.BeginSnapshot(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	err = snap.Add(ctx, []Change{
		{Kind: ChangeProfile, Profile: "cust-1", Version: 2, Idents: [][]byte{identHash("loyalty", card)},
			Attrs: []Attribute{{Name: "tier", Purpose: "loyalty", Value: "silver"}}},
		{Kind: ChangeConsent, Profile: "cust-1", Consent: map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: f.a.now()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.a.mark.Load()
	if _, err := f.db.Compact(ctx, nil); err != nil {
		t.Fatal(err)
	}
	err = f.db.View(func(tx *store.Tx) error {
		m := f.a.mark.Load()
		if m == nil || tx.ID() < m.since || m.gen != tx.MetaUint(metaGen) {
			t.Fatalf("after compaction: mark %+v (before %+v), transaction %d, live generation %d", m, before, tx.ID(), tx.MetaUint(metaGen))
		}
		if tx.ID() >= before.since {
			t.Fatalf("the compacted file's ids (%d) did not start again below %d: the test shows nothing", tx.ID(), before.since)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "loyalty"}); !got.Known || got.Attributes[0].Value != "silver" {
		t.Fatalf("identify after compaction: %+v", got)
	}
}
