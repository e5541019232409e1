package cli_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/cmd/storectl/cli"
	"github.com/storeagent/storeagent/devices/localapi"
)

// The frames the scan tests play: Ada's card (AIM Code 128), the same
// with a wrong check digit, and line noise.
var scanFrames = []string{"]C0" + adaCard + "\r", "]C0" + badCard + "\r", "\x01\x02garbage\r"}

const notRunning = "storeagent is not running: read from the store file read-only"

// step checks one run: its exit code, what stderr must say (or that it is
// empty), and its stdout against the golden file.
func step(t *testing.T, s *site, golden string, r result, code int, stderr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", golden, r.code, code, r.stdout, r.stderr)
	}
	switch {
	case stderr == "" && r.stderr != "":
		t.Errorf("%s: unexpected stderr:\n%s", golden, r.stderr)
	case !strings.Contains(r.stderr, stderr):
		t.Errorf("%s: stderr does not say %q:\n%s", golden, stderr, r.stderr)
	}
	s.golden(golden, r.stdout)
}

// decode decodes a --json output, failing on anything but one JSON value.
func decode[T any](t *testing.T, name string, r result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s --json: %v\n%s\nstderr:\n%s", name, err, r.stdout, r.stderr)
	}
	if dec.More() {
		t.Fatalf("%s --json: more than one value:\n%s", name, r.stdout)
	}
	return v
}

// TestCommands runs every command against a real daemon, then against the
// same state directory once the daemon has stopped: the human output
// against golden files, the JSON output decoded and checked.
func TestCommands(t *testing.T) {
	s := newSite(t, "info")
	s.startDaemon()
	s.seedKiosk()
	running(t, s)
	s.stopDaemon()
	stopped(t, s)
}

