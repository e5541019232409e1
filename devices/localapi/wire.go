package localapi

import (
	"context"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
)

// Backend is the subset of *agent.Agent the local API serves.
type Backend interface {
	Identify(ctx context.Context, req agent.IdentifyRequest) (agent.Identity, error)
	Capture(ctx context.Context, req agent.CaptureRequest) (agent.CaptureResult, error)
	SetConsent(ctx context.Context, req agent.ConsentRequest) (agent.ConsentResult, error)
	Request(ctx context.Context, req agent.RightsRequest) error
	Held(ctx context.Context, userID string) (agent.HeldData, error)
	Enroll(ctx context.Context, req agent.EnrollRequest) (string, error)
}

// StatusSource is what the daemon gives GET /v1/status: a snapshot of its
// state, without personal data.
type StatusSource interface {
	Status(ctx context.Context) (Status, error)
}

// The request bodies. Field names on the wire are the JSON tags; a field
// without omitempty is required. openapi.yaml documents each.

// IdentifyRequest is the body of POST /v1/identify: a scan, or a kind and a
// value, and the purpose the answer serves.
type IdentifyRequest struct {
	Scan    string `json:"scan,omitempty"`  // a scanner's payload; or
	Kind    string `json:"kind,omitempty"`  // loyalty, email, phone or app, with
	Value   string `json:"value,omitempty"` // the identifier as typed
	Purpose string `json:"purpose"`
	Device  string `json:"device"` // the asking device's id
}

func (r *IdentifyRequest) agent() agent.IdentifyRequest {
	return agent.IdentifyRequest{Scan: r.Scan, Kind: ident.Kind(r.Kind), Value: r.Value, Purpose: r.Purpose, Device: r.Device}
}

// EventRequest is the body of POST /v1/events: a Segment-style event.
type EventRequest struct {
	MessageID   string         `json:"messageId,omitempty"` // the device's UUID, for idempotent retries
	Type        string         `json:"type,omitempty"`      // track (default) or identify
	Event       string         `json:"event,omitempty"`     // a track event's name
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	Device      string         `json:"device"`
	Timestamp   int64          `json:"timestamp,omitempty"` // ms since the epoch; 0 means now
	Properties  map[string]any `json:"properties,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Purpose     string         `json:"purpose,omitempty"` // for an event the policy does not map
}

func (r *EventRequest) agent() agent.CaptureRequest {
	return agent.CaptureRequest{
		MessageID: r.MessageID, Type: r.Type, Event: r.Event, UserID: r.UserID, AnonymousID: r.AnonymousID,
		Device: r.Device, Timestamp: r.Timestamp, Properties: r.Properties, Traits: r.Traits, Purpose: r.Purpose,
	}
}

// ConsentRequest is the body of POST /v1/profiles/{userId}/consent: a
// customer's decision for one purpose. Objecting is Status "objected".
type ConsentRequest struct {
	Purpose string `json:"purpose"`
	Status  string `json:"status"` // granted, denied, withdrawn or objected
	Device  string `json:"device"`
}

func (r *ConsentRequest) agent(userID string) agent.ConsentRequest {
	return agent.ConsentRequest{UserID: userID, Purpose: r.Purpose, Status: consent.Status(r.Status), Device: r.Device}
}

// RightsRequest is the body of POST /v1/profiles/{userId}/rights.
type RightsRequest struct {
	Right  string `json:"right"` // erase, restrict, unrestrict, access or portability
	Device string `json:"device"`
}

func (r *RightsRequest) agent(userID string) agent.RightsRequest {
	return agent.RightsRequest{UserID: userID, Right: agent.Right(r.Right), Device: r.Device}
}

// RightsResult is the body of a 202 to a rights request: the request is
// recorded, carried out here and queued for the central.
type RightsResult struct {
	Right string `json:"right"`
}

// EnrolRequest is the body of POST /v1/enrol: a new customer at a kiosk,
// their identifier, what they typed in, and the consent-based purpose the
// enrolment asks for.
type EnrolRequest struct {
	Scan    string         `json:"scan,omitempty"`
	Kind    string         `json:"kind,omitempty"`
	Value   string         `json:"value,omitempty"`
	Traits  map[string]any `json:"traits,omitempty"`
	Purpose string         `json:"purpose"`
	Device  string         `json:"device"`
}

func (r *EnrolRequest) agent() agent.EnrollRequest {
	return agent.EnrollRequest{Scan: r.Scan, Kind: ident.Kind(r.Kind), Value: r.Value, Traits: r.Traits, Purpose: r.Purpose, Device: r.Device}
}

// EnrolResult is the body of a 201 to an enrolment: the anonymous id the
// kiosk uses for the customer until the central knows them.
type EnrolResult struct {
	AnonymousID string `json:"anonymousId"`
}
