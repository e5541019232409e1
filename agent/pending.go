package agent

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// pendingRec is an event held while a new customer decides on consent.
// Held events are durable like queued ones, but not in the outbox: they
// must not block the drain, and they enter the outbox, in the order they
// were held, once the decision is known.
type pendingRec struct {
	V       uint8       `cbor:"0,keyasint"`
	Class   store.Class `cbor:"1,keyasint"`
	HeldAt  int64       `cbor:"2,keyasint"`
	Purpose string      `cbor:"3,keyasint"`
	Event   []byte      `cbor:"4,keyasint"`
}

// hold stores an event for the profile pk until its consent is decided.
func (a *Agent) hold(pk []byte, class store.Class, purpose string, ev *event.Event) error {
	rec, err := a.heldRecord(class, purpose, ev)
	if err != nil {
		return err
	}
	if err := a.db.Update(func(tx *store.Tx) error { return putHeld(tx, pk, rec) }); err != nil {
		return fmt.Errorf("hold event: %w", err)
	}
	a.stats.CaptureHeld.Add(1)
	return nil
}

func (a *Agent) heldRecord(class store.Class, purpose string, ev *event.Event) ([]byte, error) {
	b, err := ev.Encode()
	if err != nil {
		return nil, err
	}
	return store.MarshalRecord(pendingRec{V: 1, Class: class, HeldAt: a.now(), Purpose: purpose, Event: b})
}

// putHeld stores a held event under pk, after those already held.
func putHeld(tx *store.Tx, pk, rec []byte) error {
	bk := tx.Bucket(store.BucketPending)
	seq, err := bk.NextSequence()
	if err != nil {
		return err
	}
	return bk.PutSealed(binary.BigEndian.AppendUint64(bytes.Clone(pk), seq), rec)
}

type heldEvent struct {
	key []byte
	rec pendingRec
}

// heldFor lists the events held for pk, oldest first.
func heldFor(tx *store.Tx, pk []byte) ([]heldEvent, error) {
	var out []heldEvent
	bk := tx.Bucket(store.BucketPending)
	err := bk.ForEach(pk, func(k, v []byte) error {
		plain, err := bk.Open(k, v)
		if err != nil {
			return err
		}
		var r pendingRec
		if err := store.UnmarshalRecord(store.BucketPending, k, plain, &r); err != nil {
			return err
		}
		out = append(out, heldEvent{key: bytes.Clone(k), rec: r})
		return nil
	})
	return out, err
}

// release moves the held events of pk whose purpose is now decided into
// the outbox: with identity if the purpose is permitted, stripped (or
// dropped) if not. rec nil means the customer is gone: every held event
// leaves stripped. Events still undecided stay held, unless force.
func (a *Agent) release(tx *store.Tx, pk []byte, rec *profileRec, force bool) error {
	held, err := heldFor(tx, pk)
	if err != nil {
		return err
	}
	pol := a.Policy()
	for _, h := range held {
		if rec != nil && !force && rec.Consent[h.rec.Purpose].Status == consent.Pending {
			continue
		}
		if err := a.releaseOne(tx, pol, pk, rec, h); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) releaseOne(tx *store.Tx, pol *consent.Policy, pk []byte, rec *profileRec, h heldEvent) error {
	if err := tx.Bucket(store.BucketPending).Delete(h.key); err != nil {
		return err
	}
	ev, err := event.Decode(h.rec.Event)
	if err != nil {
		return err
	}
	subj, subject := consent.Subject{}, []byte(nil)
	if rec != nil {
		subj = rec.subject()
	}
	ev.Context.Consent.CategoryPreferences = pol.Preferences(subj)
	if pol.Permitted(h.rec.Purpose, subj) {
		subject = pk
	} else if pu, _ := pol.Purpose(h.rec.Purpose); pu.Drop {
		a.stats.CaptureDropped.Add(1)
		return nil
	} else {
		ev.Strip(a.cfg.Identifying)
	}
	b, err := ev.Encode()
	if err != nil {
		return err
	}
	_, err = tx.AppendOutbox(store.Entry{Class: h.rec.Class, At: ev.OriginalTimestamp, Subject: subject, Label: h.rec.Purpose, Payload: b})
	return err
}
