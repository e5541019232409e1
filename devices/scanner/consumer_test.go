//go:build !windows

package scanner_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/scanner"
	"github.com/storeagent/storeagent/store"
)

// A scan on a real pty reaches the real agent: a seeded card is recognised
// for the port's purpose, a bad check digit and a device id are refused
// with their reasons, and the log names none of them.
func TestConsumerIdentifiesOverPTY(t *testing.T) {
	a, _ := agenttest.New(t, store.Options{})
	agenttest.Seed(t, a, agenttest.Customer{ID: "cust-1", Card: "79927398713", Email: "ada@example.com", Name: "Ada",
		Decisions: map[string]consent.Status{"loyalty": consent.Granted}})
	var logs bytes.Buffer
	c := scanner.NewConsumer(scanner.ConsumerConfig{Use: scanner.UseIdentify, Purpose: "loyalty", Device: "till-1"}, a,
		slog.New(slog.NewTextHandler(&logs, nil)))
	p := startPTYPair(t)
	r := startScanner(t, testConfig(p.B), c)
	r.waitFor(t, "connected", connected)
	w := p.openA()
	defer w.Close()

	tests := []struct {
		code, outcome, reason string
	}{
		{"79927398713", "known", ""},
		{"79927398710", "invalid", "bad_check_digit"},
		{"0000000000000", "blocked", "blocked"},
		{"4539578763621486", "unknown", ""},
	}
	for _, tc := range tests {
		write(t, w, tc.code+"\r")
		deadline := time.Now().Add(5 * time.Second)
		for c.Last().Outcome != tc.outcome || (tc.outcome == "known" && c.Last().UserID != "cust-1") {
			if time.Now().After(deadline) {
				t.Fatalf("scan %s: last result %+v", tc.code, c.Last())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if c.Last().Reason != tc.reason {
			t.Fatalf("scan %s: reason %q", tc.code, c.Last().Reason)
		}
	}
	if strings.Contains(logs.String(), "79927398713") || strings.Contains(logs.String(), "cust-1") {
		t.Fatal("the consumer's log names a card or a customer")
	}
}

// In event mode, a coupon code is recorded; a code that reads as a
// customer's identifier is refused, never queued in the clear.
func TestConsumerRecordsCodesButNotIdentifiers(t *testing.T) {
	a, db := agenttest.New(t, store.Options{})
	c := scanner.NewConsumer(scanner.ConsumerConfig{Use: scanner.UseEvent, Event: "Coupon Scanned", Device: "till-1", Rules: ident.DefaultRules()}, a,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.HandleScan(context.Background(), scanner.Scan{Port: "till-1", Code: "COUPON-SPRING-10", UnixMilli: time.Now().UnixMilli()})
	if c.Last().Outcome != "recorded" {
		t.Fatalf("coupon: %+v", c.Last())
	}
	c.HandleScan(context.Background(), scanner.Scan{Port: "till-1", Code: "79927398713", UnixMilli: time.Now().UnixMilli()})
	if c.Last().Outcome != "refused" {
		t.Fatalf("card in event mode: %+v", c.Last())
	}
	recs, _ := db.ReadOutbox(0, 10, 1<<20)
	if len(recs) != 1 {
		t.Fatalf("%d events queued", len(recs))
	}
	ev, _ := event.Decode(recs[0].Payload)
	if ev.Properties["code"] != "COUPON-SPRING-10" || bytes.Contains(recs[0].Payload, []byte("79927398713")) {
		t.Fatalf("queued %+v", ev.Properties)
	}
}