func running(t *testing.T, s *site) {
	r := s.run("status")
	step(t, s, "status", r, cli.ExitOK, "")
	st := decode[struct {
		Running bool   `json:"running"`
		Source  string `json:"source"`
		localapi.Status
	}](t, "status", s.run("status", "--json"))
	if !st.Running || st.Source != "daemon" || st.Version != "test" || st.AgentID != "kiosk-01" || st.UptimeSeconds < 0 ||
		st.Outbox.Records != 5 || st.Outbox.Critical.Records != 4 || st.Cache.Profiles != 3 || st.Cache.Identifiers != 4 ||
		st.Changes.Cursor != 2 || len(st.Scanners) != 1 || !st.Scanners[0].Connected || st.Link.State != "disabled" {
		t.Errorf("status --json: %+v", st)
	}

	r = s.run("doctor")
	step(t, s, "doctor", r, cli.ExitOK, "")
	doc := decode[struct {
		localapi.DoctorReport
		Failed bool `json:"failed"`
	}](t, "doctor", s.run("doctor", "--json"))
	if doc.Source != "daemon" || doc.Failed || checkStatus(doc.Checks, "port:till-1") != "ok" || checkStatus(doc.Checks, "cache") != "ok" ||
		checkStatus(doc.Checks, "clock") != "skip" || checkStatus(doc.Checks, "outbox") != "warn" {
		t.Errorf("doctor --json: %+v", doc)
	}

	step(t, s, "outbox", s.run("outbox"), cli.ExitOK, "")
	ob := decode[localapi.OutboxReport](t, "outbox", s.run("outbox", "--json"))
	if ob.Records != 5 || ob.FirstSeq == 0 || ob.LastSeq < ob.FirstSeq || ob.Link != "disabled" || ob.MaxRecords == 0 {
		t.Errorf("outbox --json: %+v", ob)
	}
	step(t, s, "outbox-peek", s.run("outbox", "peek", "-n", "4"), cli.ExitOK, "")
	peek := decode[localapi.OutboxPeek](t, "outbox peek", s.run("outbox", "peek", "--json"))
	checkPeek(t, peek)

	step(t, s, "sync", s.run("sync"), cli.ExitOK, "")
	sy := decode[struct {
		Running bool                   `json:"running"`
		Link    localapi.LinkStatus    `json:"link"`
		Changes localapi.ChangesStatus `json:"changes"`
		Outbox  uint64                 `json:"outbox"`
	}](t, "sync", s.run("sync", "--json"))
	if !sy.Running || sy.Link.State != "disabled" || sy.Changes.Cursor != 2 || sy.Outbox != 5 {
		t.Errorf("sync --json: %+v", sy)
	}
	step(t, s, "sync-resync", s.run("sync", "resync"), cli.ExitFailed, "sync is disabled")

	step(t, s, "lookup", s.run("lookup", "--scan", adaCard, "--purpose", "loyalty"), cli.ExitOK, "")
	lk := decode[localapi.LookupResult](t, "lookup", s.runIn(adaEmail+"\n", "lookup", "--kind", "email", "--value", "-", "--purpose", "loyalty", "--json"))
	checkLookup(t, lk)
	step(t, s, "lookup-invalid", s.run("lookup", "--scan", badCard, "--purpose", "loyalty"), cli.ExitFailed, "not usable: bad_check_digit")

	configCommands(t, s, "")

	bundle := filepath.Join(s.dir, "bundle.tgz")
	step(t, s, "bundle", s.run("bundle", "-o", bundle), cli.ExitOK, "")
	checkBundle(t, bundle, true)

	step(t, s, "version", s.run("version"), cli.ExitOK, "")
	v := decode[struct {
		Storectl   struct{ Version string }
		Storeagent struct {
			Version string
			Running *bool
		}
	}](t, "version", s.run("version", "--json"))
	if v.Storectl.Version != "test" || v.Storeagent.Version != "test" || v.Storeagent.Running == nil || !*v.Storeagent.Running {
		t.Errorf("version --json: %+v", v)
	}

	r = s.scan(scanFrames)
	step(t, s, "scan", r, cli.ExitOK, "watching till-1")
	ev := scanEvents(t, s.scan(scanFrames, "--json"))
	if len(ev) != 4 || ev[0].Event != "watching" || ev[1].Outcome != "known" || !ev[1].Valid || ev[1].Symbology != "Code 128" ||
		ev[2].CheckDigit != "bad" || ev[2].Outcome != "invalid" || ev[3].Reject != "noise" {
		t.Errorf("scan --json through the daemon: %+v", ev)
	}

	// A port the daemon does not own is opened directly.
	if r := s.run("scan", "--port", filepath.Join(s.dir, "no-such-tty"), "--duration", "1s"); r.code != cli.ExitFailed ||
		!strings.Contains(r.stderr, "open "+filepath.Join(s.dir, "no-such-tty")) {
		t.Errorf("scan of a port the daemon does not own: exit %d\n%s", r.code, r.stderr)
	}

	r = s.run("compact")
	step(t, s, "compact", r, cli.ExitOK, "compacting: 100%")
	cp := decode[localapi.CompactResult](t, "compact", s.run("compact", "--json"))
	if cp.Path != filepath.Join(s.state, "store.db") || cp.Records == 0 || cp.AfterBytes == 0 {
		t.Errorf("compact --json: %+v", cp)
	}
}

