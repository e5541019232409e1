package central

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/storeagent/storeagent/sync/wire"
)

func TestChangesSignedForTheStore(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 10))
	a := newTestAgent(t, broker, "pos-1")

	seq, err := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: ProfileID(3)})
	if err != nil || seq != 2 {
		t.Fatalf("publish: seq %d, %v; want 2 (seq 1 is the baseline)", seq, err)
	}
	ch := a.waitChange(5 * time.Second)
	if ch.Seq != 2 || ch.Body.(*wire.EraseChange).Profile != ProfileID(3) {
		t.Errorf("change %+v", ch)
	}
	seq, err = c.Publish(t.Context(), testStore, &wire.RestrictChange{Profile: ProfileID(4), Restricted: true})
	if err != nil || seq != 3 {
		t.Fatalf("publish: seq %d, %v", seq, err)
	}
	if ch := a.waitChange(5 * time.Second); ch.Seq != 3 {
		t.Errorf("seq %d, want 3", ch.Seq)
	}
	if a.bad.Load() != 0 {
		t.Errorf("%d messages failed verification", a.bad.Load())
	}

	// The stream of another store does not verify under this store's scope.
	if _, err := c.Publish(t.Context(), "s2", &wire.EraseChange{Profile: ProfileID(1)}); err != nil {
		t.Fatal(err)
	}
	sl, _ := c.storeLog("s2", false)
	v := sl.view()
	other := must(v.file.readFrame(v.offsets[0]))
	rec := must(decodeChangeRecord(other))
	if _, err := wire.VerifyChange(testVerifier(t), wire.Scope{Tenant: testTenant, Store: testStore}, rec.Signed); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("a change of s2 verified at s1: %v", err)
	}

	// A body the protocol refuses is not logged.
	if _, err := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: "bad id!"}); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("invalid change: %v", err)
	}
	if got := c.Report().Stores[0]; got.Seq != 3 || got.Changes["erase"] != 1 || got.Changes["restrict"] != 1 {
		t.Errorf("store report %+v", got)
	}
}

func TestPublishWithoutRunIsLogged(t *testing.T) {
	c, err := New(testConfig(t, "", t.TempDir(), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seq, err := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: "p1"})
	if seq != 1 || !errors.Is(err, ErrNotPublished) {
		t.Fatalf("seq %d, err %v; want 1 and ErrNotPublished", seq, err)
	}
}

func TestSyncRun(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 10))
	a := newTestAgent(t, broker, "pos-1")
	for i := range 3 {
		if _, err := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: ProfileID(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		a.waitChange(5 * time.Second)
	}

	a.sendSync(3)
	sets := a.reply(5 * time.Second)
	if len(sets) != 1 {
		t.Fatalf("%d sets, want 1", len(sets))
	}
	cs := sets[0].cs
	if cs.Snapshot || cs.From != 3 || cs.To != 4 || len(cs.Changes) != 2 || cs.Changes[0].Seq != 3 || cs.Changes[1].Seq != 4 {
		t.Errorf("run %+v", cs)
	}

	a.sendSync(9) // an agent ahead of the central
	cs = a.reply(5 * time.Second)[0].cs
	if cs.Snapshot || cs.From != 5 || cs.To != 4 || len(cs.Changes) != 0 || cs.More {
		t.Errorf("empty run %+v, want from 5 to 4", cs)
	}
	if r := agentReport(t, c.Report(), "pos-1"); r.SyncRequests != 2 {
		t.Errorf("sync requests %d, want 2", r.SyncRequests)
	}
}

// snapshotState is what an agent would hold after a snapshot.
type snapshotState struct {
	to       uint64
	profiles map[string]*wire.ProfileChange
	consent  map[string]map[string]wire.ConsentEntry
	restrict map[string]bool
	policy   *wire.PolicyChange
	chunks   int
}

