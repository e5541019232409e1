package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

// ApplyRun over a stream does what Apply does change by change: the same
// result for every change (applied, duplicate, gap, refused), and the same
// state after: cursor, every customer's answer for every purpose, and the
// receipts queued for the central. The stream mixes profiles, consent
// decisions, erasures, restrictions, a policy change, duplicates, a gap
// and a bad change, over a few customers so changes meet.
func TestApplyRunIsApplyOneByOne(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			stream := randomStream(rand.New(rand.NewPCG(seed, 7)), 600)
			one, run := newFixture(t), newFixture(t)
			ctx := context.Background()

			var want, got []string
			for _, ch := range stream {
				res, err := one.a.Apply(ctx, ch)
				want = append(want, outcome(res, err))
			}
			calls := 0
			for rest := stream; len(rest) > 0; calls++ {
				res, err := run.a.ApplyRun(ctx, rest)
				if err != nil {
					got, rest = append(got, outcome(0, err)), rest[1:] // refused alone, as the downlink does
					continue
				}
				for _, r := range res {
					got = append(got, outcome(r, nil))
				}
				rest = rest[len(res):]
			}
			if !reflect.DeepEqual(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("change %d (seq %d, %s): run says %s, one by one %s", i, stream[i].Seq, stream[i].Kind, got[i], want[i])
					}
				}
				t.Fatalf("%d outcomes from the runs, %d one by one", len(got), len(want))
			}
			// A run stops at the policy change and the bad change, else
			// at MaxRun.
			if calls > 8 {
				t.Fatalf("%d calls of ApplyRun for %d changes: the runs are not runs", calls, len(stream))
			}
			sameState(t, one, run)
		})
	}
}

func outcome(res ApplyResult, err error) string {
	if err != nil {
		return "refused"
	}
	return res.String()
}

// randomStream numbers changes 1..n, with a few repeated (redelivery), one
// seq skipped (a gap: everything after it waits) near the end, and one bad
// change before the right one of its seq.
func randomStream(rng *rand.Rand, n int) []Change {
	const customers = 12
	var out []Change
	versions := make([]uint64, customers)
	at := int64(1_760_000_000_000)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		i := rng.IntN(customers)
		id := fmt.Sprintf("cust-%d", i)
		at += int64(rng.IntN(3)) // ties happen
		var ch Change
		switch k := rng.IntN(20); {
		case seq == uint64(n/3):
			p := testPolicy()
			p.Purposes[1].Basis = consent.BasisLegitimateInterest // marketing
			ch = Change{Kind: ChangePolicy, Policy: &p}
		case k < 8:
			versions[i]++
			ch = Change{Kind: ChangeProfile, Profile: id, Version: versions[i], Expires: at + int64(time.Hour/time.Millisecond),
				Idents: [][]byte{identHash("loyalty", benchCard(i))},
				Attrs: []Attribute{
					{Name: "tier", Purpose: "loyalty", Value: fmt.Sprint("tier-", seq)},
					{Name: "first_name", Purpose: "marketing", Value: "Ada"},
					{Name: "account_status", Purpose: "service", Value: "active"},
				}}
		case k < 16:
			statuses := []consent.Status{consent.Granted, consent.Denied, consent.Withdrawn, consent.Objected}
			purposes := []string{"loyalty", "marketing", "analytics", "service"}
			ch = Change{Kind: ChangeConsent, Profile: id, Consent: map[string]consent.Entry{
				purposes[rng.IntN(len(purposes))]: {Status: statuses[rng.IntN(len(statuses))], At: at},
			}}
		case k < 18:
			ch = Change{Kind: ChangeRestrict, Profile: id, Restricted: rng.IntN(2) == 0}
		default:
			ch = Change{Kind: ChangeErase, Profile: id}
		}
		ch.Seq = seq
		if seq == uint64(n/2) {
			// A bad change (no profile id), then the right one of its seq.
			out = append(out, Change{Seq: seq, Kind: ChangeProfile})
		}
		if seq == uint64(n-20) {
			ch.Seq++ // the gap: seq n-20 never comes
		}
		out = append(out, ch)
		if rng.IntN(25) == 0 {
			out = append(out, ch) // redelivered
		}
	}
	return out
}

// sameState compares what two agents hold: cursor, the answer for every
// customer and purpose, and the queued receipts without their ids.
func sameState(t *testing.T, a, b *fixture) {
	t.Helper()
	ca, _ := a.a.Cursor()
	cb, _ := b.a.Cursor()
	if ca != cb {
		t.Fatalf("cursor %d one by one, %d by runs", ca, cb)
	}
	receipts := func(f *fixture) []string {
		_, evs := f.outbox(t)
		var out []string
		for _, ev := range evs {
			out = append(out, fmt.Sprint(ev.Event, ev.UserID, ev.AnonymousID, ev.Properties))
		}
		return out
	}
	if ra, rb := receipts(a), receipts(b); !reflect.DeepEqual(ra, rb) {
		t.Fatalf("outbox differs: %d events one by one, %d by runs", len(ra), len(rb))
	}
	for i := range 12 {
		for _, p := range testPolicy().Purposes {
			req := IdentifyRequest{Scan: benchCard(i), Purpose: p.Name}
			ia, errA := a.a.Identify(context.Background(), req)
			ib, errB := b.a.Identify(context.Background(), req)
			if !reflect.DeepEqual(ia, ib) || (errA == nil) != (errB == nil) {
				t.Fatalf("customer %d, %s: one by one %+v %v; by runs %+v %v", i, p.Name, ia, errA, ib, errB)
			}
		}
	}
}

// A change that fails inside the transaction (here: the record it updates
// is damaged on disk) ends the run before it: the changes before it are
// applied, it fails alone when it comes first, and nothing after it is
// lost to the failure.
func TestApplyRunStopsBeforeAFailingChange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.seedCustomer(t, "cust-1", benchCard(1), "ada@example.com", map[string]consent.Status{"loyalty": consent.Granted})
	cur, _ := f.a.Cursor()
	if err := f.db.Update(func(tx *store.Tx) error {
		return f.a.live(tx).profiles().Put(f.a.pkey("cust-1"), []byte("damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	profile := func(seq uint64, id string, card int) Change {
		return Change{Seq: seq, Kind: ChangeProfile, Profile: id, Version: seq, Expires: f.a.now() + 3_600_000,
			Idents: [][]byte{identHash("loyalty", benchCard(card))}, Attrs: []Attribute{{Name: "tier", Purpose: "loyalty", Value: "gold"}}}
	}
	run := []Change{profile(cur+1, "cust-2", 2), profile(cur+2, "cust-3", 3), profile(cur+3, "cust-1", 1), profile(cur+4, "cust-4", 4)}
	res, err := f.a.ApplyRun(ctx, run)
	if err != nil || len(res) != 2 || res[0] != Applied || res[1] != Applied {
		t.Fatalf("first run: %v %v, want the two changes before the damaged record applied", res, err)
	}
	if _, err := f.a.ApplyRun(ctx, run[2:]); err == nil {
		t.Fatal("the change on the damaged record applied")
	}
	if c, _ := f.a.Cursor(); c != cur+2 {
		t.Fatalf("cursor %d, want %d", c, cur+2)
	}
	for _, card := range []int{2, 3} {
		if id, _ := f.a.Identify(ctx, IdentifyRequest{Scan: benchCard(card), Purpose: "analytics"}); !id.Known {
			t.Fatalf("customer of card %d unknown after the first run", card)
		}
	}
}
