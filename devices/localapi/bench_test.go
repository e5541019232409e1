package localapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
)

// benchCard is the i-th Luhn-valid 16-digit card number.
func benchCard(i int) string {
	payload := fmt.Sprintf("900%012d", i)
	return payload + string(ident.LuhnCheckDigit(payload))
}

// loadProfiles applies n profile changes from the central, each at
// cursor+1 as the link would, one transaction each. The analytics purpose
// (legitimate interest) needs no consent change to be permitted.
func loadProfiles(b *testing.B, f *fixture, n int) {
	ctx := context.Background()
	cur, err := f.a.Cursor()
	if err != nil {
		b.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour).UnixMilli()
	for i := range n {
		cur++
		res, err := f.a.Apply(ctx, agent.Change{
			Seq: cur, Kind: agent.ChangeProfile, Profile: fmt.Sprintf("cust-%07d", i), Version: 1, Expires: expires,
			Idents: [][]byte{identHash("loyalty", benchCard(i))},
			Attrs: []agent.Attribute{
				{Name: "segment", Purpose: "analytics", Value: "weekend"},
				{Name: "visits", Purpose: "analytics", Value: int64(i % 50)},
				{Name: "account_status", Purpose: "service", Value: "active"},
			},
		})
		if err != nil || res != agent.Applied {
			b.Fatalf("apply %d: %v %v", i, res, err)
		}
	}
}

// BenchmarkIdentifyAPI measures what a POS sees: a scan identified through
// the local API, the Client over the unix socket, on a cache of 10,000
// profiles loaded through agent.Apply. The floor, measured in the same
// loop on the same scans, is the agent core's own Identify. Each op is one
// API identify and one core identify; the metrics are per request.
func BenchmarkIdentifyAPI(b *testing.B) {
	const profiles = 10_000
	f := newFixture(b, fixtureOpts{})
	start := time.Now()
	loadProfiles(b, f, profiles)
	b.Logf("loaded %d profiles through agent.Apply in %v", profiles, time.Since(start).Round(time.Millisecond))
	c := &localapi.Client{Socket: f.sock}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var api, core []float64
	for b.Loop() {
		scan := benchCard(rng.IntN(profiles))
		t0 := time.Now()
		id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: scan, Purpose: "analytics", Device: "pos-1"})
		t1 := time.Now()
		if err != nil || !id.Known || len(id.Attributes) != 2 {
			b.Fatalf("api identify: %+v %v", id, err)
		}
		cid, err := f.a.Identify(ctx, agent.IdentifyRequest{Scan: scan, Purpose: "analytics", Device: "pos-1"})
		t2 := time.Now()
		if err != nil || !cid.Known {
			b.Fatalf("core identify: %+v %v", cid, err)
		}
		api = append(api, float64(t1.Sub(t0).Nanoseconds())/1e3)
		core = append(core, float64(t2.Sub(t1).Nanoseconds())/1e3)
	}
	b.ReportMetric(pct(api, 50), "p50-µs")
	b.ReportMetric(pct(api, 99), "p99-µs")
	b.ReportMetric(pct(core, 50), "core-p50-µs")
	b.ReportMetric(pct(core, 99), "core-p99-µs")
}

func pct(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