// checkSnapshot checks the rules of a snapshot's chunks and returns the
// state they describe: every chunk within the size limits, each profile's
// consent (and restriction) in the same chunk and before it, each profile
// once.
func checkSnapshot(t testing.TB, sets []wire.ChangeSet, sizes []int) snapshotState {
	t.Helper()
	st := snapshotState{profiles: map[string]*wire.ProfileChange{}, consent: map[string]map[string]wire.ConsentEntry{},
		restrict: map[string]bool{}, chunks: len(sets)}
	for i, cs := range sets {
		if !cs.Snapshot || cs.More != (i < len(sets)-1) {
			t.Fatalf("chunk %d: snapshot %t more %t", i, cs.Snapshot, cs.More)
		}
		if i == 0 {
			st.to = cs.To
		} else if cs.To != st.to {
			t.Fatalf("chunk %d stands at %d, chunk 0 at %d", i, cs.To, st.to)
		}
		if sizes != nil && sizes[i] > wire.MaxChangeSetSize+wire.MaxSignedOverhead {
			t.Fatalf("chunk %d: %d bytes", i, sizes[i])
		}
		decided := map[string]bool{} // profiles whose consent this chunk carried
		for _, ch := range cs.Changes {
			switch b := ch.Body.(type) {
			case *wire.ConsentChange:
				st.consent[b.Profile] = b.Purposes
				decided[b.Profile] = true
			case *wire.RestrictChange:
				if !decided[b.Profile] {
					t.Fatalf("chunk %d: restriction of %s before its consent", i, b.Profile)
				}
				st.restrict[b.Profile] = b.Restricted
			case *wire.ProfileChange:
				if _, dup := st.profiles[b.Profile]; dup {
					t.Fatalf("profile %s twice", b.Profile)
				}
				if !decided[b.Profile] && st.consent[b.Profile] != nil {
					t.Fatalf("chunk %d: consent of %s in another chunk", i, b.Profile)
				}
				st.profiles[b.Profile] = b
			case *wire.PolicyChange:
				if i != 0 {
					t.Fatalf("policy in chunk %d", i)
				}
				st.policy = b
			default:
				t.Fatalf("a snapshot holds a %s change", ch.Body.Kind())
			}
		}
	}
	for id := range st.consent {
		if st.profiles[id] == nil {
			t.Fatalf("consent of %s without its profile", id)
		}
	}
	return st
}

