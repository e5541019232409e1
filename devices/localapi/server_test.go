package localapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/devices/localapi"
)

// TestBearerToken: with a token configured, every request over TCP must
// carry it, loopback included, and the socket needs none.
func TestBearerToken(t *testing.T) {
	f := newFixture(t, fixtureOpts{token: testTok})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name      string
		transport string
		header    http.Header
		status    int
		reason    string
	}{
		{"no token", "tcp", nil, 401, "a bearer token is required on this listener"},
		{"empty token", "tcp", bearer(""), 401, "a bearer token is required on this listener"},
		{"wrong token", "tcp", bearer(strings.Repeat("x", len(testTok))), 401, "the bearer token does not match"},
		{"token prefix", "tcp", bearer(testTok[:10]), 401, "the bearer token does not match"},
		{"token and more", "tcp", bearer(testTok + "x"), 401, "the bearer token does not match"},
		{"basic auth", "tcp", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, "a bearer token is required on this listener"},
		{"lower-case scheme", "tcp", http.Header{"Authorization": {"bearer " + testTok}}, 200, ""},
		{"token", "tcp", bearer(testTok), 200, ""},
		{"token, any Host", "tcp", http.Header{"Authorization": {"Bearer " + testTok}, "Host": {"pos-7.store.lan:8780"}}, 200, ""},
		{"token, but from a web page", "tcp", http.Header{"Authorization": {"Bearer " + testTok}, "Origin": {"http://kiosk.example"}}, 403, ""},
		{"socket needs no token", "unix", nil, 200, ""},
		{"socket ignores a wrong token", "unix", bearer("wrong"), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := f.raw(t, tc.transport, "GET", "/v1/status", tc.header, "")
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if tc.status != 401 {
				return
			}
			if e := res.apiError(t); e.Code != localapi.CodeUnauthorized || e.Reason != tc.reason {
				t.Fatalf("got %s %q", e.Code, e.Reason)
			}
			if res.header.Get("WWW-Authenticate") != `Bearer realm="storeagent"` {
				t.Fatalf("WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("client", func(t *testing.T) {
		ctx := context.Background()
		_, err := (&localapi.Client{Addr: f.addr}).Status(ctx)
		if !localapi.IsUnauthorized(err) {
			t.Fatalf("without token: %v", err)
		}
		if _, err := (&localapi.Client{Addr: f.addr, Token: testTok}).Status(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNonLoopbackListener binds every interface, as api.listen = ":8780"
// would: refused without a token, served with one to requests carrying it.
func TestNonLoopbackListener(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ln, err := localapi.ListenTCP("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	err = localapi.NewServer(localapi.Options{Backend: f.a}).Run(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "not loopback") || !strings.Contains(err.Error(), "api.token_file") {
		t.Fatalf("Run without a token: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the refused listener is still open")
	}

	ln, err = localapi.ListenTCP("0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(runUntil(t, cancel, func() error {
		return localapi.NewServer(localapi.Options{Backend: f.a, Token: testTok}).Run(ctx, ln)
	}))
	addr := "127.0.0.1:" + portOf(t, ln.Addr())
	if _, err := (&localapi.Client{Addr: addr}).Status(ctx); !localapi.IsUnauthorized(err) {
		t.Fatalf("without token: %v", err)
	}
	if _, err := (&localapi.Client{Addr: addr, Token: testTok}).Status(ctx); err != nil {
		t.Fatalf("with token: %v", err)
	}
}

func portOf(t *testing.T, a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// gated is the agent with a Capture that waits for the test: a request
// held in flight across shutdown.
type gated struct {
	*agent.Agent
	entered chan struct{}
	release chan struct{}
}

func (g gated) Capture(ctx context.Context, req agent.CaptureRequest) (agent.CaptureResult, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Agent.Capture(ctx, req)
}

var _ localapi.Backend = (*agent.Agent)(nil)
var _ localapi.Backend = gated{}

// TestShutdownWaitsForRequestsInFlight: cancelling Run stops new
// connections, lets the event in flight be written and acknowledged, and
// returns nil.
func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	g := gated{Agent: f.a, entered: make(chan struct{}), release: make(chan struct{})}
	sock := filepath.Join(shortDir(t), "api.sock")
	ln, err := localapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- localapi.NewServer(localapi.Options{Backend: g}).Run(ctx, ln) }()
	c := &localapi.Client{Socket: sock}
	captured := make(chan error, 1)
	go func() {
		_, err := c.Capture(context.Background(), localapi.EventRequest{Event: "Order Completed", Device: "pos-1"})
		captured <- err
	}()
	<-g.entered
	cancel()
	select {
	case err := <-ran:
		t.Fatalf("Run returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := (&localapi.Client{Socket: sock}).Status(context.Background()); !localapi.IsConnectError(err) {
		t.Fatalf("a new connection during shutdown: %v", err)
	}
	close(g.release)
	if err := <-captured; err != nil {
		t.Fatalf("the request in flight: %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind: %v", err)
	}
}

// TestShutdownIsBounded: a request that outlives ShutdownTimeout is cut
// off, and Run still returns nil.
func TestShutdownIsBounded(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	g := gated{Agent: f.a, entered: make(chan struct{}), release: make(chan struct{})}
	defer close(g.release)
	ln, err := localapi.ListenUnix(filepath.Join(shortDir(t), "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- localapi.NewServer(localapi.Options{Backend: g, ShutdownTimeout: 50 * time.Millisecond}).Run(ctx, ln)
	}()
	captured := make(chan error, 1)
	go func() {
		_, err := (&localapi.Client{Socket: ln.Addr().String()}).Capture(context.Background(), localapi.EventRequest{Event: "x", Device: "pos-1"})
		captured <- err
	}()
	<-g.entered
	start := time.Now()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v to give up", d)
	}
	if err := <-captured; err == nil {
		t.Fatal("a request cut off at shutdown was acknowledged")
	}
}

// TestConnectErrorHint: nothing listening gives a *ConnectError whose text
// tells the technician what to do.
func TestConnectErrorHint(t *testing.T) {
	missing := filepath.Join(shortDir(t), "api.sock")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name   string
		client *localapi.Client
		target string
	}{
		{"no socket", &localapi.Client{Socket: missing}, missing},
		{"no TCP listener", &localapi.Client{Addr: closedAddr}, closedAddr},
		{"zero client", &localapi.Client{}, "/run/storeagent/api.sock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.target == localapi.DefaultSocket {
				if _, err := os.Stat(tc.target); err == nil {
					t.Skip("a daemon may be listening on the default socket")
				}
			}
			_, err := tc.client.Status(context.Background())
			ce, ok := errors.AsType[*localapi.ConnectError](err)
			if !ok || ce.Target != tc.target {
				t.Fatalf("got %T %v", err, err)
			}
			want := "cannot reach storeagent at " + tc.target + ": is it running? (systemctl status storeagent)"
			if err.Error() != want {
				t.Fatalf("got  %q\nwant %q", err, want)
			}
			if _, ok := errors.AsType[*net.OpError](err); !ok || !localapi.IsConnectError(err) {
				t.Fatalf("Unwrap does not reach the dial error: %v", errors.Unwrap(err))
			}
		})
	}
}
