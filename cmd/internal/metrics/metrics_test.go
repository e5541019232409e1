package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/cmd/internal/metrics"
	"github.com/storeagent/storeagent/store"
)

// fixture is a real store and agent with a seeded customer, one purchase
// queued, and the identify hook feeding lat. It returns the critical
// records queued.
func fixture(t *testing.T) (*metrics.Collector, *metrics.Latencies, uint64) {
	t.Helper()
	lat := metrics.NewLatencies()
	ag, db := agenttest.New(t, store.Options{Key: make([]byte, 32)}, func(c *agent.Config) {
		c.ObserveIdentify = lat.ObserveIdentify
	})
	agenttest.Seed(t, ag, agenttest.Customer{ID: "cust-1", Card: "400123456784", Email: "jane.roe@example.com", Name: "Jane Roe",
		Decisions: map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Granted}})
	before, err := db.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ag.Capture(ctx, agent.CaptureRequest{Event: "Order Completed", UserID: "cust-1", Device: "pos-1",
		Traits: map[string]any{"email": "jane.roe@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if id, err := ag.Identify(ctx, agent.IdentifyRequest{Scan: "400123456784", Purpose: "marketing", Device: "pos-1"}); err != nil || !id.Known {
		t.Fatalf("identify: %+v %v", id, err)
	}
	if _, err := ag.Identify(ctx, agent.IdentifyRequest{Scan: "400123456785", Purpose: "loyalty", Device: "pos-1"}); err == nil {
		t.Fatal("a wrong check digit identified")
	}
	start := time.Now()
	c := metrics.NewCollector(metrics.Sources{Outbox: db, Agent: ag, Now: func() time.Time { return start.Add(90 * time.Second) }})
	return c, lat, before.Critical.Records + 1
}

func TestCollector(t *testing.T) {
	c, lat, critical := fixture(t)
	want := fmt.Sprintf(`
# HELP storeagent_outbox_records Records queued for the central, by class.
# TYPE storeagent_outbox_records gauge
storeagent_outbox_records{class="critical"} %d
storeagent_outbox_records{class="telemetry"} 0
# HELP storeagent_rejects_total Inputs refused, by source and reason.
# TYPE storeagent_rejects_total counter
storeagent_rejects_total{reason="blocked",source="identify"} 0
storeagent_rejects_total{reason="invalid",source="identify"} 1
storeagent_rejects_total{reason="outbox_full",source="outbox"} 0
# HELP storeagent_link_state 1 for the state the link to the central is in, 0 for the others.
# TYPE storeagent_link_state gauge
storeagent_link_state{state="connected"} 0
storeagent_link_state{state="disabled"} 1
storeagent_link_state{state="disconnected"} 0
# HELP storeagent_changes_cursor Sequence number of the last change from the central applied.
# TYPE storeagent_changes_cursor gauge
storeagent_changes_cursor 2
`, critical)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"storeagent_outbox_records", "storeagent_rejects_total", "storeagent_link_state", "storeagent_changes_cursor"); err != nil {
		t.Error(err)
	}
	text, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, "storeagent_outbox_oldest_age_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for class, want := range map[string][2]float64{"critical": {89, 95}, "telemetry": {0, 0}} {
		var age float64
		line := `storeagent_outbox_oldest_age_seconds{class="` + class + `"} `
		if _, after, ok := strings.Cut(string(text), line); !ok {
			t.Fatalf("no %s in\n%s", line, text)
		} else if _, err := fmt.Sscan(after, &age); err != nil || age < want[0] || age > want[1] {
			t.Errorf("oldest %s age %v (%v), want %v..%v", class, age, err, want[0], want[1])
		}
	}
	if n := testutil.CollectAndCount(lat.Identify); n != 1 {
		t.Errorf("identify histogram: %d series", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// Serve answers /metrics over HTTP, 404 elsewhere, and returns nil once
// its context ends.
func TestServe(t *testing.T) {
	c, lat, critical := fixture(t)
	reg, err := metrics.NewRegistry(c, lat)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, ln, metrics.Handler(reg, discard())) }()
	body := get(t, "http://"+ln.Addr().String()+"/metrics", http.StatusOK)
	for _, want := range []string{
		`storeagent_identify_duration_seconds_count 2`,
		`storeagent_uplink_ack_latency_seconds_count 0`,
		fmt.Sprintf(`storeagent_outbox_records{class="critical"} %d`, critical),
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, pii := range []string{"400123456784", "jane", "example.com", "cust-1"} {
		if strings.Contains(strings.ToLower(body), pii) {
			t.Errorf("scrape contains %q", pii)
		}
	}
	get(t, "http://"+ln.Addr().String()+"/", http.StatusNotFound)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still open after shutdown")
	}
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, status)
	}
	return string(b)
}

// BenchmarkIdentifyObserved is Identify with the metrics hook, against
// the same without it: the hook must cost well under a microsecond and
// allocate nothing.
func BenchmarkIdentifyObserved(b *testing.B) {
	for _, hooked := range []bool{false, true} {
		name := "baseline"
		if hooked {
			name = "observed"
		}
		b.Run(name, func(b *testing.B) {
			lat := metrics.NewLatencies()
			ag, _ := agenttest.New(b, store.Options{Key: make([]byte, 32)}, func(c *agent.Config) {
				if hooked {
					c.ObserveIdentify = lat.ObserveIdentify
				}
			})
			agenttest.Seed(b, ag, agenttest.Customer{ID: "cust-1", Card: "400123456784", Email: "a@b.example", Name: "A",
				Decisions: map[string]consent.Status{"loyalty": consent.Granted}})
			req := agent.IdentifyRequest{Scan: "400123456784", Purpose: "loyalty", Device: "pos-1"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ag.Identify(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
