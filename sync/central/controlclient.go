package central

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ControlClient calls a running cdpsim's control API: `cdpsim change`,
// demo scripts, tests. Its zero value needs only Addr. It is safe for
// concurrent use.
type ControlClient struct {
	// Addr is the control API's address, host:port, as given to `cdpsim
	// serve --control`.
	Addr string
	// HTTPClient sends the requests; nil means a client with no overall
	// timeout (a snapshot push of a million customers takes a while: bound
	// calls with their context).
	HTTPClient *http.Client
}

// APIError is an error answer of the control API.
type APIError struct {
	// Status is the HTTP status, Message the API's error text.
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("cdpsim control api: %s (http %d)", e.Message, e.Status)
}

// IsBadRequest reports whether err is the API refusing a request as
// malformed or impossible (HTTP 400).
func IsBadRequest(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusBadRequest
}

// Change asks for a change; see ChangeRequest.
func (c *ControlClient) Change(ctx context.Context, req ChangeRequest) (ChangeResult, error) {
	var out ChangeResult
	return out, c.send(ctx, http.MethodPost, "/v1/changes", req, &out)
}

// PushSnapshot pushes a snapshot to one agent and returns when every chunk
// is with the broker.
func (c *ControlClient) PushSnapshot(ctx context.Context, req SnapshotRequest) (SyncResult, error) {
	var out SyncResult
	return out, c.send(ctx, http.MethodPost, "/v1/snapshots", req, &out)
}

// Report returns the running central's report.
func (c *ControlClient) Report(ctx context.Context) (Report, error) {
	var out Report
	return out, c.send(ctx, http.MethodGet, "/v1/report", nil, &out)
}

// Pace returns the pace in ms.
func (c *ControlClient) Pace(ctx context.Context) (uint64, error) {
	var out PaceBody
	err := c.send(ctx, http.MethodGet, "/v1/pace", nil, &out)
	return out.MS, err
}

// SetPace sets the pace in ms and returns it.
func (c *ControlClient) SetPace(ctx context.Context, ms uint64) (uint64, error) {
	var out PaceBody
	err := c.send(ctx, http.MethodPut, "/v1/pace", PaceBody{ms}, &out)
	return out.MS, err
}

// DropAcks drops the acks of the next n accepted batches and returns how
// many remain to drop.
func (c *ControlClient) DropAcks(ctx context.Context, n int) (int64, error) {
	var out DropAcksResult
	err := c.send(ctx, http.MethodPost, "/v1/faults/drop-acks", DropAcksBody{n}, &out)
	return out.Pending, err
}

// maxResponse bounds a response body.
const maxResponse = 16 << 20

// send is the one path of every call.
func (c *ControlClient) send(ctx context.Context, method, path string, in, out any) error {
	if c.Addr == "" {
		return errors.New("cdpsim control api: no address (--control)")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, body)
	if err != nil {
		return fmt.Errorf("cdpsim control api: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cdpsim control api: %w", err)
		}
		// Refused, or taken and closed without an answer (another program
		// now holds the port): either way no cdpsim answers there.
		return fmt.Errorf("cannot reach the cdpsim control api at %s: is `cdpsim serve --control %s` running? (%w)", c.Addr, c.Addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("cdpsim control api: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cdpsim control api: answer is not the expected json: %w", err)
	}
	return nil
}

var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 2,
	IdleConnTimeout:     30 * time.Second,
}}
