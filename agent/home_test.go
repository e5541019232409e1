package agent

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// where says where the record of the profile at pkey lives: "home" plus the
// identifier it is homed at, or "pkey" for a record under its profile key.
func where(t *testing.T, f *fixture, pkey []byte) (string, []byte) {
	t.Helper()
	var at string
	var home []byte
	err := f.db.View(func(tx *store.Tx) error {
		c := f.a.live(tx)
		plain, err := c.profiles().GetSealed(pkey)
		if err != nil || plain == nil {
			return err
		}
		if plain[0] != homeTag {
			at = "pkey"
			return nil
		}
		at, home = "home", bytes.Clone(plain[1:1+identLen])
		owner, rec, err := c.atIdent(nil, home)
		if err == nil && !bytes.Equal(owner, pkey) {
			t.Errorf("home %x holds the record of %x, not of %x", home[:4], owner[:4], pkey[:4])
		}
		if err == nil && rec == nil {
			t.Errorf("home %x holds no record", home[:4])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return at, home
}

// identifies returns the user id Identify finds for kind and value, "" for
// an unknown customer.
func identifies(t *testing.T, f *fixture, kind ident.Kind, value string) string {
	t.Helper()
	got, err := f.a.Identify(context.Background(), IdentifyRequest{Kind: kind, Value: value, Purpose: "analytics"})
	if err != nil {
		t.Fatalf("identify %s: %v", kind, err)
	}
	if !got.Known {
		return ""
	}
	if len(got.Attributes) != 1 || got.Attributes[0].Name != "segment" {
		t.Fatalf("identify %s: %s answered %+v", kind, got.UserID, got.Attributes)
	}
	return got.UserID
}

func (f *fixture) profile(t *testing.T, id string, idents ...[]byte) {
	t.Helper()
	f.apply(t, Change{Kind: ChangeProfile, Profile: id, Expires: f.a.now() + int64(time.Hour/time.Millisecond),
		Idents: idents, Attrs: []Attribute{{Name: "segment", Purpose: "analytics", Value: id}}})
}

// TestRecordLivesAtFirstIdentifier: a profile's record is sealed in the
// entry of its first identifier (a scan of it takes one lookup); its
// profile key points there and its other identifiers point to its key, and
// every way in reads the same record.
func TestRecordLivesAtFirstIdentifier(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	pk := f.a.pkey("cust-1")
	if at, home := where(t, f, pk); at != "home" || !bytes.Equal(home, identHash("loyalty", card)) {
		t.Fatalf("record at %s %x, want at the card's entry", at, home)
	}
	err := f.db.View(func(tx *store.Tx) error {
		v, err := f.a.live(tx).idents().Get(identHash("email", email))
		if !bytes.Equal(v, pk) {
			t.Errorf("e-mail entry %x, want the profile key", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []IdentifyRequest{{Scan: card}, {Kind: ident.Email, Value: email}} {
		req.Purpose = "loyalty"
		got, err := f.a.Identify(context.Background(), req)
		if err != nil || got.UserID != "cust-1" || len(got.Attributes) != 1 || got.Attributes[0].Name != "tier" {
			t.Fatalf("identify %+v: %+v %v", req, got, err)
		}
	}
	var rec *profileRec
	err = f.db.View(func(tx *store.Tx) error { rec, err = f.a.live(tx).get(pk); return err })
	if err != nil || rec == nil || rec.ID != "cust-1" || len(rec.Idents) != 2 {
		t.Fatalf("by profile key: %+v %v", rec, err)
	}
}

// TestHomeFollowsIdentifiers: when a profile loses its first identifier
// its record moves to the next, and under its profile key when it has
// none; nothing is left at the old home.
func TestHomeFollowsIdentifiers(t *testing.T) {
	f := newFixture(t)
	cardH, emailH := identHash("loyalty", card), identHash("email", email)
	pk := f.a.pkey("c1")
	f.profile(t, "c1", cardH, emailH)
	f.profile(t, "c1", emailH)
	if at, home := where(t, f, pk); at != "home" || !bytes.Equal(home, emailH) {
		t.Fatalf("record at %s %x, want at the e-mail's entry", at, home)
	}
	if got := identifies(t, f, ident.Loyalty, card); got != "" {
		t.Fatalf("the dropped card still identifies %q", got)
	}
	if got := identifies(t, f, ident.Email, email); got != "c1" {
		t.Fatalf("e-mail identifies %q", got)
	}
	f.profile(t, "c1")
	if at, _ := where(t, f, pk); at != "pkey" {
		t.Fatalf("a profile without identifiers has its record at %s", at)
	}
	if got := identifies(t, f, ident.Email, email); got != "" {
		t.Fatalf("the dropped e-mail still identifies %q", got)
	}
	if !dumpHolds(t, f.db, [][]byte{[]byte("c1")}) {
		t.Fatal("the record is gone")
	}
	n := 0
	f.db.View(func(tx *store.Tx) error {
		return f.a.live(tx).idents().ForEach(nil, func(_, _ []byte) error { n++; return nil })
	})
	if n != 0 {
		t.Fatalf("%d identifier entries left", n)
	}
}

// TestIdentifierTakenOver: the central gives another profile the
// identifier a record calls home. The record moves under its own key,
// whole: its other identifiers still find it, and erasing either customer
// leaves the other as it was.
func TestIdentifierTakenOver(t *testing.T) {
	for _, erase := range []string{"first", "second"} {
		t.Run("erase "+erase, func(t *testing.T) {
			f := newFixture(t)
			cardH, emailH := identHash("loyalty", card), identHash("email", email)
			f.profile(t, "c1", cardH, emailH)
			f.profile(t, "c2", cardH)
			if got := identifies(t, f, ident.Loyalty, card); got != "c2" {
				t.Fatalf("card identifies %q, want the later profile", got)
			}
			if got := identifies(t, f, ident.Email, email); got != "c1" {
				t.Fatalf("e-mail identifies %q, want c1", got)
			}
			if at, _ := where(t, f, f.a.pkey("c1")); at != "pkey" {
				t.Fatalf("c1's record at %s after losing its home", at)
			}
			gone, kept := "c1", "c2"
			if erase == "second" {
				gone, kept = kept, gone
			}
			f.apply(t, Change{Kind: ChangeErase, Profile: gone})
			wantCard, wantEmail := "c2", "" // c1 erased: its e-mail goes, c2 keeps the card
			if gone == "c2" {
				wantCard, wantEmail = "", "c1" // the card was c2's: it goes; c1 keeps its e-mail
			}
			if got := identifies(t, f, ident.Loyalty, card); got != wantCard {
				t.Fatalf("after erasing %s the card identifies %q, want %q", gone, got, wantCard)
			}
			if got := identifies(t, f, ident.Email, email); got != wantEmail {
				t.Fatalf("after erasing %s the e-mail identifies %q, want %q", gone, got, wantEmail)
			}
			var rec *profileRec
			err := f.db.View(func(tx *store.Tx) (err error) { rec, err = f.a.live(tx).get(f.a.pkey(kept)); return err })
			if err != nil || rec == nil || rec.ID != kept {
				t.Fatalf("%s after erasing %s: %+v %v", kept, gone, rec, err)
			}
		})
	}
}

// TestReadsRecordsWrittenBeforeHomes: a store whose records sit under
// their profile keys, with identifiers pointing there, answers as before,
// and a record written again takes its home.
func TestReadsRecordsWrittenBeforeHomes(t *testing.T) {
	f := newFixture(t)
	cardH := identHash("loyalty", card)
	pk := f.a.pkey("old-1")
	rec := &profileRec{V: 1, ID: "old-1", Version: 1, Idents: [][]byte{cardH},
		Attrs: []Attribute{{Name: "segment", Purpose: "analytics", Value: "old-1"}}}
	b, err := store.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.Update(func(tx *store.Tx) error {
		c := f.a.live(tx)
		if err := c.profiles().PutSealed(pk, b); err != nil {
			return err
		}
		if err := c.idents().Put(cardH, pk); err != nil {
			return err
		}
		return c.addCount(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := identifies(t, f, ident.Loyalty, card); got != "old-1" {
		t.Fatalf("card identifies %q in the old layout", got)
	}
	f.profile(t, "old-1", cardH)
	if at, _ := where(t, f, pk); at != "home" {
		t.Fatalf("rewritten record at %s", at)
	}
	if got := identifies(t, f, ident.Loyalty, card); got != "old-1" {
		t.Fatalf("card identifies %q after the rewrite", got)
	}
}

// TestBrokenHomeIsCorruption: a pointer to a home that holds another
// profile's record is reported as corruption, never answered with the
// other customer.
func TestBrokenHomeIsCorruption(t *testing.T) {
	f := newFixture(t)
	f.profile(t, "c1", identHash("loyalty", card))
	f.profile(t, "c2", identHash("email", email))
	err := f.db.Update(func(tx *store.Tx) error {
		return f.a.live(tx).profiles().PutSealed(f.a.pkey("c1"), homePointer(identHash("email", email), &profileRec{}))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.View(func(tx *store.Tx) error { _, err := f.a.live(tx).get(f.a.pkey("c1")); return err })
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("read through a pointer to another's home: %v, want a CorruptError", err)
	}
}

// TestSnapshotSharedIdentifier: two customers of one snapshot name the
// same identifier. One keeps it, and the other's record, displaced from
// that home, is whole under its own key: nothing is lost in the merge.
func TestSnapshotSharedIdentifier(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cardH, emailH := identHash("loyalty", card), identHash("email", email)
	snap, err := f.a.BeginSnapshot(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	var changes []Change
	for _, id := range []string{"a", "b", "c", "d"} {
		idents := [][]byte{cardH, identHash("app", "tok-"+id)}
		if id == "a" {
			idents = append(idents, emailH)
		}
		changes = append(changes, Change{Kind: ChangeProfile, Profile: id, Version: 1, Idents: idents,
			Attrs: []Attribute{{Name: "segment", Purpose: "analytics", Value: id}}})
	}
	if err := snap.Add(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if n, err := snap.Commit(ctx); err != nil || n != 4 {
		t.Fatalf("commit: %d %v", n, err)
	}
	owner := identifies(t, f, ident.Loyalty, card)
	if owner == "" {
		t.Fatal("the shared card identifies nobody")
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if got := identifies(t, f, ident.App, "tok-"+id); got != id {
			t.Fatalf("app token of %s identifies %q", id, got)
		}
		at, home := where(t, f, f.a.pkey(id))
		if id == owner && (at != "home" || !bytes.Equal(home, cardH)) {
			t.Fatalf("%s keeps the card but its record is at %s", id, at)
		}
		if id != owner && at != "pkey" {
			t.Fatalf("%s was displaced from the card but its record is at %s", id, at)
		}
	}
	if got := identifies(t, f, ident.Email, email); got != "a" {
		t.Fatalf("e-mail identifies %q", got)
	}
}

// TestSnapshotFollowsOnlyCarriedPointers: a snapshot's walks of the live
// cache follow a pointer to its home only when the pointer says the record
// has something to carry over (a decision made here). The home of a
// customer without one is made unreadable: the snapshot never reads it,
// and the decision made here for the other customer is carried.
func TestSnapshotFollowsOnlyCarriedPointers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	plainCard := identHash("loyalty", "4539578763621486")
	f.profile(t, "plain", plainCard)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	at := f.a.now()
	f.local(t, "marketing", consent.Granted, at)
	err := f.db.Update(func(tx *store.Tx) error {
		return f.a.live(tx).idents().Put(plainCard, []byte("damaged home entry, not a seal"))
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.a.BeginSnapshot(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	var changes []Change
	for _, id := range []string{"plain", "cust-1"} {
		h := plainCard
		if id == "cust-1" {
			h = identHash("loyalty", card)
		}
		changes = append(changes, Change{Kind: ChangeProfile, Profile: id, Version: 2, Idents: [][]byte{h},
			Attrs: []Attribute{{Name: "first_name", Purpose: "marketing", Value: id}}})
	}
	if err := snap.Add(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Commit(ctx); err != nil {
		t.Fatalf("the snapshot read a home it had no reason to: %v", err)
	}
	got, err := f.a.Identify(ctx, IdentifyRequest{Scan: card, Purpose: "marketing"})
	if err != nil || !got.Permitted || len(got.Attributes) != 1 {
		t.Fatalf("the decision made here was not carried: %+v %v", got, err)
	}
}
