package bus

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
)

// beaconSighted is the track event a sighting becomes.
const beaconSighted = "Beacon Sighted"

// identifyReply is the answer on .../identify/reply: who, and what the
// device's purpose may see. Its fields are chosen here, one by one, so that
// a field added to agent.Identity does not reach devices unseen.
type identifyReply struct {
	RequestID   string            `json:"requestId"`
	Known       bool              `json:"known"`
	UserID      string            `json:"userId,omitempty"`
	AnonymousID string            `json:"anonymousId,omitempty"`
	Purpose     string            `json:"purpose"`
	Permitted   bool              `json:"permitted"`
	Restricted  bool              `json:"restricted,omitempty"`
	Pending     bool              `json:"pending,omitempty"`
	Attributes  []agent.Attribute `json:"attributes"`
	Consent     map[string]bool   `json:"consent"`
}

// eventAck is the answer on .../events/ack, sent once the event is durable.
type eventAck struct {
	RequestID string        `json:"requestId,omitempty"`
	MessageID string        `json:"messageId"`
	Outcome   agent.Outcome `json:"outcome"`
}

// consentAck is the answer on .../consent/ack, sent once the decision is
// durable.
type consentAck struct {
	RequestID string `json:"requestId"`
	Applied   bool   `json:"applied"`
	Stripped  int    `json:"stripped"`
	Purged    int    `json:"purged"`
}

// errorReply is the answer to a refused request, on the same reply topic.
type errorReply struct {
	RequestID string    `json:"requestId,omitempty"`
	Error     errorBody `json:"error"`
}

type errorBody struct {
	Code   Code   `json:"code"`
	Reason string `json:"reason"`
}

// answer handles one request and returns the answer's payload (nil when
// there is none to send) and, for a refused request, why.
func (b *Bus) answer(ctx context.Context, m message) ([]byte, *rejection) {
	d, ok := b.devices[m.device]
	var (
		v   any
		sh  shape
		err error
	)
	switch {
	case !ok:
		err = reject(CodeUnknownDevice, "the device is not configured on this agent")
	case !d.Kind.may(m.kind):
		err = reject(CodeNotAllowed, "a %s may not publish %s", d.Kind, m.kind)
	case m.payload == nil && m.size > MaxPayload:
		err = reject(CodeTooLarge, "payload over %d bytes", MaxPayload)
	case m.kind == topicSightings:
		err = b.sighting(ctx, d, m.payload)
	case m.kind == topicIdentify:
		v, sh, err = b.identify(ctx, d, m.payload)
	case m.kind == topicEvents:
		v, sh, err = b.event(ctx, d, m.payload)
	case m.kind == topicConsent:
		v, sh, err = b.consent(ctx, d, m.payload)
	}
	if err == nil {
		return marshal(v), nil
	}
	rej, ok := errors.AsType[*rejection](err)
	if !ok {
		var internal bool
		if rej, internal = fromAgent(err); internal {
			b.log.Warn("agent failed", "device", m.device, "topic", m.kind.String(), "err", err)
		}
	}
	return marshal(errorReply{RequestID: sh.requestID, Error: errorBody{rej.code, rej.reason}}), rej
}

func marshal(v any) []byte {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only an attribute value of the agent could fail to encode; the
		// device gets an error rather than nothing.
		b, _ = json.Marshal(errorReply{Error: errorBody{CodeInternal, "answer not encodable"}})
	}
	return b
}

// sighting records a beacon sighting as a telemetry event of the device,
// without a customer: a sighting names no one, and a beacon shared by every
// shopper must never tie two of them together.
func (b *Bus) sighting(ctx context.Context, d *device, payload []byte) error {
	s, _, err := decodeSighting(payload)
	if err != nil {
		return err
	}
	props := map[string]any{"rssi": int64(s.RSSI)}
	if s.BeaconID != "" {
		props["beaconId"] = s.BeaconID
	}
	_, err = b.core.Capture(ctx, agent.CaptureRequest{
		Type: event.Track, Event: beaconSighted, AnonymousID: s.AnonymousID,
		Device: d.ID, Timestamp: s.At, Properties: props, Purpose: d.Purpose,
	})
	return err
}

// identify asks the agent for the customer, for the device's purpose only.
func (b *Bus) identify(ctx context.Context, d *device, payload []byte) (any, shape, error) {
	r, sh, err := decodeIdentify(payload)
	if err != nil {
		return nil, sh, err
	}
	id, err := b.core.Identify(ctx, agent.IdentifyRequest{
		Scan: r.Scan, Kind: ident.Kind(r.Kind), Value: r.Value,
		Purpose: d.Purpose, Device: d.ID,
	})
	if err != nil {
		return nil, sh, err
	}
	return identifyReply{
		RequestID: r.RequestID, Known: id.Known, UserID: id.UserID, AnonymousID: id.AnonymousID,
		Purpose: id.Purpose, Permitted: id.Permitted, Restricted: id.Restricted, Pending: id.Pending,
		Attributes: nonNil(id.Attributes), Consent: id.Consent,
	}, sh, nil
}

// event records a kiosk's event; Capture returns once it is durable.
func (b *Bus) event(ctx context.Context, d *device, payload []byte) (any, shape, error) {
	r, sh, err := decodeEvent(payload)
	if err != nil {
		return nil, sh, err
	}
	res, err := b.core.Capture(ctx, agent.CaptureRequest{
		MessageID: r.MessageID, Type: r.Type, Event: r.Event,
		UserID: r.UserID, AnonymousID: r.AnonymousID, Device: d.ID,
		Timestamp: r.Timestamp, Properties: r.Properties, Traits: r.Traits,
		Purpose: d.Purpose,
	})
	if err != nil {
		return nil, sh, err
	}
	return eventAck{RequestID: r.RequestID, MessageID: res.MessageID, Outcome: res.Outcome}, sh, nil
}

// consent records a customer's decision made at a kiosk; SetConsent
// returns once it is durable and applied.
func (b *Bus) consent(ctx context.Context, d *device, payload []byte) (any, shape, error) {
	r, sh, err := decodeConsent(payload)
	if err != nil {
		return nil, sh, err
	}
	res, err := b.core.SetConsent(ctx, agent.ConsentRequest{
		UserID: r.UserID, Purpose: r.Purpose, Status: consent.Status(r.Status), At: r.At, Device: d.ID,
	})
	if err != nil {
		return nil, sh, err
	}
	return consentAck{RequestID: r.RequestID, Applied: res.Applied, Stripped: res.Stripped, Purged: res.Purged}, sh, nil
}

func nonNil(a []agent.Attribute) []agent.Attribute {
	if a == nil {
		return []agent.Attribute{}
	}
	return a
}
