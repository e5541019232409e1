package agent

import (
	"context"
	"fmt"
	"maps"
	"regexp"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// CaptureRequest is an event a device reports.
type CaptureRequest struct {
	// MessageID, if set, is the device's own UUID for the event, so that a
	// retry after a timeout is recognised by the central as the same event.
	MessageID   string
	Type        string // track (default) or identify
	Event       string // the track event's name, e.g. "Order Completed"
	UserID      string // a known customer, from Identify
	AnonymousID string // an unknown customer, from Identify
	Device      string // the device that saw it
	Timestamp   int64  // ms since the epoch, device clock; 0 means now
	Properties  map[string]any
	Traits      map[string]any
	// Purpose is used for an event the policy does not map; the policy's
	// mapping wins otherwise.
	Purpose string
}

// Outcome says what Capture did with an event.
type Outcome string

// Outcomes of Capture.
const (
	OutcomeQueued     Outcome = "queued"      // durable in the outbox, with identity
	OutcomeAnonymised Outcome = "anonymised"  // durable in the outbox, identity stripped
	OutcomeHeld       Outcome = "held"        // durable, held until the customer decides on consent
	OutcomeDropped    Outcome = "dropped"     // the policy drops this purpose's events without consent
	OutcomeAnonymous  Outcome = "queued_anon" // durable, there was no identity to begin with
)

// CaptureResult says what happened, once it is durable.
type CaptureResult struct {
	MessageID string  `json:"messageId"`
	Seq       uint64  `json:"seq,omitempty"`
	Outcome   Outcome `json:"outcome"`
	Purpose   string  `json:"purpose"`
}

var eventName = regexp.MustCompile(`^[\pL\pN _.:/-]{1,128}$`)

// reserved are the events only the agent makes: a device may not forge a
// consent change or a rights receipt.
var reserved = map[string]bool{
	"Consent Updated": true, "Rights Request Applied": true, "Erasure Requested": true,
	"Restriction Requested": true, "Restriction Lifted": true, "Access Requested": true, "Portability Requested": true,
}

func (r *CaptureRequest) validate() error {
	switch {
	case r.Type != event.Track && r.Type != event.Identify:
		return badRequest("type must be track or identify")
	case r.Type == event.Track && !eventName.MatchString(r.Event):
		return badRequest("event must be 1-128 letters, digits, spaces or _ . : / -")
	case reserved[r.Event]:
		return badRequest("this event name is reserved for the agent's own records")
	case r.MessageID != "" && !event.ValidID(r.MessageID):
		return badRequest("messageId must be a UUIDv7 in lower-case canonical form")
	case len(r.UserID) > 128 || len(r.AnonymousID) > 128:
		return badRequest("userId or anonymousId over 128 characters")
	case r.Device != "" && !event.ValidName(r.Device):
		return badRequest("device must be 1-64 of A-Z a-z 0-9 _ -")
	case r.Timestamp < 0:
		return badRequest("timestamp must be ms since the epoch")
	case event.CheckValues(r.Properties, r.Traits) != nil:
		return badRequest("a property or trait is too deep, too wide, or not a JSON value")
	}
	return nil
}

// Capture builds a Segment-compatible event, checks its purpose against the
// customer's decisions, and makes it durable. It returns only once the event
// is fsynced (or held, durably), so a device may be told OK.
//
//  1. Not permitted: identity is stripped (or the event dropped, if the
//     purpose says so); a customer still deciding has the event held.
//  2. A full outbox fails with an error matching store.ErrOutboxFull.
//  3. An event over 32 KiB fails with event.ErrTooLarge.
func (a *Agent) Capture(ctx context.Context, req CaptureRequest) (CaptureResult, error) {
	if req.Type == "" {
		req.Type = event.Track
	}
	if err := req.validate(); err != nil {
		return CaptureResult{}, err
	}
	pol := a.Policy()
	purpose := a.purposeOf(pol, req)
	pu, ok := pol.Purpose(purpose)
	if !ok {
		return CaptureResult{}, fmt.Errorf("capture %q: purpose %q: %w", req.Event, purpose, ErrUnknownPurpose)
	}
	if req.UserID == "" && req.AnonymousID == "" {
		req.AnonymousID = event.NewID() // every event names someone, if only a passer-by
	}
	ev := a.newEvent(req, purpose)
	res := CaptureResult{MessageID: ev.MessageID, Purpose: purpose}
	class := store.Telemetry
	if a.critical(req.Event) {
		class = store.Critical
	}
	if req.UserID == "" {
		ev.Context.Consent.CategoryPreferences = pol.Preferences(consent.Subject{})
		res.Outcome = OutcomeAnonymous
		return a.queue(ctx, res, class, nil, ev)
	}
	rec, pk, err := a.profileOf(req.UserID)
	if err != nil {
		return CaptureResult{}, err
	}
	subj := consent.Subject{}
	if rec != nil {
		subj = rec.subject()
	}
	ev.Context.Consent.CategoryPreferences = pol.Preferences(subj)
	switch {
	case pol.Permitted(purpose, subj):
		res.Outcome = OutcomeQueued
		return a.queue(ctx, res, class, pk, ev)
	case rec != nil && rec.Provisional && subj.Decisions[purpose].Status == consent.Pending:
		res.Outcome = OutcomeHeld
		return res, a.hold(pk, class, purpose, ev)
	case pu.Drop:
		a.stats.CaptureDropped.Add(1)
		res.Outcome = OutcomeDropped
		return res, nil
	}
	ev.Strip(a.cfg.Identifying)
	res.Outcome = OutcomeAnonymised
	return a.queue(ctx, res, class, nil, ev)
}

func (a *Agent) purposeOf(pol *consent.Policy, req CaptureRequest) string {
	if req.Type == event.Identify {
		return pol.Default
	}
	if p, ok := pol.Events[req.Event]; ok {
		return p
	}
	if req.Purpose != "" {
		return req.Purpose
	}
	return pol.Default
}

func (a *Agent) newEvent(req CaptureRequest, purpose string) *event.Event {
	id := req.MessageID
	if id == "" {
		id = event.NewID()
	}
	ts := req.Timestamp
	if ts == 0 {
		ts = a.now()
	}
	return &event.Event{
		MessageID: id, Type: req.Type, Event: req.Event,
		UserID: req.UserID, AnonymousID: req.AnonymousID, OriginalTimestamp: ts,
		Properties: maps.Clone(req.Properties), Traits: maps.Clone(req.Traits),
		Context: a.context(req.Device, purpose, nil),
	}
}

// profileOf reads the cached record of a central or local id.
func (a *Agent) profileOf(id string) (*profileRec, []byte, error) {
	pk := a.pkey(id)
	var rec *profileRec
	err := a.db.View(func(tx *store.Tx) error {
		var err error
		rec, err = a.live(tx).get(pk)
		return err
	})
	return rec, pk, err
}

// queue appends the event through the store's group commit.
func (a *Agent) queue(ctx context.Context, res CaptureResult, class store.Class, subject []byte, ev *event.Event) (CaptureResult, error) {
	b, err := ev.Encode()
	if err != nil {
		return CaptureResult{}, err
	}
	seq, err := a.db.Append(ctx, store.Entry{Class: class, At: ev.OriginalTimestamp, Subject: subject, Label: ev.Context.Purpose, Payload: b})
	if err != nil {
		a.stats.CaptureRefused.Add(1)
		return CaptureResult{}, fmt.Errorf("capture: %w", err)
	}
	a.stats.countOutcome(res.Outcome)
	res.Seq = seq
	return res, nil
}
