package localapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

var tenantKey = bytes.Repeat([]byte{0x42}, 32)

// The seeded customer. Their name is an attribute of the marketing purpose,
// which they denied: the cache never holds it, so no route may show it.
const (
	userID   = "cust-1"
	card     = "79927398713" // Luhn-valid
	email    = "ada.lovelace@example.com"
	name     = "Ada Lovelace"
	deviceID = "12345678903" // a kiosk whose id looks like a card number: blocked
	testTok  = "0123456789abcdef0123456789abcdef-test-token"
)

func testPolicy() consent.Policy {
	return consent.Policy{
		Purposes: []consent.Purpose{
			{Name: "loyalty", Basis: consent.BasisConsent},
			{Name: "marketing", Basis: consent.BasisConsent},
			{Name: "personalisation", Basis: consent.BasisConsent, Drop: true},
			{Name: "analytics", Basis: consent.BasisLegitimateInterest},
			{Name: "service", Basis: consent.BasisContract},
		},
		Events:  map[string]string{"Order Completed": "service", "Product Viewed": "analytics"},
		Default: "analytics",
	}
}

// fakeStatus stands for the daemon's status source.
type fakeStatus struct{}

func (fakeStatus) Status(context.Context) (localapi.Status, error) {
	return localapi.Status{
		Version: "test", Kind: "pos", UptimeSeconds: 42,
		Link:   localapi.LinkStatus{State: "offline", LastError: "dial tcp: connection refused"},
		Outbox: localapi.OutboxStatus{Records: 2, Critical: localapi.ClassStatus{Records: 2, Bytes: 300}},
		Cache:  localapi.CacheStatus{Profiles: 1, Identifiers: 2},
		Scanners: []localapi.ScannerStatus{{Name: "till-1", Path: "/dev/ttyUSB0", Connected: true, Frames: 9,
			Rejects: map[string]uint64{"noise": 1}}},
		Counters: map[string]uint64{"identify_known": 1},
	}, nil
}

type fixture struct {
	a    *agent.Agent
	db   *store.DB
	srv  *localapi.Server
	logs *storetest.LogBuffer
	sock string // the unix socket
	addr string // the loopback TCP address
}

type fixtureOpts struct {
	store   store.Options
	token   string
	backend func(*agent.Agent) localapi.Backend // default: the agent itself
}

// newFixture starts a real agent over a real store, and a Server on a unix
// socket and a loopback TCP port, all stopped and checked at cleanup.
func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{logs: &storetest.LogBuffer{}}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.store.Logger = log
	f.db = storetest.Open(t, o.store)
	rules := ident.DefaultRules()
	rules.DeviceIDs = []string{deviceID}
	a, err := agent.New(f.db, agent.Config{
		Tenant: "acme", StoreID: "s1", AgentID: "a1", TenantKey: tenantKey, Ident: rules,
		Policy: testPolicy(), CriticalEvents: []string{"Order Completed"}, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	var backend localapi.Backend = a
	if o.backend != nil {
		backend = o.backend(a)
	}
	f.srv = localapi.NewServer(localapi.Options{Backend: backend, Status: fakeStatus{}, Logger: log, Token: o.token})
	f.sock = filepath.Join(shortDir(t), "api.sock")
	uln, err := localapi.ListenUnix(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := localapi.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = tln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(runUntil(t, cancel, func() error { return a.Run(ctx) }, func() error { return f.srv.Run(ctx, uln) }, func() error { return f.srv.Run(ctx, tln) }))
	return f
}

// runUntil starts each fn and returns the cleanup that cancels them, waits
// for each to return, and fails the test on an error.
func runUntil(t testing.TB, cancel context.CancelFunc, fns ...func() error) func() {
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errs <- fn() }()
	}
	return func() {
		cancel()
		for range fns {
			if err := <-errs; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
}

// shortDir is a temporary directory with a path short enough for a unix
// socket (t.TempDir's can pass 108 bytes with long test names).
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "la")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// client returns a Client over the named transport: "unix" or "tcp".
func (f *fixture) client(transport string) *localapi.Client {
	if transport == "tcp" {
		return &localapi.Client{Addr: f.addr}
	}
	return &localapi.Client{Socket: f.sock}
}

// identHash is what the central computes for an identifier.
func identHash(kind, value string) []byte {
	m := hmac.New(sha256.New, tenantKey)
	m.Write([]byte(kind + ":" + value))
	return m.Sum(nil)
}

// apply applies central changes in order, numbering them after the cursor.
func (f *fixture) apply(t testing.TB, changes ...agent.Change) {
	t.Helper()
	for _, ch := range changes {
		cur, err := f.a.Cursor()
		if err != nil {
			t.Fatal(err)
		}
		ch.Seq = cur + 1
		if res, err := f.a.Apply(context.Background(), ch); err != nil || res != agent.Applied {
			t.Fatalf("apply %s: %v %v", ch.Kind, res, err)
		}
	}
}

// seed puts the customer into the cache: loyalty granted, marketing denied
// (so the name, a marketing attribute, is filtered out as it is written).
func (f *fixture) seed(t testing.TB) {
	t.Helper()
	at := time.Now().UnixMilli() - 1000
	f.apply(t,
		agent.Change{Kind: agent.ChangeConsent, Profile: userID, Consent: map[string]consent.Entry{
			"loyalty":   {Status: consent.Granted, At: at},
			"marketing": {Status: consent.Denied, At: at},
		}},
		agent.Change{Kind: agent.ChangeProfile, Profile: userID, Version: 1, Expires: time.Now().Add(time.Hour).UnixMilli(),
			Idents: [][]byte{identHash("loyalty", card), identHash("email", email)},
			Attrs: []agent.Attribute{
				{Name: "tier", Purpose: "loyalty", Value: "gold"},
				{Name: "first_name", Purpose: "marketing", Value: name},
				{Name: "segment", Purpose: "analytics", Value: "weekend"},
				{Name: "account_status", Purpose: "service", Value: "active"},
			}},
	)
}

// rawResponse is a response read without the Client, errors included.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiError decodes the error body, failing the test if it is not one.
func (r rawResponse) apiError(t *testing.T) localapi.APIError {
	t.Helper()
	var e localapi.APIError
	if err := json.Unmarshal(r.body, &e); err != nil || e.Code == "" {
		t.Fatalf("status %d: body is not a JSON error: %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e
}

// raw sends a request as a misbehaving client would: any method, path,
// headers and body.
func (f *fixture) raw(t *testing.T, transport, method, path string, header http.Header, body string) rawResponse {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		if transport == "tcp" {
			return d.DialContext(ctx, "tcp", f.addr)
		}
		return d.DialContext(ctx, "unix", f.sock)
	}}}
	defer hc.CloseIdleConnections()
	host := "local-storeagent"
	if transport == "tcp" {
		host = f.addr
	}
	req, err := http.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: res.StatusCode, header: res.Header, body: b}
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// wantAPIError checks that err is an *APIError with status and code.
func wantAPIError(t *testing.T, err error, status int, code string) *localapi.APIError {
	t.Helper()
	e, ok := errors.AsType[*localapi.APIError](err)
	if !ok {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, e.Status, e.Code, e.Reason)
	}
	return e
}
