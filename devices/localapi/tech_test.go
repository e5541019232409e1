package localapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
)

// fakeTech stands for the daemon's technician backend.
type fakeTech struct {
	mu          sync.Mutex
	lookups     []localapi.LookupRequest
	peekN       int
	watchEnded  chan struct{} // closed when a WatchScans returns
	syncOff     bool
	compactFail bool
}

var _ localapi.Technician = (*fakeTech)(nil)

func (f *fakeTech) Doctor(context.Context) (localapi.DoctorReport, error) {
	return localapi.DoctorReport{Source: "daemon", Checks: []localapi.Check{
		{Name: "daemon", Status: localapi.CheckOK, Summary: "running"},
		{Name: "outbox", Status: localapi.CheckFail, Summary: "stuck", Hint: "check the central"},
	}}, nil
}

func (f *fakeTech) Outbox(context.Context) (localapi.OutboxReport, error) {
	return localapi.OutboxReport{OutboxStatus: localapi.OutboxStatus{Records: 3}, FirstSeq: 5, LastSeq: 7, Link: "disabled"}, nil
}

func (f *fakeTech) PeekOutbox(_ context.Context, n int) (localapi.OutboxPeek, error) {
	f.mu.Lock()
	f.peekN = n
	f.mu.Unlock()
	return localapi.OutboxPeek{Entries: []localapi.OutboxEntry{{Seq: 5, Class: "critical", UserID: true, Ref: "0a1b2c3d"}}, More: true}, nil
}

func (f *fakeTech) Resync(context.Context) (localapi.ResyncResult, error) {
	if f.syncOff {
		return localapi.ResyncResult{}, localapi.ErrSyncDisabled
	}
	return localapi.ResyncResult{Requested: true, Cursor: 9, Link: "connected"}, nil
}

func (f *fakeTech) Compact(_ context.Context, progress func(done, total uint64)) (localapi.CompactResult, error) {
	progress(1, 2)
	progress(2, 2)
	if f.compactFail {
		return localapi.CompactResult{}, errors.New("disk full")
	}
	return localapi.CompactResult{Path: "/x/store.db", BeforeBytes: 100, AfterBytes: 50, Records: 2}, nil
}

func (f *fakeTech) Lookup(_ context.Context, req localapi.LookupRequest) (localapi.LookupResult, error) {
	f.mu.Lock()
	f.lookups = append(f.lookups, req)
	f.mu.Unlock()
	if req.Scan == "79927398710" {
		return localapi.LookupResult{}, &ident.InvalidError{Kind: ident.Loyalty, Reason: ident.ReasonBadCheckDigit}
	}
	return localapi.LookupResult{Identifier: "loyalty:•••••••••13", Known: true, Purpose: req.Purpose, Audited: true}, nil
}

func (f *fakeTech) Logs(_ context.Context, n int) (localapi.LogLines, error) {
	return localapi.LogLines{Lines: []string{"line 1", "line 2"}[:min(n, 2)], Dropped: 4}, nil
}

func (f *fakeTech) Config(context.Context) (localapi.ConfigView, error) {
	return localapi.ConfigView{Path: "/etc/storeagent/agent.toml", TOML: "kind = 'pos'\n"}, nil
}

