package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPersonalData protects invariant 10 for storectl: with known names,
// e-mail addresses, loyalty and phone numbers seeded in the store (the
// central's profile attributes, an order's properties, what enrolling
// customers typed in), every command, in both output formats, against a
// running daemon and a stopped one, with those values given to it as
// arguments, on stdin and through the scanner, never shows one: not on
// stdout, not on stderr, not in a support bundle, and not in the daemon's
// log (at debug level) either. Nor the customers' ids, nor the API token.
func TestNoPersonalData(t *testing.T) {
	s := newSite(t, "debug")
	s.startDaemon()
	s.seedKiosk()
	bundles := everyCommand(t, s, "running")
	s.stopDaemon()
	bundles = append(bundles, everyCommand(t, s, "stopped")...)

	secret := []string{
		adaID, adaCard, "7992 7398 713", adaEmail, adaName, "Lovelace",
		graceCard, graceEmail, graceName, "Hopper",
		alanPhone, "7700900123", alanName, "Turing",
		badCard, s.anon, s.token,
	}
	if s.anon == "" || len(s.outputs) < 80 {
		t.Fatalf("the battery did not run: %d outputs", len(s.outputs))
	}
	for i, out := range s.outputs {
		if v := findAny(out, secret); v != "" {
			t.Errorf("output %d holds %q:\n%s", i, v, out)
		}
	}
	for _, b := range bundles {
		for name, content := range readBundle(t, b) {
			if v := findAny(content, secret); v != "" {
				t.Errorf("bundle %s, %s holds %q:\n%s", filepath.Base(b), name, v, content)
			}
		}
	}
	log := s.daemonLog.String()
	if !strings.Contains(log, "level=DEBUG") || !strings.Contains(log, "support lookup") {
		t.Fatalf("the daemon's log is not the one expected:\n%s", log)
	}
	if v := findAny(log, secret); v != "" {
		t.Errorf("the daemon's log holds %q:\n%s", v, log)
	}
}

// everyCommand runs every command, human and JSON, and returns the
// bundles it wrote.
func everyCommand(t *testing.T, s *site, mode string) []string {
	t.Helper()
	bad := filepath.Join(s.dir, "bad-"+mode+".toml")
	os.WriteFile(bad, []byte("kind = \"kiosk\"\n[api]\ntoken_file = \""+s.tokenPath+"\"\nlisten = \"0.0.0.0:1\"\n[store]\nmax_mb = 1\n"), 0o644)
	var bundles []string
	for _, format := range [][]string{nil, {"--json"}} {
		bundle := filepath.Join(s.dir, "pii-"+mode+"-"+map[bool]string{true: "json", false: "text"}[format != nil]+".tgz")
		bundles = append(bundles, bundle)
		for _, args := range [][]string{
			{"status"}, {"doctor"}, {"outbox"}, {"outbox", "peek", "-n", "100"}, {"sync"}, {"sync", "resync"},
			{"lookup", "--scan", adaCard, "--purpose", "loyalty"},
			{"lookup", "--scan", "LOYALTY:" + graceCard, "--purpose", "loyalty"},
			{"lookup", "--kind", "phone", "--value", alanPhone, "--purpose", "marketing"},
			{"lookup", "--kind", "email", "--value", adaName, "--purpose", "loyalty"},
			{"lookup", "--scan", badCard, "--purpose", "loyalty"},
			{"lookup", "--scan", adaCard, "--purpose", adaEmail},
			{"config", "check", s.cfgPath}, {"config", "check", bad}, {"config", "show"},
			{"bundle", "-o", bundle}, {"version"}, {"compact"},
		} {
			s.run(append(args, format...)...)
		}
		s.runIn(adaEmail+"\n", append([]string{"lookup", "--kind", "email", "--value", "-", "--purpose", "marketing"}, format...)...)
		s.scan([]string{
			"]C0" + adaCard + "\r",
			"]Q3LOYALTY:" + graceCard + "\r",
			"]X0" + adaEmail + "\r",
			"]C0" + badCard + "\r",
			"\x01" + graceCard + "\r",
		}, format...)
	}
	return bundles
}

// findAny returns the first of needles found in s, ignoring case, or "".
func findAny(s string, needles []string) string {
	s = strings.ToLower(s)
	for _, n := range needles {
		if n != "" && strings.Contains(s, strings.ToLower(n)) {
			return n
		}
	}
	return ""
}
