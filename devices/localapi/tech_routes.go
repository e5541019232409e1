package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode"
)

// Bounds of the technician routes' parameters.
const (
	defaultPeek = 10
	maxPeek     = 1000
	defaultLogs = 200
	maxLogs     = 10000
	maxPortLen  = 256
)

// technician returns the daemon's technician backend, or the error of a
// server built without one.
func (s *Server) technician() (Technician, error) {
	if s.tech == nil {
		return nil, &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Reason: "this daemon serves no technician routes"}
	}
	return s.tech, nil
}

// countParam reads the query parameter name as a count from 1 to max;
// absent, it is def.
func countParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("query parameter " + name + " must be a number from 1 to " + strconv.Itoa(max))
	}
	return n, nil
}

func (s *Server) serveDoctor(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	rep, err := t.Doctor(r.Context())
	return http.StatusOK, rep, err
}

func (s *Server) serveOutbox(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	rep, err := t.Outbox(r.Context())
	return http.StatusOK, rep, err
}

func (s *Server) servePeek(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	n, err := countParam(r, "n", defaultPeek, maxPeek)
	if err != nil {
		return 0, nil, err
	}
	peek, err := t.PeekOutbox(r.Context(), n)
	if peek.Entries == nil {
		peek.Entries = []OutboxEntry{}
	}
	return http.StatusOK, peek, err
}

func (s *Server) serveResync(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	res, err := t.Resync(r.Context())
	return http.StatusAccepted, res, err
}

func (s *Server) serveLookup(r *http.Request, body []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	req, err := decodeLookup(body)
	if err != nil {
		return 0, nil, err
	}
	res, err := t.Lookup(r.Context(), req)
	return http.StatusOK, res, err
}

// decodeLookup reads and checks the body of POST /v1/lookup.
func decodeLookup(body []byte) (LookupRequest, error) {
	var r LookupRequest
	if err := decodeJSON(body, maxBody, &r); err != nil {
		return r, err
	}
	return r, firstErr(checkIdentifier(r.Scan, r.Kind, r.Value), checkPurpose(r.Purpose))
}

func (s *Server) serveLogs(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	n, err := countParam(r, "n", defaultLogs, maxLogs)
	if err != nil {
		return 0, nil, err
	}
	lines, err := t.Logs(r.Context(), n)
	if lines.Lines == nil {
		lines.Lines = []string{}
	}
	return http.StatusOK, lines, err
}

func (s *Server) serveConfig(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	cfg, err := t.Config(r.Context())
	return http.StatusOK, cfg, err
}

// serveCompact streams the compaction's progress as NDJSON: progress
// lines, then one result line or one error line.
func (s *Server) serveCompact(_ *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, streamFunc(func(ctx context.Context, line func(any) error) error {
		var lineErr error
		res, err := t.Compact(ctx, func(done, total uint64) {
			if lineErr == nil {
				lineErr = line(compactLine{Progress: &CompactProgress{Done: done, Total: total}})
			}
		})
		if err != nil {
			e, internal := errorOf(err)
			if lerr := line(compactLine{Error: e}); lerr != nil || !internal {
				return lerr
			}
			return err // for the request's log line
		}
		return line(compactLine{Result: &res})
	}), nil
}

// serveScans streams the frames read on one port as NDJSON ScanEvents.
func (s *Server) serveScans(r *http.Request, _ []byte) (int, any, error) {
	t, err := s.technician()
	if err != nil {
		return 0, nil, err
	}
	port := r.URL.Query().Get("port")
	if port == "" || len(port) > maxPortLen || !printableASCII(port) {
		return 0, nil, badRequest("query parameter port must name a scanner port or its device path")
	}
	return http.StatusOK, streamFunc(func(ctx context.Context, line func(any) error) error {
		return t.WatchScans(ctx, port, func(ev ScanEvent) error { return line(ev) })
	}), nil
}

func printableASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// streamFunc is the answer of a streaming route: it writes NDJSON lines
// with line until it is done, ctx ends (the client went away, or the
// server is stopping), or line fails.
type streamFunc func(ctx context.Context, line func(v any) error) error

// stream runs a streaming route. The status and headers are written with
// the first line, so that an error before it (an unknown port) is an
// ordinary JSON error response. The server's read and write timeouts do
// not apply to a stream; its context ends when the client goes away or
// the listener's Run is stopping, so a stream never holds up shutdown.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, pol listenerPolicy, fn streamFunc) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if pol.run != nil {
		stop := context.AfterFunc(pol.run, cancel)
		defer stop()
	}
	started := false
	enc := json.NewEncoder(w)
	err := fn(ctx, func(v any) error {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
		return rc.Flush()
	})
	switch {
	case err == nil || ctx.Err() != nil:
	case !started:
		s.fail(w, err)
	default:
		if rw, ok := w.(*recorder); ok {
			rw.info.err = err
		}
	}
}