func stopped(t *testing.T, s *site) {
	step(t, s, "status.stopped", s.run("status"), cli.ExitOK, notRunning)
	st := decode[struct {
		Running bool   `json:"running"`
		Source  string `json:"source"`
		localapi.Status
	}](t, "status", s.run("status", "--json"))
	if st.Running || st.Source != "store" || st.Outbox.Records != 5 || st.Cache.Profiles != 3 || st.Changes.Cursor != 2 || st.Link.State != "disabled" {
		t.Errorf("status --json, stopped: %+v", st)
	}

	step(t, s, "doctor.stopped", s.run("doctor"), cli.ExitFailed, notRunning)
	doc := decode[struct {
		localapi.DoctorReport
		Failed bool `json:"failed"`
	}](t, "doctor", s.run("doctor", "--json"))
	if doc.Source != "storectl" || !doc.Failed || checkStatus(doc.Checks, "daemon") != "fail" || checkStatus(doc.Checks, "port:till-1") != "ok" ||
		checkStatus(doc.Checks, "database") != "ok" {
		t.Errorf("doctor --json, stopped: %+v", doc)
	}

	step(t, s, "outbox.stopped", s.run("outbox"), cli.ExitOK, notRunning)
	if ob := decode[localapi.OutboxReport](t, "outbox", s.run("outbox", "--json")); ob.Records != 5 || ob.Link != "disabled" {
		t.Errorf("outbox --json, stopped: %+v", ob)
	}
	step(t, s, "outbox-peek.stopped", s.run("outbox", "peek", "-n", "4"), cli.ExitOK, notRunning)
	checkPeek(t, decode[localapi.OutboxPeek](t, "outbox peek", s.run("outbox", "peek", "--json")))

	step(t, s, "sync.stopped", s.run("sync"), cli.ExitOK, notRunning)
	step(t, s, "sync-resync.stopped", s.run("sync", "resync"), cli.ExitUnreachable, "resync needs the running daemon")

	step(t, s, "lookup.stopped", s.run("lookup", "--scan", adaCard, "--purpose", "loyalty"), cli.ExitOK, "recorded in its audit log")
	checkLookup(t, decode[localapi.LookupResult](t, "lookup", s.runIn(adaEmail+"\n", "lookup", "--kind", "email", "--value", "-", "--purpose", "loyalty", "--json")))

	configCommands(t, s, ".stopped")

	bundle := filepath.Join(s.dir, "bundle-stopped.tgz")
	step(t, s, "bundle.stopped", s.run("bundle", "-o", bundle), cli.ExitOK, notRunning)
	checkBundle(t, bundle, false)

	step(t, s, "version.stopped", s.run("version"), cli.ExitOK, "")

	step(t, s, "scan.stopped", s.scan(scanFrames), cli.ExitOK, "storeagent is not running: reading "+s.ptyB+" directly")
	ev := scanEvents(t, s.scan(scanFrames, "--json"))
	if len(ev) != 4 || ev[0].Event != "watching" || !ev[1].Valid || ev[1].Outcome != "" || ev[2].CheckDigit != "bad" || ev[3].Reject != "noise" || ev[3].Bytes != 10 {
		t.Errorf("scan --json, direct: %+v", ev)
	}

	step(t, s, "compact.stopped", s.run("compact"), cli.ExitOK, "compacting the store file itself")
	if cp := decode[localapi.CompactResult](t, "compact", s.run("compact", "--json")); cp.Records == 0 {
		t.Errorf("compact --json, stopped: %+v", cp)
	}
	// The store is whole, and nothing was lost across compactions.
	if st := decode[struct{ localapi.Status }](t, "status", s.run("status", "--json")); st.Outbox.Records != 5 || st.Cache.Profiles != 3 {
		t.Errorf("after compaction: %+v", st)
	}
}

