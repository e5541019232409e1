package central

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/sync/wire"
)

func TestListenControlLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8790", "example.com:8790", "[::]:0", "nonsense"} {
		if ln, err := ListenControl(addr); err == nil {
			ln.Close()
			t.Errorf("ListenControl(%q) listens", addr)
		} else if addr != "nonsense" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("ListenControl(%q): %v, want ErrNotLoopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := ListenControl(addr)
		if err != nil {
			t.Errorf("ListenControl(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// fakeBackend records what the handlers ask for.
type fakeBackend struct {
	req  ChangeRequest
	pace uint64
}

func (f *fakeBackend) PublishRequest(_ context.Context, req ChangeRequest) (ChangeResult, error) {
	f.req = req
	if req.Kind == "bad" {
		return ChangeResult{}, badRequest("kind must be ...")
	}
	return ChangeResult{Store: "s1", Seq: 9, Kind: req.Kind, Published: true}, nil
}

func (f *fakeBackend) PushSnapshotRequest(context.Context, SnapshotRequest) (SyncResult, error) {
	return SyncResult{}, ErrNotRunning
}
func (f *fakeBackend) Report() Report {
	return Report{Agents: []AgentReport{{Store: "s1", Agent: "a"}}}
}
func (f *fakeBackend) SetPace(ms uint64)    { f.pace = ms }
func (f *fakeBackend) Pace() uint64         { return f.pace }
func (f *fakeBackend) DropAcks(n int) int64 { return int64(n) }

var _ ControlBackend = (*fakeBackend)(nil)

func TestControlHandlers(t *testing.T) {
	b := &fakeBackend{}
	h := NewControlServer(b, quietLogger()).Handler()
	for _, tc := range []struct {
		name, method, path, ctype, body string
		header                          [2]string
		status                          int
		contains                        string
	}{
		{"report", "GET", "/v1/report", "", "", [2]string{}, 200, `"agent": "a"`},
		{"change", "POST", "/v1/changes", "application/json", `{"kind":"erase","profile":"c00000001"}`, [2]string{}, 200, `"seq": 9`},
		{"bad change", "POST", "/v1/changes", "application/json", `{"kind":"bad"}`, [2]string{}, 400, "bad request"},
		{"unknown field", "POST", "/v1/changes", "application/json", `{"kind":"erase","profil":"x"}`, [2]string{}, 400, `unknown field \"profil\"`},
		{"trailing data", "POST", "/v1/changes", "application/json", `{"kind":"erase"} {}`, [2]string{}, 400, "trailing"},
		{"not json", "POST", "/v1/changes", "application/json", `{"kind":`, [2]string{}, 400, "truncated"},
		{"too large", "POST", "/v1/changes", "application/json", `{"kind":"` + strings.Repeat("x", maxRequestBody) + `"}`, [2]string{}, 400, "larger"},
		{"form post", "POST", "/v1/changes", "text/plain", `{"kind":"erase"}`, [2]string{}, 415, "application/json"},
		{"origin", "GET", "/v1/report", "", "", [2]string{"Origin", "http://evil.example"}, 403, "browsers"},
		{"referer", "POST", "/v1/changes", "application/json", `{}`, [2]string{"Referer", "http://evil.example/"}, 403, "browsers"},
		{"wrong method", "DELETE", "/v1/report", "", "", [2]string{}, 405, ""},
		{"set pace", "PUT", "/v1/pace", "application/json", `{"ms":250}`, [2]string{}, 200, `"ms": 250`},
		{"pace too high", "PUT", "/v1/pace", "application/json", `{"ms":99999999}`, [2]string{}, 400, "ms above"},
		{"snapshot not running", "POST", "/v1/snapshots", "application/json", `{"agent":"a"}`, [2]string{}, 503, "not running"},
		{"drop acks", "POST", "/v1/faults/drop-acks", "application/json", `{"n":3}`, [2]string{}, 200, `"pending": 3`},
		{"unknown path", "GET", "/v1/nothing", "", "", [2]string{}, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.header[0] != "" {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("%d %q, want %d with %q", rec.Code, rec.Body.String(), tc.status, tc.contains)
			}
		})
	}
	if b.pace != 250 {
		t.Errorf("backend saw pace %d, want 250", b.pace)
	}
}

// TestControlAPIEndToEnd drives a running central through the control API
// with the ControlClient, as `cdpsim change` does.
func TestControlAPIEndToEnd(t *testing.T) {
	broker := startMosquitto(t)
	dir := t.TempDir()
	c := startCentral(t, testConfig(t, broker, dir, 20))
	a := newTestAgent(t, broker, "pos-1")
	ln, err := ListenControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- NewControlServer(c, quietLogger()).Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-srvDone; err != nil {
			t.Errorf("control server: %v", err)
		}
	})
	cl := &ControlClient{Addr: ln.Addr().String()}

	res, err := cl.Change(ctx, ChangeRequest{Kind: "erase", Profile: ProfileID(2)})
	if err != nil || res.Seq != 2 || !res.Published || res.Store != testStore {
		t.Fatalf("erase: %+v %v", res, err)
	}
	a.waitChange(5 * time.Second)

	seven := 7
	res, err = cl.Change(ctx, ChangeRequest{Kind: "consent", Customer: &seven,
		Purposes: map[string]ConsentRequest{PurposeMarketing: {Status: "withdrawn"}, PurposeAnalytics: {Status: "objected"}}})
	if err != nil || res.Seq != 3 {
		t.Fatalf("consent: %+v %v", res, err)
	}
	ch := a.waitChange(5 * time.Second)
	cc := ch.Body.(*wire.ConsentChange)
	if e := cc.Purposes[PurposeAnalytics]; e.Status != wire.StatusObjected || e.Basis != wire.BasisLegitimateInterest || e.At <= 0 {
		t.Errorf("consent defaults: %+v", e)
	}

	res, err = cl.Change(ctx, ChangeRequest{Kind: "profile", Customer: &seven, Loyalty: "4111 1111 1111 1111",
		Attrs: []AttrRequest{{Name: "tier", Purpose: PurposeLoyalty, Value: "platinum"}, {Name: "points", Purpose: PurposeLoyalty, Value: 120.0}}})
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	pc := a.waitChange(5 * time.Second).Body.(*wire.ProfileChange)
	if pc.Version != 2 || len(pc.Idents) != 1 || pc.Idents[0] != IdentOf(testTenantKey, "loyalty", "4111111111111111") {
		t.Errorf("profile change: version %d idents %v", pc.Version, pc.Idents)
	}
	attrs := map[string]any{}
	for _, at := range pc.Attrs {
		attrs[at.Name] = at.Value
	}
	if attrs["tier"] != "platinum" || attrs["points"] != int64(120) || attrs["account_status"] != "active" || len(pc.Attrs) != 5 {
		t.Errorf("attributes %v: want the new tier and points, the others kept", attrs)
	}

	for _, bad := range []ChangeRequest{
		{Kind: "erase"},
		{Kind: "explode", Profile: "p1"},
		{Kind: "consent", Profile: "p1", Purposes: map[string]ConsentRequest{"loyalty": {Status: "maybe"}}},
		{Kind: "profile", Profile: "p1", Loyalty: "4111111111111112"},
		{Kind: "restrict", Profile: "p1"},
		{Kind: "policy", Policy: &PolicyRequest{Purposes: []PurposeRequest{{Name: "x", Basis: "whim"}}}},
	} {
		if _, err := cl.Change(ctx, bad); !IsBadRequest(err) {
			t.Errorf("%+v: %v, want a bad request", bad, err)
		}
	}

	if ms, err := cl.SetPace(ctx, 40); err != nil || ms != 40 {
		t.Fatalf("pace: %d %v", ms, err)
	}
	a.sendBatch(1, 1, events("pos-1", 1))
	if ack := a.waitAck(5 * time.Second); ack.Pace != 40 {
		t.Errorf("ack pace %d, want 40", ack.Pace)
	}
	sres, err := cl.PushSnapshot(ctx, SnapshotRequest{Agent: "pos-1"})
	if err != nil || !sres.Snapshot || sres.To != 4 {
		t.Fatalf("snapshot: %+v %v", sres, err)
	}
	if sets := a.reply(5 * time.Second); len(sets) != sres.Chunks {
		t.Errorf("%d chunks received, %d sent", len(sets), sres.Chunks)
	}
	if n, err := cl.DropAcks(ctx, 2); err != nil || n != 2 {
		t.Errorf("drop acks: %d %v", n, err)
	}
	rep, err := cl.Report(ctx)
	if err != nil || rep.Live == nil || rep.Live.Pace != 40 || len(rep.Stores) != 1 || rep.Stores[0].Seq != 4 || rep.Live.AcksPending != 2 {
		t.Fatalf("report: %+v %v", rep, err)
	}
	if got := agentReport(t, rep, "pos-1"); got.Unique != 1 {
		t.Errorf("agent report %+v", got)
	}
}

// Nothing at the address, or something that takes the connection and
// closes it without an answer (another program on a freed port): either
// way the error says to start cdpsim there.
func TestControlClientHint(t *testing.T) {
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for name, addr := range map[string]string{
		"nothing listens":          "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"closed without answering": closer.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&ControlClient{Addr: addr}).Report(t.Context())
			if err == nil || !strings.Contains(err.Error(), "is `cdpsim serve --control") {
				t.Errorf("no hint: %v", err)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				t.Error("a connect failure is not an API error")
			}
		})
	}
}
