package localapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Backend is the agent core. Required.
	Backend Backend
	// Status fills GET /v1/status. Nil: the status holds only the
	// server's own rejects.
	Status StatusSource
	// Tech serves the technician routes (doctor, outbox, sync, compact,
	// lookup, logs, config, scans). Nil: they answer 503 unavailable.
	Tech Technician
	// Logger receives one line per request (method, route pattern, status,
	// duration, error code) and the server's own events. Nil: discard.
	Logger *slog.Logger
	// Token is the bearer token every request over TCP must carry, from
	// Config.Token. Empty: none, and only loopback TCP listeners are served.
	Token string
	// ShutdownTimeout bounds how long Run waits for requests in flight once
	// its context ends; past it their connections are closed. Default 5s.
	ShutdownTimeout time.Duration
}

// Server serves the local API. It is safe for concurrent use, and one
// Server may Run on several listeners at once (the socket and TCP).
type Server struct {
	b        Backend
	status   StatusSource
	tech     Technician
	log      *slog.Logger
	token    [sha256.Size]byte // SHA-256 of the token, compared in constant time
	hasToken bool
	shutdown time.Duration
	rejects  map[string]*rejectCount // by code; the map is fixed at NewServer
}

type rejectCount struct {
	n    atomic.Uint64
	last atomic.Int64 // unix ms
}

// NewServer returns a server of the local API over opts.Backend.
func NewServer(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		b: opts.Backend, status: opts.Status, tech: opts.Tech, log: log.With("component", "localapi"),
		shutdown: opts.ShutdownTimeout, rejects: map[string]*rejectCount{},
	}
	if s.shutdown <= 0 {
		s.shutdown = 5 * time.Second
	}
	if opts.Token != "" {
		s.token, s.hasToken = sha256.Sum256([]byte(opts.Token)), true
	}
	for _, c := range codes {
		s.rejects[c] = &rejectCount{}
	}
	return s
}

// listenerPolicy is what a listener requires and grants.
type listenerPolicy struct {
	token bool       // every request must carry the bearer token; the Host is not checked
	grant permission // what requests on it may do
	// run is the context Run serves under: streaming routes end with it,
	// where ordinary requests in flight are let finish.
	run context.Context
}

// policyFor decides from the address a listener is bound to: a unix socket
// is guarded by its file mode; TCP needs the token when one is configured,
// and a listener beyond loopback (or of an unknown kind) is refused without
// one.
func (s *Server) policyFor(addr net.Addr) (listenerPolicy, error) {
	all := permRead | permWrite
	if _, ok := addr.(*net.UnixAddr); ok {
		return listenerPolicy{grant: all}, nil
	}
	if s.hasToken {
		return listenerPolicy{token: true, grant: all}, nil
	}
	if a, ok := addr.(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return listenerPolicy{grant: all}, nil
	}
	return listenerPolicy{}, fmt.Errorf("local api: refusing to serve %s, which is not loopback, without a bearer token: set api.token_file", addr)
}

// Run serves the API on ln until ctx ends, then stops taking connections,
// waits for the requests in flight (at most Options.ShutdownTimeout), and
// returns nil. It closes ln. Any other end is an error: ln failing, or a
// listener the policy refuses (beyond loopback without a token).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	pol, err := s.policyFor(ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	pol.run = ctx
	hs := &http.Server{
		Handler:           s.handler(pol),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests in flight at shutdown finish: an event being written is
		// acknowledged rather than cut off.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("serving", "network", addr.Network(), "addr", addr.String(), "token", pol.token)
	select {
	case err := <-served:
		return fmt.Errorf("local api on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("requests still in flight at shutdown were cut off", "addr", addr.String(), "timeout", s.shutdown)
		hs.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("local api on %s: %w", addr, err)
	}
	s.log.Info("stopped", "addr", addr.String())
	return nil
}

// handler wraps the routes with what every request goes through, in order:
// the log line; Origin and Referer refused; the token, or a local Host;
// then the route, which checks method, permission and body.
func (s *Server) handler(pol listenerPolicy) http.Handler {
	mux := s.mux(pol)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{route: "unmatched", status: http.StatusOK}
		rw := &recorder{ResponseWriter: w, info: info}
		defer s.logRequest(r, info, start)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		if err := s.admit(pol, r); err != nil {
			s.writeError(rw, err)
			return
		}
		mux.ServeHTTP(rw, r)
	})
}

