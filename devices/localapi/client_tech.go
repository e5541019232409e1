package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// The technician's calls, for storectl. Each returns what the daemon's
// Technician returned; a daemon that serves no technician routes answers
// 503 unavailable, and one too old to know a route 404 not_found.

// maxStreamLine bounds one NDJSON line of a stream.
const maxStreamLine = 1 << 20

// Doctor runs the daemon's checks.
func (c *Client) Doctor(ctx context.Context) (DoctorReport, error) {
	var out DoctorReport
	err := c.send(ctx, "doctor", http.MethodGet, "/v1/doctor", nil, http.StatusOK, &out)
	return out, err
}

// Outbox returns the outbox's totals and bounds.
func (c *Client) Outbox(ctx context.Context) (OutboxReport, error) {
	var out OutboxReport
	err := c.send(ctx, "outbox", http.MethodGet, "/v1/outbox", nil, http.StatusOK, &out)
	return out, err
}

// PeekOutbox describes the n oldest queued events, masked (1 to 1000).
func (c *Client) PeekOutbox(ctx context.Context, n int) (OutboxPeek, error) {
	var out OutboxPeek
	err := c.send(ctx, "outbox peek", http.MethodGet, "/v1/outbox/peek?n="+strconv.Itoa(n), nil, http.StatusOK, &out)
	return out, err
}

// Resync asks the daemon to ask the central for every change after its
// cursor. An agent with sync off fails with IsSyncDisabled.
func (c *Client) Resync(ctx context.Context) (ResyncResult, error) {
	var out ResyncResult
	err := c.send(ctx, "resync", http.MethodPost, "/v1/sync/resync", nil, http.StatusAccepted, &out)
	return out, err
}

// Lookup returns a masked, purpose-scoped view of one customer; the daemon
// records the lookup in its audit log. A malformed identifier fails with
// IsInvalidIdentifier, an unknown purpose with IsUnknownPurpose.
func (c *Client) Lookup(ctx context.Context, req LookupRequest) (LookupResult, error) {
	var out LookupResult
	err := c.send(ctx, "lookup", http.MethodPost, "/v1/lookup", req, http.StatusOK, &out)
	return out, err
}

// Logs returns the daemon's n most recent log lines (1 to 10000).
func (c *Client) Logs(ctx context.Context, n int) (LogLines, error) {
	var out LogLines
	err := c.send(ctx, "logs", http.MethodGet, "/v1/logs?n="+strconv.Itoa(n), nil, http.StatusOK, &out)
	return out, err
}

// Config returns the daemon's configuration, secrets removed.
func (c *Client) Config(ctx context.Context) (ConfigView, error) {
	var out ConfigView
	err := c.send(ctx, "config", http.MethodGet, "/v1/config", nil, http.StatusOK, &out)
	return out, err
}

// Compact asks the daemon to compact its store file and waits for the
// result; progress, if not nil, is called as the daemon reports it. The
// call lasts as long as the compaction: do not give the Client an
// http.Client with a Timeout shorter than that, bound ctx instead.
func (c *Client) Compact(ctx context.Context, progress func(done, total uint64)) (CompactResult, error) {
	res, err := c.do(ctx, "compact", http.MethodPost, "/v1/compact", nil, http.StatusOK)
	if err != nil {
		return CompactResult{}, err
	}
	defer res.Body.Close()
	lines := newLineReader(res.Body)
	for {
		var l compactLine
		if err := lines.next(&l); errors.Is(err, io.EOF) {
			return CompactResult{}, errors.New("storeagent compact: the answer ended without a result: did the daemon stop?")
		} else if err != nil {
			return CompactResult{}, fmt.Errorf("storeagent compact: %w", err)
		}
		switch {
		case l.Error != nil:
			l.Error.Status = http.StatusOK
			return CompactResult{}, l.Error
		case l.Result != nil:
			return *l.Result, nil
		case l.Progress != nil && progress != nil:
			progress(l.Progress.Done, l.Progress.Total)
		}
	}
}

// WatchScans streams the frames the daemon reads on a scanner port, named
// by its name or device path. The first event is ScanWatching. A port the
// daemon does not own fails with IsUnknownPort: open it directly instead.
// The stream lasts until ctx ends, the watcher is closed, or the daemon
// stops; do not give the Client an http.Client with a Timeout.
func (c *Client) WatchScans(ctx context.Context, port string) (*ScanWatcher, error) {
	res, err := c.do(ctx, "scans", http.MethodGet, "/v1/scans?port="+url.QueryEscape(port), nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return &ScanWatcher{body: res.Body, lines: newLineReader(res.Body)}, nil
}

// ScanWatcher reads a stream of ScanEvents. It is not safe for concurrent
// use; Close may be called from another goroutine to end a Next.
type ScanWatcher struct {
	body  io.Closer
	lines *lineReader
}

// Next returns the next event. At the end of the stream (the daemon
// stopped, or Close was called) it returns io.EOF or the read error.
func (w *ScanWatcher) Next() (ScanEvent, error) {
	var ev ScanEvent
	err := w.lines.next(&ev)
	return ev, err
}

// Close ends the stream.
func (w *ScanWatcher) Close() error { return w.body.Close() }

// lineReader decodes NDJSON lines.
type lineReader struct{ sc *bufio.Scanner }

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxStreamLine)
	return &lineReader{sc: sc}
}

// next decodes the next non-empty line into v; io.EOF at the end.
func (l *lineReader) next(v any) error {
	for l.sc.Scan() {
		if len(l.sc.Bytes()) == 0 {
			continue
		}
		if err := json.Unmarshal(l.sc.Bytes(), v); err != nil {
			return fmt.Errorf("decode stream line: %w", err)
		}
		return nil
	}
	if err := l.sc.Err(); err != nil {
		return err
	}
	return io.EOF
}