func (f *fakeTech) WatchScans(ctx context.Context, port string, emit func(localapi.ScanEvent) error) error {
	if port != "till-1" && port != "/dev/ttyACM0" {
		return localapi.ErrUnknownPort
	}
	defer close(f.watchEnded)
	if err := emit(localapi.ScanEvent{Event: localapi.ScanWatching, Port: "till-1", Path: "/dev/ttyACM0"}); err != nil {
		return err
	}
	if err := emit(localapi.ScanEvent{Event: localapi.ScanFrame, Port: "till-1", Valid: true, Kind: "loyalty", Identifier: "loyalty:•••13"}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// techServer serves the technician routes over tech (nil: none) on a unix
// socket and a loopback port with a token; stop ends Run.
func techServer(t *testing.T, tech localapi.Technician) (unix, tcp *localapi.Client, stop func()) {
	t.Helper()
	srv := localapi.NewServer(localapi.Options{Tech: tech, Token: testTok})
	sock := filepath.Join(shortDir(t), "api.sock")
	uln, err := localapi.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := localapi.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runUntil(t, cancel, func() error { return srv.Run(ctx, uln) }, func() error { return srv.Run(ctx, tln) })
	var once sync.Once
	stop = func() { once.Do(done) }
	t.Cleanup(stop)
	return &localapi.Client{Socket: sock}, &localapi.Client{Addr: tln.Addr().String(), Token: testTok}, stop
}

func TestTechnicianRoutes(t *testing.T) {
	ft := &fakeTech{watchEnded: make(chan struct{})}
	unix, tcp, _ := techServer(t, ft)
	ctx := context.Background()
	for name, c := range map[string]*localapi.Client{"unix": unix, "tcp": tcp} {
		t.Run(name, func(t *testing.T) {
			rep, err := c.Doctor(ctx)
			if err != nil || len(rep.Checks) != 2 || !rep.Failed() || rep.Checks[1].Hint == "" {
				t.Fatalf("doctor %+v %v", rep, err)
			}
			ob, err := c.Outbox(ctx)
			if err != nil || ob.Records != 3 || ob.FirstSeq != 5 || ob.Link != "disabled" {
				t.Fatalf("outbox %+v %v", ob, err)
			}
			peek, err := c.PeekOutbox(ctx, 7)
			if err != nil || len(peek.Entries) != 1 || !peek.More || peek.Entries[0].Ref != "0a1b2c3d" || ft.peekN != 7 {
				t.Fatalf("peek %+v %v (n %d)", peek, err, ft.peekN)
			}
			rs, err := c.Resync(ctx)
			if err != nil || !rs.Requested || rs.Cursor != 9 {
				t.Fatalf("resync %+v %v", rs, err)
			}
			lk, err := c.Lookup(ctx, localapi.LookupRequest{Scan: "79927398713", Purpose: "loyalty"})
			if err != nil || !lk.Known || !lk.Audited || lk.Purpose != "loyalty" {
				t.Fatalf("lookup %+v %v", lk, err)
			}
			logs, err := c.Logs(ctx, 1)
			if err != nil || len(logs.Lines) != 1 || logs.Dropped != 4 {
				t.Fatalf("logs %+v %v", logs, err)
			}
			cfg, err := c.Config(ctx)
			if err != nil || !strings.Contains(cfg.TOML, "kind") {
				t.Fatalf("config %+v %v", cfg, err)
			}
			var seen []uint64
			res, err := c.Compact(ctx, func(done, total uint64) { seen = append(seen, done) })
			if err != nil || res.AfterBytes != 50 || !slices.Equal(seen, []uint64{1, 2}) {
				t.Fatalf("compact %+v %v, progress %v", res, err, seen)
			}
		})
	}
}

func TestTechnicianRefusals(t *testing.T) {
	ft := &fakeTech{watchEnded: make(chan struct{}), syncOff: true, compactFail: true}
	c, _, _ := techServer(t, ft)
	ctx := context.Background()
	if _, err := c.Resync(ctx); !localapi.IsSyncDisabled(err) || !errors.Is(err, localapi.ErrSyncDisabled) {
		t.Fatalf("resync with sync off: %v", err)
	}
	_, err := c.Lookup(ctx, localapi.LookupRequest{Scan: "79927398710", Purpose: "loyalty"})
	if e := wantAPIError(t, err, 422, localapi.CodeInvalidIdentifier); e.Reason != "bad_check_digit" {
		t.Fatalf("reason %q", e.Reason)
	}
	_, err = c.Lookup(ctx, localapi.LookupRequest{Purpose: "loyalty"})
	wantAPIError(t, err, 400, localapi.CodeBadRequest)
	_, err = c.Lookup(ctx, localapi.LookupRequest{Scan: "1", Purpose: "Not A Purpose"})
	wantAPIError(t, err, 400, localapi.CodeBadRequest)
	if _, err := c.PeekOutbox(ctx, 0); !localapi.IsBadRequest(err) {
		t.Fatalf("peek 0: %v", err)
	}
	if _, err := c.Logs(ctx, 10001); !localapi.IsBadRequest(err) {
		t.Fatalf("logs 10001: %v", err)
	}
	if _, err := c.WatchScans(ctx, "till-9"); !localapi.IsUnknownPort(err) || !errors.Is(err, localapi.ErrUnknownPort) {
		t.Fatalf("unknown port: %v", err)
	}
	if _, err := c.WatchScans(ctx, "till\x01"); !localapi.IsBadRequest(err) {
		t.Fatalf("port with a control character: %v", err)
	}
	// A failure after progress lines comes back as an error line: an
	// internal error, whose cause stays in the daemon's log.
	_, err = c.Compact(ctx, nil)
	if e, ok := errors.AsType[*localapi.APIError](err); !ok || e.Code != localapi.CodeInternal || strings.Contains(e.Reason, "disk full") {
		t.Fatalf("compact failure: %v", err)
	}
}

func TestTechnicianRoutesWithoutBackend(t *testing.T) {
	c, _, _ := techServer(t, nil)
	_, err := c.Doctor(context.Background())
	wantAPIError(t, err, http.StatusServiceUnavailable, localapi.CodeUnavailable)
	_, err = c.WatchScans(context.Background(), "till-1")
	wantAPIError(t, err, http.StatusServiceUnavailable, localapi.CodeUnavailable)
}

// A scan stream delivers events as they come, ends the backend's watch
// when the client closes it, and ends at once when the server stops,
// however long its shutdown timeout.
func TestScanStream(t *testing.T) {
	t.Run("client closes", func(t *testing.T) {
		ft := &fakeTech{watchEnded: make(chan struct{})}
		c, _, _ := techServer(t, ft)
		w, err := c.WatchScans(context.Background(), "/dev/ttyACM0")
		if err != nil {
			t.Fatal(err)
		}
		first, err1 := w.Next()
		second, err2 := w.Next()
		if err1 != nil || err2 != nil || first.Event != localapi.ScanWatching || second.Identifier != "loyalty:•••13" || !second.Valid {
			t.Fatalf("events %+v %v, %+v %v", first, err1, second, err2)
		}
		w.Close()
		select {
		case <-ft.watchEnded:
		case <-time.After(5 * time.Second):
			t.Fatal("the backend's watch did not end when the client went away")
		}
	})
	t.Run("server stops", func(t *testing.T) {
		ft := &fakeTech{watchEnded: make(chan struct{})}
		c, _, stop := techServer(t, ft)
		w, err := c.WatchScans(context.Background(), "till-1")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Next()
		w.Next()
		start := time.Now()
		stop()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Run took %v to return with a stream open", took)
		}
		if _, err := w.Next(); !errors.Is(err, io.EOF) && err == nil {
			t.Fatalf("stream still open after the server stopped: %v", err)
		}
	})
}