// admit refuses what no route may see: a browser's request, a foreign Host
// on a listener without a token (DNS rebinding), a missing or wrong token.
func (s *Server) admit(pol listenerPolicy, r *http.Request) *APIError {
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		return &APIError{Status: 403, Code: CodeForbidden, Reason: "requests from web pages are refused (Origin or Referer present)"}
	}
	if !pol.token {
		if !localHost(r.Host) {
			return &APIError{Status: 403, Code: CodeForbidden, Reason: "the Host header must be local"}
		}
		return nil
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return &APIError{Status: 401, Code: CodeUnauthorized, Reason: "a bearer token is required on this listener"}
	}
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
		return &APIError{Status: 401, Code: CodeUnauthorized, Reason: "the bearer token does not match"}
	}
	return nil
}

// clientHost is the Host the Client sends over the unix socket.
const clientHost = "local-storeagent"

// localHost reports whether a Host header names this machine: empty, the
// Client's socket host, localhost or a loopback address, with any port.
func localHost(host string) bool {
	if host == "" || host == clientHost {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	loopback, _ := loopbackHost(host)
	return loopback
}

// reqInfo is what the log line says about a request, filled as it goes.
type reqInfo struct {
	route  string // the route pattern, never the raw path
	status int
	code   string // the error code, if any
	err    error  // an internal error, for the log only
}

// recorder keeps the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	info *reqInfo
}

func (r *recorder) WriteHeader(status int) {
	r.info.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (s *Server) logRequest(r *http.Request, info *reqInfo, start time.Time) {
	method := r.Method
	if !knownMethods[method] {
		method = "other" // a method is any token a client likes: not logged
	}
	level := slog.LevelDebug
	switch {
	case info.status >= 500:
		level = slog.LevelWarn
	case info.status >= 400:
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.String("method", method), slog.String("route", info.route),
		slog.Int("status", info.status), slog.Duration("duration", time.Since(start)),
	}
	if info.code != "" {
		attrs = append(attrs, slog.String("code", info.code))
	}
	if info.err != nil {
		attrs = append(attrs, slog.Any("err", info.err))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// writeError writes e as the JSON error body and counts it.
func (s *Server) writeError(w http.ResponseWriter, e *APIError) {
	if rw, ok := w.(*recorder); ok {
		rw.info.code = e.Code
	}
	if c := s.rejects[e.Code]; c != nil {
		c.n.Add(1)
		c.last.Store(time.Now().UnixMilli())
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="storeagent"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(e.RetryAfter.Seconds())))
	}
	writeJSON(w, e.Status, e)
}

// apiRejects are the server's refusals since start, for the status.
func (s *Server) apiRejects() []RejectStatus {
	var out []RejectStatus
	for code, c := range s.rejects {
		if n := c.n.Load(); n > 0 {
			out = append(out, RejectStatus{Source: "api", Reason: code, Count: n, Last: time.UnixMilli(c.last.Load())})
		}
	}
	slices.SortFunc(out, func(a, b RejectStatus) int { return strings.Compare(a.Reason, b.Reason) })
	return out
}

// writeJSON writes v as the response. A value that does not encode is an
// internal error, logged with the request.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		if rw, ok := w.(*recorder); ok {
			rw.info.code, rw.info.err = CodeInternal, fmt.Errorf("encode response: %w", err)
		}
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","reason":"internal error: see the agent's log"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readBody reads at most limit bytes of r's body; more is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge(int(limit))
	}
	if err != nil {
		return nil, badRequest("the body could not be read")
	}
	return b, nil
}
