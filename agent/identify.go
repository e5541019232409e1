package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// IdentifyRequest is a scan or a typed identifier, and the purpose the
// asking device serves.
type IdentifyRequest struct {
	// Scan is a scanner's payload (digits, a QR form, an app token). When
	// empty, Kind and Value are used.
	Scan  string
	Kind  ident.Kind
	Value string

	Purpose string // what the answer will be used for
	Device  string // the asking device, for the identify event
}

// Identity is the answer to Identify: who, and only what the purpose may
// see.
type Identity struct {
	Known       bool   `json:"known"`
	UserID      string `json:"userId,omitempty"`      // the central's id of a known customer
	AnonymousID string `json:"anonymousId,omitempty"` // a stable pseudonym for an unknown identifier
	Purpose     string `json:"purpose"`
	// Permitted says whether the purpose may process this customer at all.
	Permitted bool `json:"permitted"`
	// Restricted profiles (Art. 18) are recognised but return nothing.
	Restricted bool `json:"restricted,omitempty"`
	// Pending: a new customer's consent is not decided yet.
	Pending    bool            `json:"pending,omitempty"`
	Attributes []Attribute     `json:"attributes"`
	Consent    map[string]bool `json:"consent"` // purpose -> permitted (Segment categoryPreferences)
}

// Identify normalises and validates the identifier, looks up its keyed hash
// and returns the profile slice filtered to the attributes purpose may see.
// It never writes to disk and never waits on the network.
//
//  1. A malformed identifier fails with an error matching ident.ErrInvalid
//     (the reason is in ident.ReasonOf), a blocked one (a device id, all
//     zeros, "anonymous") with ident.ErrBlocked; neither is looked up.
//  2. An unknown customer gets a stable anonymous id derived from the
//     identifier's keyed hash, and an identify event is queued (telemetry).
func (a *Agent) Identify(ctx context.Context, req IdentifyRequest) (Identity, error) {
	if a.cfg.ObserveIdentify == nil {
		return a.identify(ctx, req)
	}
	start := time.Now()
	out, err := a.identify(ctx, req)
	a.cfg.ObserveIdentify(time.Since(start))
	return out, err
}

func (a *Agent) identify(ctx context.Context, req IdentifyRequest) (Identity, error) {
	pol := a.Policy()
	if _, ok := pol.Basis(req.Purpose); !ok {
		return Identity{}, fmt.Errorf("identify for purpose %q: %w", req.Purpose, ErrUnknownPurpose)
	}
	id, err := a.parseIdentifier(req)
	if err != nil {
		a.stats.rejectIdentify(err)
		return Identity{}, err
	}
	hash := a.hasher.Sum(id)
	var view profileView
	var known bool
	err = a.db.View(func(tx *store.Tx) error {
		var err error
		known, err = a.live(tx).view(hash[:], pol, req.Purpose, &view)
		return err
	})
	if err != nil {
		return Identity{}, fmt.Errorf("identify: %w", err)
	}
	if !known {
		a.stats.IdentifyUnknown.Add(1)
		return a.unknown(pol, req, id.Kind, hash), nil
	}
	a.stats.IdentifyKnown.Add(1)
	return a.answer(pol, &view, req.Purpose), nil
}

func (a *Agent) parseIdentifier(req IdentifyRequest) (ident.ID, error) {
	if req.Scan != "" {
		return a.cfg.Ident.ParseScan(req.Scan)
	}
	return a.cfg.Ident.Normalize(req.Kind, req.Value)
}

// answer filters a known profile, read for purpose, for purpose.
func (a *Agent) answer(pol *consent.Policy, rec *profileView, purpose string) Identity {
	out := Identity{
		Known:      true,
		UserID:     rec.ID,
		Purpose:    purpose,
		Permitted:  rec.permitted(pol, purpose),
		Restricted: rec.Restricted,
		Pending:    rec.Provisional,
		Consent:    rec.preferences(pol),
		Attributes: []Attribute{},
	}
	if rec.Local {
		out.UserID, out.AnonymousID = "", rec.ID
	}
	if !out.Permitted {
		return out
	}
	if len(rec.Attrs) > 0 {
		out.Attributes = rec.Attrs
	}
	return out
}

// unknown answers for an identifier the cache does not know, and queues an
// identify event carrying the identifier's keyed hash so the central can
// alias the anonymous id to its profile.
func (a *Agent) unknown(pol *consent.Policy, req IdentifyRequest, kind ident.Kind, hash [32]byte) Identity {
	anon := a.anonymousID(hash)
	ev := &event.Event{
		MessageID:         event.NewID(),
		Type:              event.Identify,
		AnonymousID:       anon,
		OriginalTimestamp: a.now(),
		Traits:            mergeTraits(nil, hash, kind),
		Context:           a.context(req.Device, req.Purpose, pol.Preferences(consent.Subject{})),
	}
	if b, err := ev.Encode(); err == nil {
		select {
		case a.identifies <- b:
		default:
			a.stats.IdentifyEventsDropped.Add(1) // telemetry: shed, as a full outbox would
		}
	}
	return Identity{AnonymousID: anon, Purpose: req.Purpose, Attributes: []Attribute{}, Consent: pol.Preferences(consent.Subject{})}
}

// anonymousID is a stable pseudonym of an identifier hash: the same card
// gets the same anonymous id without anything being stored, and nobody
// without the tenant key can link it to the card.
func (a *Agent) anonymousID(hash [32]byte) string {
	d := a.hasher.Derive("anon", hash[:])
	d[6] = 0x80 | d[6]&0x0f // UUID version 8: custom
	d[8] = 0x80 | d[8]&0x3f
	return fmt.Sprintf("%x-%x-%x-%x-%x", d[0:4], d[4:6], d[6:8], d[8:10], d[10:16])
}

// context is an event's context. An event the agent makes itself (a
// receipt, an identify of an unknown scan without a device) names the agent
// as its device: the wire requires one, and it is never a customer.
func (a *Agent) context(device, purpose string, prefs map[string]bool) event.Context {
	if device == "" {
		device = a.cfg.AgentID
	}
	return event.Context{
		Store: a.cfg.StoreID, Agent: a.cfg.AgentID, Device: device, Purpose: purpose,
		Consent: event.Consent{CategoryPreferences: prefs},
	}
}