// configCommands checks `config check` on the site's file and on a file
// with errors, and `config show`.
func configCommands(t *testing.T, s *site, suffix string) {
	step(t, s, "config-check"+suffix, s.run("config", "check", s.cfgPath), cli.ExitOK, "")
	bad := filepath.Join(s.dir, "bad.toml")
	os.WriteFile(bad, []byte("kind = \"kiosk\"\n[store]\nmax_fil_mb = 3\n[api]\ntoken_file = \""+s.tokenPath+"\"\nlisten = \"0.0.0.0\"\n[log]\nlevel = \"loud\"\n"), 0o644)
	step(t, s, "config-check-errors"+suffix, s.run("config", "check", bad), cli.ExitFailed, "")
	cc := decode[struct {
		File     string
		Valid    bool
		Problems []struct {
			File    string
			Line    int
			Key     string
			Message string
		}
	}](t, "config check", s.run("config", "check", bad, "--json"))
	if cc.Valid || len(cc.Problems) != 1 || cc.Problems[0].Line != 3 || cc.Problems[0].Key != "store.max_fil_mb" {
		t.Errorf("config check --json: %+v", cc)
	}
	os.WriteFile(bad, []byte("kind = \"kiosk\"\n[api]\nlisten = \"0.0.0.0\"\n[log]\nlevel = \"loud\"\n"), 0o644)
	cc2 := decode[struct {
		Problems []struct {
			Line int
			Key  string
		}
	}](t, "config check", s.run("config", "check", bad, "--json"))
	if len(cc2.Problems) != 2 || cc2.Problems[0].Key != "api.listen" || cc2.Problems[0].Line != 3 || cc2.Problems[1].Key != "log.level" || cc2.Problems[1].Line != 5 {
		t.Errorf("config check --json, two errors: %+v", cc2)
	}
	want := ""
	if suffix != "" {
		want = "storeagent is not running"
	}
	r := s.run("config", "show")
	if r.code != 0 || !strings.Contains(r.stdout, "token_file = '"+s.tokenPath+"'") || !strings.Contains(r.stderr, want) {
		t.Errorf("config show: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func checkStatus(checks []localapi.Check, name string) localapi.CheckStatus {
	for _, c := range checks {
		if c.Name == name {
			return c.Status
		}
	}
	return "missing"
}

func checkPeek(t *testing.T, p localapi.OutboxPeek) {
	t.Helper()
	if len(p.Entries) != 5 {
		t.Fatalf("peek --json: %d entries: %+v", len(p.Entries), p)
	}
	var order, identify *localapi.OutboxEntry
	for i, e := range p.Entries {
		switch {
		case e.Event == "Order Completed":
			order = &p.Entries[i]
		case e.Type == "identify":
			identify = &p.Entries[i]
		}
	}
	if order == nil || !order.UserID || len(order.Ref) != 8 || order.Properties != 4 || order.Class != "critical" || order.Purpose != "service" {
		t.Errorf("the order: %+v", order)
	}
	if identify == nil || !identify.AnonymousID || identify.Traits == 0 {
		t.Errorf("Grace's released identify: %+v", identify)
	}
}

func checkLookup(t *testing.T, lk localapi.LookupResult) {
	t.Helper()
	var names []string
	for _, a := range lk.Attributes {
		names = append(names, a.Name)
		if a.Value != "•••" {
			t.Errorf("attribute %s shows %q", a.Name, a.Value)
		}
	}
	if !lk.Known || !lk.Permitted || !lk.Audited || lk.Kind != "email" || lk.Identifier != "email:a•••@•••.com" || len(lk.Ref) != 8 ||
		strings.Join(names, ",") != "first_name,email,tier" || lk.OtherAttributes != 1 {
		t.Errorf("lookup --json: %+v", lk)
	}
}

// checkBundle reads a bundle and checks it holds what it says.
func checkBundle(t *testing.T, path string, running bool) map[string]string {
	t.Helper()
	files := readBundle(t, path)
	for _, name := range []string{"manifest.json", "status.json", "status.txt", "doctor.json", "doctor.txt", "outbox.json", "config.toml", "logs.txt", "versions.json"} {
		if _, ok := files[name]; !ok {
			t.Errorf("bundle lacks %s", name)
		}
	}
	if running != strings.Contains(files["logs.txt"], "storeagent started") {
		t.Errorf("bundle logs (running %v):\n%s", running, files["logs.txt"])
	}
	if !strings.Contains(files["config.toml"], "store_id = 'store-42'") {
		t.Errorf("bundle config:\n%s", files["config.toml"])
	}
	var m struct {
		Running bool
		Files   []string
	}
	if err := json.Unmarshal([]byte(files["manifest.json"]), &m); err != nil || m.Running != running || len(m.Files) != 9 {
		t.Errorf("manifest %+v %v", m, err)
	}
	return files
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %o", fi.Mode().Perm())
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[filepath.Base(h.Name)] = string(b)
	}
}

func scanEvents(t *testing.T, r result) []localapi.ScanEvent {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("scan --json: exit %d\n%s", r.code, r.stderr)
	}
	var out []localapi.ScanEvent
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev localapi.ScanEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("scan --json line %q: %v", l, err)
		}
		out = append(out, ev)
	}
	return out
}