func TestSyncSnapshotOverMQTT(t *testing.T) {
	broker := startMosquitto(t)
	const n = 300
	c := startCentral(t, testConfig(t, broker, t.TempDir(), n))
	a := newTestAgent(t, broker, "pos-1")
	ctx := t.Context()
	withdrawn := wire.ConsentEntry{Status: wire.StatusWithdrawn, Basis: wire.BasisConsent, At: time.Now().UnixMilli()}
	changes := []wire.Body{
		&wire.EraseChange{Profile: ProfileID(3)},
		&wire.ConsentChange{Profile: ProfileID(4), Purposes: map[string]wire.ConsentEntry{PurposeMarketing: withdrawn}},
		&wire.RestrictChange{Profile: ProfileID(5), Restricted: true},
		&wire.ProfileChange{Profile: "p-new", Idents: []wire.Ident{IdentOf(testTenantKey, "email", "new@example.com")},
			Attrs: []wire.Attr{{Name: "tier", Purpose: PurposeLoyalty, Value: "gold"}}, Version: 1, Expires: time.Now().Add(time.Hour).UnixMilli()},
		&wire.EraseChange{Profile: ProfileID(6)},
		&wire.ProfileChange{Profile: ProfileID(6), Attrs: []wire.Attr{{Name: "tier", Purpose: PurposeLoyalty, Value: "new"}},
			Version: 1, Expires: time.Now().Add(time.Hour).UnixMilli()},
	}
	for _, b := range changes {
		if _, err := c.Publish(ctx, testStore, b); err != nil {
			t.Fatal(err)
		}
	}

	a.sendSync(1) // an agent that never saw the baseline
	var sets []wire.ChangeSet
	var sizes []int
	for _, s := range a.reply(10 * time.Second) {
		sets, sizes = append(sets, s.cs), append(sizes, s.size)
	}
	st := checkSnapshot(t, sets, sizes)
	if st.to != 7 {
		t.Errorf("snapshot at %d, want 7", st.to)
	}
	if len(st.profiles) != n-1+1 {
		t.Errorf("%d profiles, want %d (one erased, one new)", len(st.profiles), n)
	}
	if st.profiles[ProfileID(3)] != nil {
		t.Error("erased customer 3 is in the snapshot")
	}
	if got := st.consent[ProfileID(4)][PurposeMarketing].Status; got != wire.StatusWithdrawn {
		t.Errorf("customer 4 marketing %s, want withdrawn", got)
	}
	if !st.restrict[ProfileID(5)] || len(st.restrict) != 1 {
		t.Errorf("restrictions %v, want only customer 5", st.restrict)
	}
	if p := st.profiles["p-new"]; p == nil || st.consent["p-new"] != nil {
		t.Errorf("new profile %+v, consent %v", p, st.consent["p-new"])
	}
	// Customer 6 was erased, then created again: no baseline consent.
	if p := st.profiles[ProfileID(6)]; p == nil || len(p.Idents) != 0 || st.consent[ProfileID(6)] != nil {
		t.Errorf("customer 6 after erase and profile: %+v consent %v", p, st.consent[ProfileID(6)])
	}
	if !reflect.DeepEqual(st.policy, DefaultPolicy()) {
		t.Errorf("policy %+v", st.policy)
	}
	cu, _ := c.Customers().Customer(7)
	if p := st.profiles[ProfileID(7)]; p == nil || !reflect.DeepEqual(p.Idents, cu.Idents) || p.Version != 1 {
		t.Errorf("customer 7: %+v", p)
	}

	// A push through the control path gives the same.
	res, err := c.PushSnapshot(ctx, a.scope)
	if err != nil || !res.Snapshot || res.To != 7 {
		t.Fatalf("push: %+v %v", res, err)
	}
	if got := len(a.reply(10 * time.Second)); got != res.Chunks {
		t.Errorf("received %d chunks, push said %d", got, res.Chunks)
	}
}

// TestSnapshotChunking checks the chunk limits and customer grouping on a
// population that needs several chunks, without a broker.
func TestSnapshotChunking(t *testing.T) {
	n := 30000
	if testing.Short() || raceEnabled {
		n = 12000 // still more than one 4 MiB chunk
	}
	c, err := New(testConfig(t, "", t.TempDir(), n))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Publish(t.Context(), testStore, &wire.EraseChange{Profile: ProfileID(n - 1)}); !errors.Is(err, ErrNotPublished) {
		t.Fatal(err)
	}
	scope := wire.Scope{Tenant: testTenant, Store: testStore, Agent: "pos-1"}
	v := testVerifier(t)
	var sets []wire.ChangeSet
	var sizes []int
	res, err := c.Snapshot(t.Context(), scope, func(msg []byte) error {
		cs, err := wire.VerifyChangeSet(v, scope, msg)
		if err != nil {
			return err
		}
		sets, sizes = append(sets, cs), append(sizes, len(msg))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks < 2 || res.Chunks != len(sets) {
		t.Fatalf("%d chunks (result %+v), want several", len(sets), res)
	}
	st := checkSnapshot(t, sets, sizes)
	if len(st.profiles) != n-1 || st.to != 2 {
		t.Errorf("%d profiles at %d, want %d at 2", len(st.profiles), st.to, n-1)
	}
	for i, cs := range sets[:len(sets)-1] {
		if sizes[i] < wire.MaxChangeSetSize/2 {
			t.Errorf("chunk %d of %d bytes (%d changes): chunks should be packed", i, sizes[i], len(cs.Changes))
		}
	}
	// The wrong agent's scope does not verify.
	other := scope
	other.Agent = "pos-2"
	if _, err := c.Snapshot(context.Background(), scope, func(msg []byte) error {
		_, err := wire.VerifyChangeSet(v, other, msg)
		if !errors.Is(err, wire.ErrBadSignature) {
			t.Errorf("a chunk for pos-1 verified for pos-2: %v", err)
		}
		return errors.New("enough")
	}); err == nil {
		t.Error("emit's error was not returned")
	}
}
