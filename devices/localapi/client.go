package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/storeagent/storeagent/agent"
)

// Client talks to the daemon's local API: storectl, tests, and any Go
// program on the device. Its zero value talks to DefaultSocket. Set the
// exported fields before the first call and do not change them after; a
// Client is safe for concurrent use and must not be copied once used.
type Client struct {
	// Socket is the unix socket to dial. Empty: DefaultSocket. Ignored when
	// Addr is set.
	Socket string

	// Addr, when set, is the TCP address (host:port) to dial instead of the
	// socket, such as "127.0.0.1:8780".
	Addr string

	// Token, when set, is sent as "Authorization: Bearer <Token>" on every
	// request. A TCP listener needs it when the daemon has api.token_file.
	Token string

	// HTTPClient, when set, sends the requests: set it for a timeout or a
	// test transport. When its Transport is nil, a copy of it is used with
	// the Client's own transport, which dials Socket or Addr.
	HTTPClient *http.Client

	once sync.Once
	hc   *http.Client // HTTPClient or the default, set once
}

// maxResponse bounds a response body read by the Client.
const maxResponse = 8 << 20

func (c *Client) target() string {
	if c.Addr != "" {
		return c.Addr
	}
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocket
}

func (c *Client) httpClient() *http.Client {
	c.once.Do(func() {
		tr := &http.Transport{
			DialContext:         c.dial,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		switch {
		case c.HTTPClient == nil:
			c.hc = &http.Client{Transport: tr}
		case c.HTTPClient.Transport == nil:
			hc := *c.HTTPClient
			hc.Transport = tr
			c.hc = &hc
		default:
			c.hc = c.HTTPClient
		}
	})
	return c.hc
}

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	if c.Addr != "" {
		return d.DialContext(ctx, "tcp", c.Addr)
	}
	return d.DialContext(ctx, "unix", c.target())
}

func (c *Client) base() string {
	if c.Addr != "" {
		return "http://" + c.Addr
	}
	return "http://" + clientHost
}

// send is the path every call with a plain JSON answer takes: in, if not
// nil, is sent as the JSON body; a response with status want is decoded
// into out, if not nil; any other is an *APIError, and a daemon that cannot
// be reached a *ConnectError. op names the call in errors: the path holds
// user ids.
func (c *Client) send(ctx context.Context, op, method, path string, in any, want int, out any) error {
	res, err := c.do(ctx, op, method, path, in, want)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("storeagent %s: read response: %w", op, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("storeagent %s: decode response: %w", op, err)
	}
	return nil
}

// do sends a request and returns the response when its status is want,
// its body for the caller to read and close; every call goes through it,
// streams too. Any other status is read as an *APIError.
func (c *Client) do(ctx context.Context, op, method, path string, in any, want int) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("storeagent %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, body)
	if err != nil {
		return nil, fmt.Errorf("storeagent %s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.connectError(op, err)
	}
	if res.StatusCode != want {
		defer res.Body.Close()
		b, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
		if err != nil {
			return nil, fmt.Errorf("storeagent %s: read response: %w", op, err)
		}
		return nil, responseError(res, b)
	}
	return res, nil
}

// connectError turns a failure to dial into a *ConnectError; other
// failures (a cancelled context, a broken connection) are returned as they
// are.
func (c *Client) connectError(op string, err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return &ConnectError{Target: c.target(), Err: oe}
	}
	return fmt.Errorf("storeagent %s: %w", op, err)
}

// responseError reads an error body. A body that is not ours (a proxy, a
// daemon too old to know the route) still gives the status.
func responseError(res *http.Response, body []byte) *APIError {
	e := &APIError{}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e.Code, e.Reason = "", http.StatusText(res.StatusCode)
	}
	e.Status = res.StatusCode
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func profilePath(userID, suffix string) string {
	return "/v1/profiles/" + url.PathEscape(userID) + suffix
}

// Identify identifies a scan, or a kind and value, for a purpose. A
// malformed identifier fails with IsInvalidIdentifier (APIError.Reason says
// why: bad_check_digit, bad_length, ...), a device id or a blocked value
// with IsBlockedIdentifier, an unknown purpose with IsUnknownPurpose.
func (c *Client) Identify(ctx context.Context, req IdentifyRequest) (agent.Identity, error) {
	var out agent.Identity
	err := c.send(ctx, "identify", http.MethodPost, "/v1/identify", req, http.StatusOK, &out)
	return out, err
}

// Capture records an event. A nil error means the event is durable on the
// device. A full outbox fails with IsOutboxFull: retry after
// APIError.RetryAfter, with the same MessageID so that the central counts
// the event once.
func (c *Client) Capture(ctx context.Context, req EventRequest) (agent.CaptureResult, error) {
	var out agent.CaptureResult
	err := c.send(ctx, "capture", http.MethodPost, "/v1/events", req, http.StatusAccepted, &out)
	return out, err
}

// Held returns what the store holds about userID and why. A profile the
// cache does not hold fails with IsUnknownProfile.
func (c *Client) Held(ctx context.Context, userID string) (agent.HeldData, error) {
	var out agent.HeldData
	err := c.send(ctx, "held", http.MethodGet, profilePath(userID, ""), nil, http.StatusOK, &out)
	return out, err
}

// SetConsent records a customer's decision for a purpose: granted, denied,
// withdrawn, or objected (an objection). It applies at once.
func (c *Client) SetConsent(ctx context.Context, userID string, req ConsentRequest) (agent.ConsentResult, error) {
	var out agent.ConsentResult
	err := c.send(ctx, "consent", http.MethodPost, profilePath(userID, "/consent"), req, http.StatusOK, &out)
	return out, err
}

// Rights requests erasure, restriction, its lifting, access or
// portability for userID. A nil error means it was carried out here and is
// queued, durably, for the central.
func (c *Client) Rights(ctx context.Context, userID string, req RightsRequest) error {
	return c.send(ctx, "rights", http.MethodPost, profilePath(userID, "/rights"), req, http.StatusAccepted, nil)
}

// Enrol enrols a new customer and returns the anonymous id the kiosk uses
// for them until the central knows them.
func (c *Client) Enrol(ctx context.Context, req EnrolRequest) (string, error) {
	var out EnrolResult
	err := c.send(ctx, "enrol", http.MethodPost, "/v1/enrol", req, http.StatusCreated, &out)
	return out.AnonymousID, err
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.send(ctx, "status", http.MethodGet, "/v1/status", nil, http.StatusOK, &out)
	return out, err
}
