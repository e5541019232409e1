package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/devices/localapi"
)

// startWithMetrics starts a daemon with metrics on a free loopback port and
// returns its local API client and the metrics address.
func startWithMetrics(t *testing.T) (*localapi.Client, string) {
	t.Helper()
	cfg, dir := testConfig(t, "[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\n")
	_, log := startAgent(t, "-config", cfg, "-state-dir", dir)
	m := regexp.MustCompile(`msg="metrics listening".* addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", log)
	}
	return &localapi.Client{Socket: filepath.Join(dir, "api.sock")}, m[1]
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s %v\n%s", resp.Status, err, b)
	}
	return string(b)
}

// sample returns the value of the series named exactly as series (name
// and labels, as the text format writes them).
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in the scrape:\n%s", series, body)
	return 0
}

// A POS identifies and captures through the running daemon; the scrape
// shows the purchase queued as critical, the identify timed and the link
// off.
func TestDaemonServesMetrics(t *testing.T) {
	c, addr := startWithMetrics(t)
	ctx := context.Background()
	id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: "79927398713", Purpose: "loyalty", Device: "pos-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Capture(ctx, localapi.EventRequest{Event: "Order Completed", AnonymousID: id.AnonymousID, Device: "pos-1",
		Properties: map[string]any{"total": 12.5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: "0000000000", Purpose: "loyalty", Device: "pos-1"}); err == nil {
		t.Fatal("all-zero card identified")
	}
	body := scrape(t, addr)
	tests := []struct {
		series   string
		min, max float64
	}{
		{`storeagent_outbox_records{class="critical"}`, 1, 1},
		{`storeagent_outbox_bytes{class="critical"}`, 1, 1 << 20},
		{`storeagent_outbox_records{class="telemetry"}`, 0, 1}, // the unknown card's identify event, queued in the background
		{`storeagent_outbox_oldest_age_seconds{class="critical"}`, 0, 60},
		{`storeagent_outbox_oldest_age_seconds{class="telemetry"}`, 0, 60},
		{`storeagent_outbox_max_records`, 1_000_000, 1_000_000},
		{`storeagent_identify_duration_seconds_count`, 2, 2},
		{`storeagent_identify_duration_seconds_sum`, 1e-9, 1},
		{`storeagent_uplink_ack_latency_seconds_count`, 0, 0},
		{`storeagent_rejects_total{reason="blocked",source="identify"}`, 1, 1},
		{`storeagent_rejects_total{reason="outbox_full",source="outbox"}`, 0, 0},
		{`storeagent_link_state{state="disabled"}`, 1, 1},
		{`storeagent_link_state{state="connected"}`, 0, 0},
		{`storeagent_changes_cursor`, 0, 0},
	}
	for _, tc := range tests {
		if v := sample(t, body, tc.series); v < tc.min || v > tc.max {
			t.Errorf("%s = %v, want %v..%v", tc.series, v, tc.min, tc.max)
		}
	}
	for _, absent := range []string{"storeagent_uplink_batches_sent_total", "storeagent_changes_lag"} {
		if strings.Contains(body, absent+" ") {
			t.Errorf("%s served with sync off", absent)
		}
	}
	if resp, err := http.Get("http://" + addr + "/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %v %v", resp, err)
	}
}

// A known customer's loyalty number, e-mail and name go through enrolment,
// identification, a refused identify and a capture; none of them, nor the
// ids the agent gave them, appears in a scrape.
func TestMetricsCarryNoPII(t *testing.T) {
	c, addr := startWithMetrics(t)
	ctx := context.Background()
	const card, email, name = "400123456784", "jane.roe@example.com", "Jane Roe"
	anon, err := c.Enrol(ctx, localapi.EnrolRequest{Scan: card, Purpose: "loyalty", Device: "kiosk-1",
		Traits: map[string]any{"email": email, "name": name}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: card, Purpose: "loyalty", Device: "pos-1"})
	if err != nil || !id.Known {
		t.Fatalf("identify the enrolled card: %+v %v", id, err)
	}
	c.Identify(ctx, localapi.IdentifyRequest{Kind: "loyalty", Value: email, Purpose: "loyalty", Device: "pos-1"})
	eid, _ := c.Identify(ctx, localapi.IdentifyRequest{Kind: "email", Value: email, Purpose: "loyalty", Device: "pos-1"})
	if _, err := c.Capture(ctx, localapi.EventRequest{Event: "Order Completed", AnonymousID: anon, Device: "pos-1",
		Traits: map[string]any{"email": email, "name": name}, Properties: map[string]any{"card": card}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sample(t, scrape(t, addr), `storeagent_identify_duration_seconds_count`) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	body := strings.ToLower(scrape(t, addr))
	secrets := []string{card, email, strings.ToLower(name), "example.com", strings.ToLower(anon)}
	if eid.AnonymousID != "" {
		secrets = append(secrets, strings.ToLower(eid.AnonymousID))
	}
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("the scrape contains %q", s)
		}
	}
}
