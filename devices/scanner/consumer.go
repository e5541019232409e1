package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
)

// Use says what a port's scans are for.
type Use string

// Uses of a scan.
const (
	// UseIdentify identifies the customer for the port's purpose.
	UseIdentify Use = "identify"
	// UseEvent records a track event carrying the code: for codes that are
	// not customers' (coupons, products). A code that reads as a customer
	// identifier is refused, never recorded in the clear.
	UseEvent Use = "event"
)

// Backend is the subset of the agent core a consumer needs.
type Backend interface {
	Identify(ctx context.Context, req agent.IdentifyRequest) (agent.Identity, error)
	Capture(ctx context.Context, req agent.CaptureRequest) (agent.CaptureResult, error)
}

// ConsumerConfig says what to do with a port's scans.
type ConsumerConfig struct {
	Use     Use
	Purpose string // UseIdentify: the purpose the answer serves
	Event   string // UseEvent: the track event's name
	Device  string // the device the scanner belongs to (a till, a kiosk)
	Rules   ident.Rules
}

// Validate checks the consumer's keys.
func (c ConsumerConfig) Validate(name string) error {
	switch c.Use {
	case UseIdentify:
		if c.Purpose == "" {
			return fmt.Errorf("scanner %q: purpose is required when use is identify", name)
		}
	case UseEvent:
		if c.Event == "" {
			return fmt.Errorf("scanner %q: event is required when use is event", name)
		}
	default:
		return fmt.Errorf("scanner %q: use %q is not identify or event", name, c.Use)
	}
	return nil
}

// Result is what became of the last good scan of a port, as the POS or a
// technician may ask for it. It holds ids the agent hands out, never the
// scanned code.
type Result struct {
	At          int64  `json:"at"`
	Symbology   string `json:"symbology,omitempty"`
	Outcome     string `json:"outcome"` // known, unknown, invalid, blocked, recorded, refused, error
	Reason      string `json:"reason,omitempty"`
	UserID      string `json:"userId,omitempty"`
	AnonymousID string `json:"anonymousId,omitempty"`
	Permitted   bool   `json:"permitted,omitempty"`
}

// Consumer hands a port's scans to the agent and keeps the last result.
type Consumer struct {
	cfg ConsumerConfig
	be  Backend
	log *slog.Logger

	mu   sync.Mutex // guards last
	last Result
}

// NewConsumer makes the Handler of one port.
func NewConsumer(cfg ConsumerConfig, be Backend, log *slog.Logger) *Consumer {
	return &Consumer{cfg: cfg, be: be, log: log.With("component", "scanner")}
}

// Last returns the result of the port's last good scan.
func (c *Consumer) Last() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// HandleScan implements Handler.
func (c *Consumer) HandleScan(ctx context.Context, s Scan) {
	r := Result{At: s.UnixMilli, Symbology: s.Symbology.Name}
	switch c.cfg.Use {
	case UseIdentify:
		c.identify(ctx, s, &r)
	case UseEvent:
		c.record(ctx, s, &r)
	}
	c.log.Info("scan handled", "port", s.Port, "symbology", s.Symbology.Name, "outcome", r.Outcome, "reason", r.Reason)
	c.mu.Lock()
	c.last = r
	c.mu.Unlock()
}

func (c *Consumer) identify(ctx context.Context, s Scan, r *Result) {
	id, err := c.be.Identify(ctx, agent.IdentifyRequest{Scan: s.Code, Purpose: c.cfg.Purpose, Device: c.cfg.Device})
	switch {
	case errors.Is(err, ident.ErrBlocked):
		r.Outcome, r.Reason = "blocked", string(ident.ReasonBlocked)
	case errors.Is(err, ident.ErrInvalid):
		r.Outcome, r.Reason = "invalid", string(ident.ReasonOf(err))
	case err != nil:
		r.Outcome, r.Reason = "error", "see the agent's log"
		c.log.Warn("identify from scan", "port", s.Port, "err", err)
	case id.Known:
		r.Outcome, r.UserID, r.AnonymousID, r.Permitted = "known", id.UserID, id.AnonymousID, id.Permitted
	default:
		r.Outcome, r.AnonymousID = "unknown", id.AnonymousID
	}
}

func (c *Consumer) record(ctx context.Context, s Scan, r *Result) {
	if _, err := c.cfg.Rules.ParseScan(s.Code); err == nil || errors.Is(err, ident.ErrBlocked) {
		r.Outcome, r.Reason = "refused", "the code reads as a customer identifier"
		return
	}
	props := map[string]any{"code": s.Code, "symbology": s.Symbology.Name, "port": s.Port}
	_, err := c.be.Capture(ctx, agent.CaptureRequest{Event: c.cfg.Event, Device: c.cfg.Device, Timestamp: s.UnixMilli, Properties: props})
	if err != nil {
		r.Outcome, r.Reason = "error", "see the agent's log"
		c.log.Warn("record scan", "port", s.Port, "err", err)
		return
	}
	r.Outcome = "recorded"
}
