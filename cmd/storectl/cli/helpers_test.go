package cli_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/cmd/storectl/cli"
	"github.com/storeagent/storeagent/devices/localapi"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// agentBin is the storeagent binary built once for every test.
var agentBin string

// TestMain builds cmd/storeagent, the real daemon the tests run as a
// child process.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "storectl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "storeagent")
	build := exec.Command(goTool(), "build", "-o", agentBin, "-ldflags", "-X main.version=test", "github.com/storeagent/storeagent/cmd/storeagent")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build storeagent: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command running the tests: $GOROOT/bin/go (go test
// sets GOROOT), else the one on the PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// The seeded customers. Ada is the central's customer, cached with her
// attributes; Grace and Alan enrol at the kiosk, typing in their details.
// None of these values may appear in any output, bundle or log.
const (
	adaID    = "cust-ada-1815"
	adaCard  = "79927398713" // Luhn-valid
	adaEmail = "ada.lovelace@example.com"
	adaName  = "Ada Lovelace"

	graceCard  = "4111111111111111"
	graceEmail = "grace.hopper@example.org"
	graceName  = "Grace Hopper"

	alanPhone = "+447700900123"
	alanName  = "Alan Turing"

	badCard = "79927398710" // Ada's card with a wrong check digit
)

// site is one device: a config, a state directory with its keys, a socat
// pty pair standing in for a serial scanner, and the daemon when started.
type site struct {
	t         *testing.T
	dir       string // short: socket paths are bounded
	state     string
	cfgPath   string
	tokenPath string
	token     string
	tenantKey []byte
	ptyA      string // the scanner hardware's side: the test writes frames here
	ptyB      string // the port the daemon (or storectl) reads
	socat     *exec.Cmd
	daemon    *exec.Cmd
	daemonLog *storetest.LogBuffer
	anon      string // Grace's anonymous id, from her enrolment
	outputs   []string
}

func newSite(t *testing.T, logLevel string) *site {
	t.Helper()
	dir, err := os.MkdirTemp("", "sctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &site{t: t, dir: dir, state: filepath.Join(dir, "state"), cfgPath: filepath.Join(dir, "agent.toml"),
		tokenPath: filepath.Join(dir, "api.token"), ptyA: filepath.Join(dir, "pty-a"), ptyB: filepath.Join(dir, "pty-b"),
		token: "tok-0123456789abcdef0123456789abcdef-secret"}
	if err := os.Mkdir(s.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.tokenPath, []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`kind = "kiosk"

[agent]
tenant = "acme"
store_id = "store-42"
id = "kiosk-01"

[store]
dir = %q

[api]
listen = "127.0.0.1:0"
token_file = %q

[log]
level = %q

[[scanner]]
name = "till-1"
path = %q
aim = true
purpose = "loyalty"
device = "kiosk-1"
debounce = "0s"
`, s.state, s.tokenPath, logLevel, s.ptyB)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GenerateKeyFile(filepath.Join(s.state, "store.key")); err != nil {
		t.Fatal(err)
	}
	if s.tenantKey, err = store.GenerateKeyFile(filepath.Join(s.state, "tenant.key")); err != nil {
		t.Fatal(err)
	}
	s.startSocat()
	s.seedCentral()
	return s
}

// identHash is what the central computes for an identifier.
func (s *site) identHash(kind, value string) []byte {
	m := hmac.New(sha256.New, s.tenantKey)
	m.Write([]byte(kind + ":" + value))
	return m.Sum(nil)
}

// seedCentral applies, as the central would, Ada's consent and profile,
// directly on the store before the daemon starts.
func (s *site) seedCentral() {
	t := s.t
	cfg, err := firmwareconfig.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.LoadKeyFile(filepath.Join(s.state, "store.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(s.state, "store.db"), cfg.StoreOptions(key, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := agent.New(db, cfg.AgentConfig(s.tenantKey, nil))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).UnixMilli()
	changes := []agent.Change{
		{Kind: agent.ChangeConsent, Profile: adaID, Consent: map[string]consent.Entry{
			"loyalty": {Status: consent.Granted, At: at}, "marketing": {Status: consent.Denied, At: at}}},
		{Kind: agent.ChangeProfile, Profile: adaID, Version: 1, Expires: time.Now().Add(24 * time.Hour).UnixMilli(),
			Idents: [][]byte{s.identHash("loyalty", adaCard), s.identHash("email", adaEmail)},
			Attrs: []agent.Attribute{
				{Name: "first_name", Purpose: "loyalty", Value: adaName},
				{Name: "email", Purpose: "loyalty", Value: adaEmail},
				{Name: "tier", Purpose: "loyalty", Value: "gold"},
				{Name: "segment", Purpose: "analytics", Value: "weekend"},
			}},
	}
	for i, ch := range changes {
		ch.Seq = uint64(i + 1)
		if res, err := a.Apply(context.Background(), ch); err != nil || res != agent.Applied {
			t.Fatalf("apply %s: %v %v", ch.Kind, res, err)
		}
	}
}

// startDaemon starts storeagent on the site and waits until it serves.
func (s *site) startDaemon() {
	t := s.t
	t.Helper()
	cmd := exec.Command(agentBin, "-config", s.cfgPath)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.daemon, s.daemonLog = cmd, &storetest.LogBuffer{}
	t.Cleanup(func() {
		if s.daemon != nil {
			s.daemon.Process.Kill()
			s.daemon.Wait()
		}
		pw.Close()
	})
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(s.daemonLog, sc.Text())
			if strings.Contains(sc.Text(), "storeagent started") {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("storeagent did not start; its log:\n%s", s.daemonLog)
	}
	// The scanner opens its port on its own goroutine.
	s.waitFor("the scanner port open", func() bool { return strings.Contains(s.daemonLog.String(), "port opened") })
}

// stopDaemon stops storeagent as systemd would, and checks it exits 0.
func (s *site) stopDaemon() {
	t := s.t
	t.Helper()
	s.daemon.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.daemon.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("storeagent exit: %v\n%s", err, s.daemonLog)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("storeagent did not stop within 15s of SIGTERM")
	}
	s.daemon = nil
}

// client is a Client of the running daemon, over its socket.
func (s *site) client() *localapi.Client {
	return &localapi.Client{Socket: filepath.Join(s.state, "api.sock")}
}

// seedKiosk does, through the daemon's API, what the store's devices do:
// Ada identified and her order recorded with her details in its
// properties; Grace and Alan enrolled with what they typed in, Grace's
// consent granted (her held events leave for the outbox), a mistyped card.
func (s *site) seedKiosk() {
	t := s.t
	t.Helper()
	c, ctx := s.client(), context.Background()
	id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: adaCard, Purpose: "loyalty", Device: "kiosk-1"})
	if err != nil || !id.Known {
		t.Fatalf("identify Ada: %+v %v", id, err)
	}
	_, err = c.Capture(ctx, localapi.EventRequest{Event: "Order Completed", UserID: adaID, Device: "kiosk-1",
		Properties: map[string]any{"email": adaEmail, "name": adaName, "loyalty": adaCard, "total": 42.5}})
	if err != nil {
		t.Fatal(err)
	}
	if s.anon, err = c.Enrol(ctx, localapi.EnrolRequest{Scan: graceCard, Purpose: "loyalty", Device: "kiosk-1",
		Traits: map[string]any{"name": graceName, "email": graceEmail}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Capture(ctx, localapi.EventRequest{Event: "Product Viewed", AnonymousID: s.anon, Device: "kiosk-1",
		Properties: map[string]any{"email": graceEmail, "sku": "cushion-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetConsent(ctx, s.anon, localapi.ConsentRequest{Purpose: "loyalty", Status: "granted", Device: "kiosk-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enrol(ctx, localapi.EnrolRequest{Kind: "phone", Value: alanPhone, Purpose: "marketing", Device: "kiosk-1",
		Traits: map[string]any{"name": alanName}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: badCard, Purpose: "loyalty", Device: "kiosk-1"}); !localapi.IsInvalidIdentifier(err) {
		t.Fatalf("mistyped card: %v", err)
	}
}

// startSocat joins two ptys, as a serial cable would: the test writes to
// A as the scanner hardware, the daemon or storectl reads B. It skips
// without socat, except under CI.
func (s *site) startSocat() {
	t := s.t
	socat, err := exec.LookPath("socat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("socat not found (%v): CI must run the scan tests", err)
		}
		t.Skipf("socat not found (%v): install socat to run these tests", err)
	}
	logPath := filepath.Join(s.dir, "socat.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, socat, "-d", "-d", "pty,raw,echo=0,link="+s.ptyA, "pty,raw,echo=0,link="+s.ptyB)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	s.waitFor("socat's ptys", func() bool {
		log, _ := os.ReadFile(logPath)
		_, errA := os.Stat(s.ptyA)
		_, errB := os.Stat(s.ptyB)
		return errA == nil && errB == nil && strings.Contains(string(log), "starting data transfer loop")
	})
	s.socat = cmd
}

// scanFrame writes one frame to the scanner side of the pty pair.
func (s *site) scanFrame(frame string) {
	s.t.Helper()
	f, err := os.OpenFile(s.ptyA, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(frame); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result is one run of storectl.
type result struct {
	code           int
	stdout, stderr string
}

// run runs storectl in process against the site, --config first.
func (s *site) run(args ...string) result {
	return s.runIn("", args...)
}

// runIn is run with stdin.
func (s *site) runIn(stdin string, args ...string) result {
	s.t.Helper()
	var out, errb storetest.LogBuffer
	code := cli.Run(context.Background(), append([]string{"--config", s.cfgPath}, args...),
		cli.Options{Version: "test", Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	s.outputs = append(s.outputs, r.stdout, r.stderr)
	return r
}

// scan runs `storectl scan` while the test plays frames into the port,
// one at a time, each once the previous one was shown.
func (s *site) scan(frames []string, args ...string) result {
	s.t.Helper()
	var out, errb storetest.LogBuffer
	args = append([]string{"--config", s.cfgPath, "scan", "--port", "till-1", "--count", fmt.Sprint(len(frames))}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, args, cli.Options{Version: "test", Stdout: &out, Stderr: &errb}) }()
	s.waitFor("storectl to watch the port", func() bool { return strings.Contains(errb.String(), "scan a card") })
	for i, f := range frames {
		s.scanFrame(f)
		s.waitFor(fmt.Sprintf("frame %d shown", i+1), func() bool {
			return frameLines(out.String()) > i || len(done) > 0
		})
	}
	code := <-done
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	s.outputs = append(s.outputs, r.stdout, r.stderr)
	return r
}

// frameLines counts the frames shown, in either output format.
func frameLines(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.Contains(l, `"event":"watching"`) {
			n++
		}
	}
	return n
}

// normalizers make an output stable across runs: times, durations, sizes,
// paths, refs and versions differ every time.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`storeagent-bundle-\d{8}-\d{6}`), "storeagent-bundle-<STAMP>"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?`), "<TIME>"},
	{regexp.MustCompile(`\d{2}:\d{2}:\d{2}\.\d{3}`), "<CLOCK>"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}`), "<DATE>"},
	{regexp.MustCompile(`\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)\b`), "<SIZE>"},
	{regexp.MustCompile(`\b\d+(ms|s|m\d{2}s|h\d{2}m|d\d{2}h)\b`), "<DUR>"},
	{regexp.MustCompile(`\d+%`), "<PCT>"},
	{regexp.MustCompile(`ref:[0-9a-f]{8}`), "ref:<REF>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "<ADDR>"},
	{regexp.MustCompile(`go1\.\d+(\.\d+)?`), "<GO>"},
	{regexp.MustCompile(regexp.QuoteMeta(runtime.GOOS + "/" + runtime.GOARCH)), "<PLATFORM>"},
	// Columns are aligned on the values before they were normalised.
	{regexp.MustCompile(` {2,}`), "  "},
	{regexp.MustCompile(`(?m) +$`), ""},
}

func (s *site) normalize(out string) string {
	out = strings.ReplaceAll(out, s.dir, "<DIR>")
	for _, n := range normalizers {
		out = n.re.ReplaceAllString(out, n.with)
	}
	return out
}

// golden compares out, normalised, with testdata/golden/<name>.txt, or
// rewrites the file with -update.
func (s *site) golden(name, out string) {
	s.t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	got := s.normalize(out)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.t.Fatalf("no golden file %s: run go test -run %s -update", path, s.t.Name())
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if got != string(want) {
		s.t.Errorf("%s differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}
