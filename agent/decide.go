package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// ConsentRequest is a customer's decision made in the store (a kiosk, a
// cashier).
type ConsentRequest struct {
	UserID  string         // or the anonymous id of a customer enrolled here
	Purpose string         // a purpose of the policy
	Status  consent.Status // granted, denied, withdrawn or objected
	At      int64          // ms since the epoch; 0 means now
	Device  string
}

// ConsentResult says whether the decision took effect.
type ConsentResult struct {
	Applied bool `json:"applied"` // false: a newer decision was already on record
	// Stripped counts queued events that lost their identity.
	Stripped int `json:"stripped"`
	// Purged counts cached attributes removed.
	Purged int `json:"purged"`
}

// SetConsent records a local decision and applies it at once, in one
// transaction: the decision, the purge of the attributes it no longer
// permits, the stripping of queued events of that purpose, the release of
// held events, and a critical "Consent Updated" event for the central.
// A customer the cache does not hold gets a local record that carries the
// decision until the central refreshes it.
func (a *Agent) SetConsent(ctx context.Context, req ConsentRequest) (ConsentResult, error) {
	if req.At == 0 {
		req.At = a.now()
	}
	entry := consent.Entry{Status: req.Status, At: req.At, Source: consent.Local}
	if err := a.checkDecision(req.UserID, req.Purpose, entry); err != nil {
		return ConsentResult{}, err
	}
	var res ConsentResult
	err := a.db.Update(func(tx *store.Tx) error {
		c := a.live(tx)
		pk := a.pkey(req.UserID)
		rec, err := c.get(pk)
		if err != nil {
			return err
		}
		existed := rec != nil
		if !existed {
			rec = &profileRec{ID: req.UserID, Local: true, Expires: a.now() + a.cfg.LocalTTL.Milliseconds()}
		}
		res, err = a.decide(c, pk, rec, existed, map[string]consent.Entry{req.Purpose: entry})
		if err != nil || !res.Applied {
			return err
		}
		ev := a.rightsEvent("Consent Updated", rec.ID, req.Device, map[string]any{
			"purpose": req.Purpose, "status": string(req.Status), "at": req.At,
		})
		return a.appendRights(tx, pk, ev)
	})
	if err != nil {
		return ConsentResult{}, fmt.Errorf("set consent: %w", err)
	}
	a.stats.ConsentChanges.Add(1)
	return res, nil
}

func (a *Agent) checkDecision(id, purpose string, e consent.Entry) error {
	if id == "" || len(id) > 128 {
		return badRequest("userId required, at most 128 characters")
	}
	if _, ok := a.Policy().Basis(purpose); !ok || purpose == consent.RightsPurpose {
		return fmt.Errorf("consent for purpose %q: %w", purpose, ErrUnknownPurpose)
	}
	if e.Status == consent.Pending {
		return badRequest("status pending cannot be set; it is where enrolment starts")
	}
	if err := e.Validate(); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// decide applies decisions to rec (winners only) and everything that
// follows from them, in c's transaction, and writes rec back. existed says
// whether rec is already in the cache.
func (a *Agent) decide(c *cache, pk []byte, rec *profileRec, existed bool, decisions map[string]consent.Entry) (ConsentResult, error) {
	pol := a.Policy()
	before := rec.subject()
	before.Decisions = maps.Clone(rec.Consent)
	beforeAttrs := len(rec.Attrs)
	var old *profileRec
	if existed {
		o := *rec
		old = &o
	}
	var res ConsentResult
	for _, purpose := range slices.Sorted(maps.Keys(decisions)) {
		e := decisions[purpose]
		if !consent.Wins(e, rec.Consent[purpose]) {
			continue
		}
		if rec.Consent == nil {
			rec.Consent = map[string]consent.Entry{}
		}
		rec.Consent[purpose] = e
		res.Applied = true
	}
	if !res.Applied {
		return res, nil
	}
	rec.Provisional = hasPending(rec.Consent)
	if err := c.put(pk, rec, old); err != nil {
		return res, err
	}
	res.Purged = beforeAttrs - len(rec.Attrs)
	for purpose := range decisions {
		if pol.Permitted(purpose, before) && !pol.Permitted(purpose, rec.subject()) {
			n, err := a.stripQueued(c.tx, pk, purpose)
			if err != nil {
				return res, err
			}
			res.Stripped += n
		}
	}
	return res, a.release(c.tx, pk, rec, false)
}

// stripQueued removes identity from the queued events of pk for purpose,
// before they can leave (invariant 4).
func (a *Agent) stripQueued(tx *store.Tx, pk []byte, purpose string) (int, error) {
	seqs, err := tx.OutboxBySubject(pk)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		r, ok, err := tx.OutboxRecord(seq)
		if err != nil || !ok || r.Label != purpose {
			if err != nil {
				return n, err
			}
			continue
		}
		ev, err := event.Decode(r.Payload)
		if err != nil {
			return n, err
		}
		ev.Strip(a.cfg.Identifying)
		b, err := ev.Encode()
		if err != nil {
			return n, err
		}
		if err := tx.ReplaceOutbox(seq, store.Entry{Label: r.Label, At: r.At, Payload: b}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// rightsEvent builds a critical event of the rights purpose: it always
// carries identity, because the central needs to know whose decision it is.
func (a *Agent) rightsEvent(name, userID, device string, props map[string]any) *event.Event {
	return &event.Event{
		MessageID: event.NewID(), Type: event.Track, Event: name, UserID: userID,
		OriginalTimestamp: a.now(), Properties: props,
		Context: a.context(device, consent.RightsPurpose, nil),
	}
}

func (a *Agent) appendRights(tx *store.Tx, pk []byte, ev *event.Event) error {
	b, err := ev.Encode()
	if err != nil {
		return err
	}
	_, err = tx.AppendOutbox(store.Entry{Class: store.Critical, At: ev.OriginalTimestamp, Subject: pk, Label: consent.RightsPurpose, Payload: b})
	return err
}

func hasPending(decisions map[string]consent.Entry) bool {
	for _, e := range decisions {
		if e.Status == consent.Pending {
			return true
		}
	}
	return false
}
