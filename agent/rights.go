package agent

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// Right is a data subject's right exercised through the agent.
type Right string

// The rights a kiosk can request, and the kinds of central change that
// carry them out.
const (
	RightErase       Right = "erase"       // Art. 17
	RightRestrict    Right = "restrict"    // Art. 18
	RightUnrestrict  Right = "unrestrict"  // lifting a restriction
	RightAccess      Right = "access"      // Art. 15
	RightPortability Right = "portability" // Art. 20
	RightConsent     Right = "consent"     // Art. 7, a central consent change
)

// rightsRec is the record of a rights request kept without personal data:
// what, when, from where, and the central change that carried it out.
type rightsRec struct {
	V      uint8  `cbor:"0,keyasint"`
	Right  Right  `cbor:"1,keyasint"`
	At     int64  `cbor:"2,keyasint"`
	Source string `cbor:"3,keyasint"`
	Change uint64 `cbor:"4,keyasint,omitempty"`
}

// RightsRequest is a request made by a customer at a kiosk.
type RightsRequest struct {
	UserID string
	Right  Right
	Device string
}

// Request carries out a customer's request made in the store and forwards
// it to the central as a critical event of the rights purpose:
//
//   - erase: the slice, the identifiers, the consent state, the held events
//     and every identified queued event go at once; the file is compacted
//     within Config.CompactWithin;
//   - restrict / unrestrict: the profile is recognised but returns nothing
//     while restricted;
//   - access / portability: recorded and forwarded; Held shows the customer
//     what is here.
func (a *Agent) Request(ctx context.Context, req RightsRequest) error {
	if req.UserID == "" || len(req.UserID) > 128 {
		return badRequest("userId required, at most 128 characters")
	}
	names := map[Right]string{
		RightErase: "Erasure Requested", RightRestrict: "Restriction Requested", RightUnrestrict: "Restriction Lifted",
		RightAccess: "Access Requested", RightPortability: "Portability Requested",
	}
	name, ok := names[req.Right]
	if !ok {
		return badRequest("right must be erase, restrict, unrestrict, access or portability")
	}
	err := a.db.Update(func(tx *store.Tx) error {
		pk := a.pkey(req.UserID)
		if err := a.carryOut(tx, pk, req.Right, 0, consent.Local); err != nil {
			return err
		}
		return a.appendRights(tx, subjectAfter(req.Right, pk), a.rightsEvent(name, req.UserID, req.Device, nil))
	})
	if err != nil {
		return fmt.Errorf("rights request %s: %w", req.Right, err)
	}
	a.stats.RightsRequests.Add(1)
	return nil
}

// subjectAfter links a rights event to its subject, except after an
// erasure: the request must reach the central, but nothing left here may
// point back at the erased customer.
func subjectAfter(r Right, pk []byte) []byte {
	if r == RightErase {
		return nil
	}
	return pk
}

// carryOut applies a right to the profile pk in tx and records it.
func (a *Agent) carryOut(tx *store.Tx, pk []byte, r Right, change uint64, src consent.Source) error {
	c := a.live(tx)
	rec, err := c.get(pk)
	if err != nil {
		return err
	}
	switch r {
	case RightErase:
		if err := a.erase(c, pk, rec); err != nil {
			return err
		}
	case RightRestrict, RightUnrestrict:
		if rec != nil {
			old := *rec
			rec.Restricted = r == RightRestrict
			if err := c.put(pk, rec, &old); err != nil {
				return err
			}
		}
	}
	return a.record(tx, rightsRec{V: 1, Right: r, At: a.now(), Source: string(src), Change: change})
}

// erase removes everything the cache and the outbox hold about pk.
func (a *Agent) erase(c *cache, pk []byte, rec *profileRec) error {
	if rec != nil {
		if err := c.del(pk, rec); err != nil {
			return err
		}
	}
	held, err := heldFor(c.tx, pk)
	if err != nil {
		return err
	}
	for _, h := range held {
		if err := c.tx.Bucket(store.BucketPending).Delete(h.key); err != nil {
			return err
		}
	}
	seqs, err := c.tx.OutboxBySubject(pk)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if err := c.tx.DeleteOutbox(seq); err != nil {
			return err
		}
	}
	a.stats.Erasures.Add(1)
	return c.tx.MarkForCompaction()
}

// record keeps a rights record and an audit line, neither with personal data.
func (a *Agent) record(tx *store.Tx, r rightsRec) error {
	b, err := store.MarshalRecord(r)
	if err != nil {
		return err
	}
	bk := tx.Bucket(store.BucketRights)
	seq, err := bk.NextSequence()
	if err != nil {
		return err
	}
	if err := bk.Put(binary.BigEndian.AppendUint64(nil, seq), b); err != nil {
		return err
	}
	fields := map[string]string{"source": r.Source}
	if r.Change > 0 {
		fields["change"] = strconv.FormatUint(r.Change, 10)
	}
	return tx.Audit("rights."+string(r.Right), fields)
}

// HeldData is everything the store holds about one customer, for the
// preference centre: the customer's own data, shown to the customer.
type HeldData struct {
	UserID      string        `json:"userId"`
	Local       bool          `json:"local"` // made here, not yet known to the central
	Restricted  bool          `json:"restricted"`
	Attributes  []HeldAttr    `json:"attributes"`
	Consent     []HeldConsent `json:"consent"`
	Identifiers int           `json:"identifiers"` // kept only as keyed hashes: the count is all there is to show
	Queued      int           `json:"queuedEvents"`
	HeldEvents  int           `json:"heldEvents"`
	Expires     int64         `json:"expires,omitempty"`
}

