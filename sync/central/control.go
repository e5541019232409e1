package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/storeagent/storeagent/sync/wire"
)

// The control API: HTTP/JSON on a loopback address, for the demo and for
// scripts. It has no authentication, so ListenControl refuses any address
// but loopback, and the server refuses requests a browser page could make
// (any Origin or Referer header, bodies not typed application/json).
//
//	GET  /v1/report             Report
//	POST /v1/changes            ChangeRequest -> ChangeResult
//	POST /v1/snapshots          SnapshotRequest -> SyncResult
//	GET  /v1/pace               -> PaceBody
//	PUT  /v1/pace               PaceBody -> PaceBody
//	POST /v1/faults/drop-acks   DropAcksBody -> DropAcksResult
//
// Errors are {"error": "..."} with 400 (bad request), 403 (browser), 415
// (not JSON), 503 (central not running) or 500.

// ControlBackend is the subset of *Central the control API needs; tests
// drive the handlers with a fake.
type ControlBackend interface {
	PublishRequest(ctx context.Context, req ChangeRequest) (ChangeResult, error)
	PushSnapshotRequest(ctx context.Context, req SnapshotRequest) (SyncResult, error)
	Report() Report
	SetPace(ms uint64)
	Pace() uint64
	DropAcks(n int) int64
}

var _ ControlBackend = (*Central)(nil)

// SnapshotRequest asks for a snapshot pushed to one agent.
type SnapshotRequest struct {
	// Store defaults to the central's default store.
	Store string `json:"store,omitempty"`
	Agent string `json:"agent"`
}

// PaceBody carries a pace in milliseconds.
type PaceBody struct {
	MS uint64 `json:"ms"`
}

// DropAcksBody asks to drop the acks of the next N accepted batches.
type DropAcksBody struct {
	N int `json:"n"`
}

// DropAcksResult says how many acks remain to be dropped.
type DropAcksResult struct {
	Pending int64 `json:"pending"`
}

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// PushSnapshotRequest pushes a snapshot to the agent req names.
func (c *Central) PushSnapshotRequest(ctx context.Context, req SnapshotRequest) (SyncResult, error) {
	store := req.Store
	if store == "" {
		store = c.cfg.Store
	}
	if !wire.ValidID(store) || !wire.ValidID(req.Agent) {
		return SyncResult{}, badRequest("store and agent must be valid ids")
	}
	return c.PushSnapshot(ctx, wire.Scope{Tenant: c.cfg.Tenant, Store: store, Agent: req.Agent})
}

// ListenControl listens on addr, which must be a loopback address
// (127.0.0.1:PORT, [::1]:PORT or localhost:PORT; port 0 picks one). Any
// other address fails with ErrNotLoopback before anything listens.
func ListenControl(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control api: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%w: %q resolved to %s", ErrNotLoopback, addr, ln.Addr())
	}
	return ln, nil
}

// ControlServer serves the control API for a backend.
type ControlServer struct {
	b   ControlBackend
	log *slog.Logger
}

// NewControlServer returns a server for b. log may be nil.
func NewControlServer(b ControlBackend, log *slog.Logger) *ControlServer {
	if log == nil {
		log = slog.Default()
	}
	return &ControlServer{b: b, log: log.With("component", "cdpsim")}
}

// maxRequestBody bounds a request body.
const maxRequestBody = 64 << 10

// Handler returns the API's handler.
func (s *ControlServer) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		body    bool // the request carries a JSON body
		h       func(*http.Request) (any, error)
	}{
		{"GET /v1/report", false, s.report},
		{"POST /v1/changes", true, s.change},
		{"POST /v1/snapshots", true, s.snapshot},
		{"GET /v1/pace", false, s.getPace},
		{"PUT /v1/pace", true, s.putPace},
		{"POST /v1/faults/drop-acks", true, s.dropAcks},
	} {
		mux.Handle(r.pattern, s.endpoint(r.body, r.h))
	}
	return refuseBrowsers(mux)
}

// refuseBrowsers refuses requests that carry Origin or Referer: a web page
// must not reach an unauthenticated local API.
func refuseBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			writeJSON(w, http.StatusForbidden, errorBody{"requests from browsers are refused"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// endpoint adapts h: it checks the body's type and size, and maps h's
// error to a status.
func (s *ControlServer) endpoint(body bool, h func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, errorBody{"content type must be application/json"})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		out, err := h(r)
		if err != nil {
			status := statusOf(err)
			if status >= 500 {
				s.log.Error("control request failed", "path", r.URL.Path, "err", err)
			}
			writeJSON(w, status, errorBody{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func statusOf(err error) int {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, ErrBadRequest), errors.As(err, &maxErr):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotRunning), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeRequest decodes one JSON value into v, strictly: unknown fields
// and trailing data are errors (ErrBadRequest).
func decodeRequest(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return badRequest("body larger than %d bytes", maxRequestBody)
		}
		return badRequest("body: %s", jsonReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("body: trailing data after the json value")
	}
	return nil
}

// jsonReason describes a JSON error without quoting the input: a field
// name at most.
func jsonReason(err error) string {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid json at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated json"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return err.Error()[len("json: "):]
	}
	return "invalid json"
}

func (s *ControlServer) report(r *http.Request) (any, error) { return s.b.Report(), nil }

func (s *ControlServer) change(r *http.Request) (any, error) {
	var req ChangeRequest
	if err := decodeRequest(r.Body, &req); err != nil {
		return nil, err
	}
	return s.b.PublishRequest(r.Context(), req)
}

func (s *ControlServer) snapshot(r *http.Request) (any, error) {
	var req SnapshotRequest
	if err := decodeRequest(r.Body, &req); err != nil {
		return nil, err
	}
	return s.b.PushSnapshotRequest(r.Context(), req)
}

func (s *ControlServer) getPace(r *http.Request) (any, error) { return PaceBody{s.b.Pace()}, nil }

func (s *ControlServer) putPace(r *http.Request) (any, error) {
	var p PaceBody
	if err := decodeRequest(r.Body, &p); err != nil {
		return nil, err
	}
	if p.MS > maxPace {
		return nil, badRequest("ms above %d", maxPace)
	}
	s.b.SetPace(p.MS)
	return PaceBody{s.b.Pace()}, nil
}

// maxPace bounds the pace the control API sets: an hour between batches.
const maxPace = 3_600_000

func (s *ControlServer) dropAcks(r *http.Request) (any, error) {
	var d DropAcksBody
	if err := decodeRequest(r.Body, &d); err != nil {
		return nil, err
	}
	if d.N > 1_000_000 {
		return nil, badRequest("n above 1000000")
	}
	return DropAcksResult{Pending: s.b.DropAcks(d.N)}, nil
}

// Run serves the API on ln until ctx ends, then shuts down gracefully
// (requests in flight get shutdownGrace). Cancellation is not an error.
func (s *ControlServer) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("control api listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("control api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("control api shutdown: %w", err)
	}
	return nil
}

const shutdownGrace = 5 * time.Second
