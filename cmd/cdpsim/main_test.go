package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/central"
)

// cdpsim runs the command in-process and returns its stdout and stderr.
func cdpsim(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelp(t *testing.T) {
	out, errOut, err := cdpsim(t, "--help")
	if err != nil || !strings.Contains(out, "Commands:") || errOut != "" {
		t.Fatalf("--help: %v, stdout %q, stderr %q", err, out, errOut)
	}
	for _, cmd := range []string{"keygen", "serve", "report", "customers", "change", "snapshot", "pace"} {
		out, errOut, err := cdpsim(t, cmd, "--help")
		if err != nil || !strings.Contains(out, "Usage: cdpsim "+cmd) || errOut != "" {
			t.Errorf("%s --help: %v, stdout %q, stderr %q", cmd, err, out, errOut)
		}
	}
	if _, errOut, err := cdpsim(t, "explode"); !errors.Is(err, errUsage) || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %v %q", err, errOut)
	}
	if out, errOut, err := cdpsim(t, "serve", "--tenant", "t"); !errors.Is(err, errUsage) || out != "" || !strings.Contains(errOut, "required") {
		t.Errorf("missing flags: %v, stdout %q, stderr %q", err, out, errOut)
	}
}

func TestKeygenAndCustomers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, _, err := cdpsim(t, "keygen", "--dir", dir)
	if err != nil || !strings.HasPrefix(out, "key id ") {
		t.Fatalf("keygen: %v %q", err, out)
	}
	for name, mode := range map[string]os.FileMode{central.KeyFile: 0o600, central.TenantKeyFile: 0o600, central.PublicKeyFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	if _, _, err := cdpsim(t, "keygen", "--dir", dir); err == nil {
		t.Error("keygen replaced existing keys")
	}

	out, _, err = cdpsim(t, "customers", "--keys", dir, "--n", "100", "--from", "5", "--count", "3")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "5\tc00000005\t") || strings.Count(lines[0], "\t") != 4 {
		t.Fatalf("customers: %q", out)
	}
	out, _, err = cdpsim(t, "customers", "--keys", dir, "--n", "100", "--from", "98", "--count", "5", "--json")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := central.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for ; sc.Scan(); n++ {
		var c struct {
			Index   int               `json:"index"`
			Loyalty string            `json:"loyalty"`
			Email   string            `json:"email"`
			Idents  map[string]string `json:"idents"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		want := central.IdentOf(keys.Tenant, "email", c.Email)
		if c.Idents["email"] != hex.EncodeToString(want[:]) {
			t.Errorf("customer %d: email ident %s", c.Index, c.Idents["email"])
		}
	}
	if n != 2 {
		t.Errorf("%d customers from 98 of 100, want 2", n)
	}
}

// lineWriter hands the first line written to it to first. Only the
// command's goroutine writes.
type lineWriter struct {
	buf   bytes.Buffer
	first chan<- string
	sent  bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok && !w.sent {
		w.first <- line
		w.sent = true
	}
	return len(p), nil
}

func TestServeChangeReport(t *testing.T) {
	broker := brokertest.Start(t)
	keys := filepath.Join(t.TempDir(), "keys")
	data := filepath.Join(t.TempDir(), "data")
	if _, _, err := cdpsim(t, "keygen", "--dir", keys); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan string, 1)
	stdout := &lineWriter{first: first}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--broker", broker.URL, "--tenant", "acme", "--store", "s1", "--keys", keys,
			"--data", data, "--customers", "50", "--control", "127.0.0.1:0", "--client-id", "cdpsim-cmd-test"}, stdout, io.Discard)
	}()
	var addr string
	select {
	case addr = <-first:
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve printed no address")
	}

	out, _, err := cdpsim(t, "change", "--control", addr, "erase", "--customer", "3")
	if err != nil || out != "seq 2 (erase, store s1)\n" {
		t.Fatalf("change erase: %v %q", err, out)
	}
	out, _, err = cdpsim(t, "change", "consent", "--control", addr, "--profile", "c00000004", "--set", "marketing=withdrawn", "--json")
	if err != nil || !strings.Contains(out, `"seq": 3`) {
		t.Fatalf("change consent: %v %q", err, out)
	}
	out, _, err = cdpsim(t, "change", "--control", addr, "profile", "--customer", "5", "--attr", "points:loyalty=120", "--attr", "tier:loyalty=gold")
	if err != nil || !strings.HasPrefix(out, "seq 4") {
		t.Fatalf("change profile: %v %q", err, out)
	}
	out, _, err = cdpsim(t, "change", "--control", addr, "policy", "--default")
	if err != nil || !strings.HasPrefix(out, "seq 5") {
		t.Fatalf("change policy: %v %q", err, out)
	}
	if _, _, err := cdpsim(t, "change", "--control", addr, "consent", "--customer", "1", "--set", "marketing=maybe"); !central.IsBadRequest(err) {
		t.Errorf("a bad status: %v", err)
	}
	if out, _, err := cdpsim(t, "pace", "--control", addr, "75"); err != nil || out != "75\n" {
		t.Errorf("pace: %v %q", err, out)
	}
	if out, _, err := cdpsim(t, "report", "--control", addr); err != nil || !strings.Contains(out, "live: connected=true pace=75ms") {
		t.Errorf("live report: %v %q", err, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}

	out, _, err = cdpsim(t, "report", "--data", data)
	if err != nil || !strings.Contains(out, "s1     5    1        1        1      0         1") {
		t.Errorf("report: %v\n%s", err, out)
	}
	out, _, err = cdpsim(t, "report", "--data", data, "--json")
	var r central.Report
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Stores) != 1 || r.Stores[0].Seq != 5 {
		t.Errorf("report --json: %v %q", err, out)
	}
	if _, _, err := cdpsim(t, "change", "--control", addr, "erase", "--customer", "3"); err == nil || !strings.Contains(err.Error(), "is `cdpsim serve") {
		t.Errorf("change without a running cdpsim: %v", err)
	}
}