// HeldAttr is an attribute with why it is held.
type HeldAttr struct {
	Attribute
	Basis consent.Basis `json:"basis"`
}

// HeldConsent is a purpose with its basis and the customer's decision.
type HeldConsent struct {
	Purpose   string        `json:"purpose"`
	Basis     consent.Basis `json:"basis"`
	Status    string        `json:"status,omitempty"`
	At        int64         `json:"at,omitempty"`
	Source    string        `json:"source,omitempty"`
	Permitted bool          `json:"permitted"`
}

// Held returns what is held about userID. It fails with ErrUnknownProfile
// when the cache holds nothing.
func (a *Agent) Held(ctx context.Context, userID string) (HeldData, error) {
	var out HeldData
	err := a.db.View(func(tx *store.Tx) error {
		pk := a.pkey(userID)
		rec, err := a.live(tx).get(pk)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("held data: %w", ErrUnknownProfile)
		}
		out = a.held(rec)
		seqs, err := tx.OutboxBySubject(pk)
		out.Queued = len(seqs)
		if err != nil {
			return err
		}
		h, err := heldFor(tx, pk)
		out.HeldEvents = len(h)
		return err
	})
	return out, err
}

func (a *Agent) held(rec *profileRec) HeldData {
	pol, s := a.Policy(), rec.subject()
	out := HeldData{UserID: rec.ID, Local: rec.Local, Restricted: rec.Restricted, Identifiers: len(rec.Idents), Expires: rec.Expires, Attributes: []HeldAttr{}}
	for _, at := range rec.Attrs {
		b, _ := pol.Basis(at.Purpose)
		out.Attributes = append(out.Attributes, HeldAttr{Attribute: at, Basis: b})
	}
	for _, pu := range pol.Purposes {
		e := rec.Consent[pu.Name]
		out.Consent = append(out.Consent, HeldConsent{
			Purpose: pu.Name, Basis: pu.Basis, Status: string(e.Status), At: e.At, Source: string(e.Source),
			Permitted: pol.Permitted(pu.Name, s),
		})
	}
	return out
}

// EnrollRequest enrols a new customer at a kiosk: an identifier, what they
// typed in, and no decision yet.
type EnrollRequest struct {
	Scan    string // or Kind/Value as in IdentifyRequest
	Kind    ident.Kind
	Value   string
	Traits  map[string]any // what the customer typed in (name, e-mail)
	Device  string
	Purpose string // the consent-based purpose the enrolment asks for
}

// Enroll makes a local profile for a new customer whose consent for the
// enrolment's purpose is pending. What they typed in is not cached: it
// travels in an identify event that is held, with every later event of the
// purpose, until they decide (SetConsent): sent with identity if they grant,
// stripped if they refuse, stripped after Config.PendingMaxAge if they never
// say. It returns the anonymous id the kiosk uses until the central knows
// them.
func (a *Agent) Enroll(ctx context.Context, req EnrollRequest) (string, error) {
	id, err := a.parseIdentifier(IdentifyRequest{Scan: req.Scan, Kind: req.Kind, Value: req.Value})
	if err != nil {
		return "", err
	}
	if b, ok := a.Policy().Basis(req.Purpose); !ok || b != consent.BasisConsent {
		return "", fmt.Errorf("enrol for purpose %q (needs a consent-based purpose): %w", req.Purpose, ErrUnknownPurpose)
	}
	hash := a.hasher.Sum(id)
	anon := event.NewID()
	pk := a.pkey(anon)
	ev := &event.Event{
		MessageID: event.NewID(), Type: event.Identify, AnonymousID: anon, OriginalTimestamp: a.now(),
		Traits:  mergeTraits(req.Traits, hash, id.Kind),
		Context: a.context(req.Device, req.Purpose, nil),
	}
	held, err := a.heldRecord(store.Critical, req.Purpose, ev)
	if err != nil {
		return "", err
	}
	err = a.db.Update(func(tx *store.Tx) error {
		c := a.live(tx)
		if known, err := c.lookup(hash[:]); err != nil || known != nil {
			return errors.Join(err, ErrAlreadyEnrolled)
		}
		rec := &profileRec{
			ID: anon, Local: true, Provisional: true, Expires: a.now() + a.cfg.LocalTTL.Milliseconds(),
			Idents:  [][]byte{hash[:]},
			Consent: map[string]consent.Entry{req.Purpose: {Status: consent.Pending, At: a.now(), Source: consent.Local}},
		}
		if err := c.put(pk, rec, nil); err != nil {
			return err
		}
		return putHeld(tx, pk, held)
	})
	if err != nil {
		return "", fmt.Errorf("enrol: %w", err)
	}
	a.stats.Enrolments.Add(1)
	return anon, nil
}

func mergeTraits(t map[string]any, hash [32]byte, kind ident.Kind) map[string]any {
	out := maps.Clone(t)
	if out == nil {
		out = map[string]any{}
	}
	out["identHash"] = base64.RawURLEncoding.EncodeToString(hash[:])
	out["identKind"] = string(kind)
	return out
}
