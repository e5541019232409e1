package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/store/storetest"
)

// TestDemo plays the whole day in-process, as `make demo` does, and checks
// that every step passed, that the central's record is complete and in
// order, and that neither the narration nor the parts' logs hold a clear
// identifier or a name of any seeded customer.
func TestDemo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the demo's simulated scanner needs a Linux pty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	logs := &storetest.LogBuffer{}
	start := time.Now()
	d, err := run(ctx, &out, options{Logs: logs, Customers: 200})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("run: %v\nnarration:\n%s", err, out.String())
	}
	t.Logf("the day took %s:\n%s", took, out.String())
	if d.Steps != 5 {
		t.Fatalf("%d steps passed, want 5", d.Steps)
	}
	narration := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^0\. .*→ 200 customer slices cached`),
		regexp.MustCompile(`(?m)^   .*link goes down`),
		regexp.MustCompile(`(?m)^1\. .*loyalty card loyalty:•+\d\d → known customer #[0-9a-f]{8}, tier \w+`),
		regexp.MustCompile(`(?m)^2\. .*→ 202, safe on disk; outbox: [1-9]\d* event\(s\) waiting, link down`),
		regexp.MustCompile(`(?m)^3\. .*outbox [1-9]\d* → 0, the central acknowledged [1-9]\d* event`),
		regexp.MustCompile(`(?m)^4\. .*withdraws loyalty consent at the kiosk → applied at once: [1-9]\d* of`),
		regexp.MustCompile(`(?m)^5\. .*the central erases customer #[0-9a-f]{8} \(change seq \d+\) → .* now reads as unknown`),
		regexp.MustCompile(`(?m)^   \d+ event\(s\) in \d+ batch\(es\): \d+ unique, \d+ duplicate\(s\), 0 out of order, 0 gap\(s\), 0 invalid$`),
		regexp.MustCompile(`(?m)^The day is over`),
	} {
		if !want.MatchString(narration) {
			t.Errorf("narration has no line matching %s", want)
		}
	}
	for _, name := range wantEvents {
		if d.Received[name] == 0 {
			t.Errorf("the central did not receive %q (received %v)", name, d.Received)
		}
	}
	if r := d.Report; r.Unique < uint64(len(wantEvents)) || r.OutOfOrder != 0 || r.Gaps != 0 || r.Invalid != 0 {
		t.Errorf("central's record %+v: want at least %d unique, in order, no gap, none invalid", r, len(wantEvents))
	}
	checkNoPII(t, d, "narration", narration)
	checkNoPII(t, d, "logs", logs.String())
}

// checkNoPII fails when text holds a seeded customer's loyalty number,
// e-mail address, or first or last name as a word.
func checkNoPII(t *testing.T, d *day, what, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	words := map[string]bool{}
	for _, w := range regexp.MustCompile(`[a-z]+`).FindAllString(lower, -1) {
		words[w] = true
	}
	for i := range d.Customers.N {
		cu, err := d.Customers.Customer(i)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, cu.Loyalty) {
			t.Errorf("%s holds the loyalty number of customer %d", what, i)
		}
		if strings.Contains(lower, cu.Email) {
			t.Errorf("%s holds the e-mail address of customer %d", what, i)
		}
		first, rest, _ := strings.Cut(cu.Email, ".")
		last, _, _ := strings.Cut(rest, ".")
		if words[first] || words[last] {
			t.Errorf("%s holds the first or last name of customer %d", what, i)
		}
	}
}
