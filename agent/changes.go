package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

// Kinds of central change (PROTOCOL.md).
const (
	ChangeProfile  = "profile"
	ChangeConsent  = "consent"
	ChangeErase    = "erase"
	ChangeRestrict = "restrict"
	ChangePolicy   = "policy"
)

// Change is one change from the central CDP, already authenticated by the
// link. The link translates the wire's message into this.
type Change struct {
	Seq  uint64
	Kind string

	Profile string // the central id, for profile, consent, erase, restrict

	// profile
	Idents  [][]byte // HMAC-SHA256(tenant key, kind ":" value), 32 bytes each
	Attrs   []Attribute
	Version uint64
	Expires int64 // ms; 0 means the slice does not expire

	// consent: purpose -> decision. The wire's basis is not used: the policy
	// says which basis a purpose has.
	Consent map[string]consent.Entry

	// restrict
	Restricted bool

	// policy
	Policy *consent.Policy
}

// ApplyResult says what Apply did.
type ApplyResult int

// Results of Apply.
const (
	Applied   ApplyResult = iota // applied; the cursor moved to its seq
	Duplicate                    // seq <= cursor: already applied, dropped
	Gap                          // seq > cursor+1: not applied; the link asks for what is missing
)

func (r ApplyResult) String() string {
	return [...]string{"applied", "duplicate", "gap"}[r]
}

// ErrBadChange is returned (wrapped, with the reason) for a change that
// cannot be applied as written. The cursor does not move: the link drops it,
// counts it and resyncs.
var ErrBadChange = errors.New("bad change")

// Cursor returns the seq of the last central change applied.
func (a *Agent) Cursor() (uint64, error) {
	var c uint64
	err := a.db.View(func(tx *store.Tx) error { c = tx.MetaUint(metaCursor); return nil })
	return c, err
}

// Apply applies one central change, only when its seq is cursor+1, in the
// same transaction that moves the cursor to seq: a change is applied
// exactly once, even across crashes and redelivery (invariant 7's sequence
// rule). Consent, erase and restrict changes also queue a critical "Rights
// Request Applied" receipt for the central (GDPR Art. 19).
func (a *Agent) Apply(ctx context.Context, ch Change) (ApplyResult, error) {
	res, err := a.ApplyRun(ctx, []Change{ch})
	if err != nil {
		return 0, err
	}
	return res[0], nil
}

// MaxRun is the most changes ApplyRun takes into one transaction.
const MaxRun = 512

// ApplyRun applies changes in order in one transaction, each as Apply
// would, and returns what it did with each of the first len(results) of
// them: a run catching up after a day offline costs one fsync, not one
// per change, and a run that changes nothing (repeats, changes after a
// gap) costs none. It stops after a policy change (what follows must be
// read under the new policy), before a change that fails validation, and
// after MaxRun; the caller passes the rest again. A change that fails
// validation, or fails inside the transaction (a damaged record, the
// disk), ends the run before it; when it is the first, ApplyRun returns
// its error and applies nothing.
func (a *Agent) ApplyRun(ctx context.Context, chs []Change) ([]ApplyResult, error) {
	n := min(len(chs), MaxRun)
	for i := range n {
		if err := chs[i].validate(); err != nil {
			if i == 0 {
				return nil, err
			}
			n = i
			break
		}
	}
	cur, err := a.Cursor()
	if err != nil {
		return nil, err
	}
	if res, writes := classify(chs[:n], cur); !writes {
		return res, nil
	}
	var (
		results   []ApplyResult
		newPolicy *consent.Policy
		applied   uint64
		failed    int // the index of the change that failed in the transaction
	)
	err = a.db.Update(func(tx *store.Tx) error {
		results, newPolicy, applied = results[:0], nil, 0
		start := tx.MetaUint(metaCursor)
		cur := start
		for i, ch := range chs[:n] {
			if ch.Seq != cur+1 {
				results = append(results, classifyOne(ch.Seq, cur))
				continue
			}
			p, err := a.applyChange(tx, ch)
			if err != nil {
				failed = i
				return fmt.Errorf("apply change %d (%s): %w", ch.Seq, ch.Kind, err)
			}
			results = append(results, Applied)
			cur, newPolicy = ch.Seq, p
			applied++
			if newPolicy != nil {
				break
			}
		}
		if cur == start {
			return nil
		}
		return tx.SetMetaUint(metaCursor, cur)
	})
	if err != nil {
		if failed > 0 {
			// The changes before it go through without it; it comes
			// first in the caller's next run, and fails alone there.
			return a.ApplyRun(ctx, chs[:failed])
		}
		return nil, err
	}
	if newPolicy != nil {
		a.policy.Store(newPolicy)
	}
	a.stats.ChangesApplied.Add(applied)
	return results, nil
}

// classify says what ApplyRun does with chs at cursor cur, as long as
// nothing is applied, and whether any would be (then it says nothing).
func classify(chs []Change, cur uint64) (results []ApplyResult, writes bool) {
	for _, ch := range chs {
		if ch.Seq == cur+1 {
			return nil, true
		}
		results = append(results, classifyOne(ch.Seq, cur))
	}
	return results, false
}

// classifyOne is Duplicate or Gap for a change that is not cur+1.
func classifyOne(seq, cur uint64) ApplyResult {
	if seq <= cur {
		return Duplicate
	}
	return Gap
}

func (ch *Change) validate() error {
	if ch.Seq == 0 {
		return fmt.Errorf("%w: seq 0", ErrBadChange)
	}
	switch ch.Kind {
	case ChangePolicy:
		if ch.Policy == nil {
			return fmt.Errorf("%w: policy change without a policy", ErrBadChange)
		}
		if err := ch.Policy.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrBadChange, err)
		}
		return nil
	case ChangeProfile, ChangeConsent, ChangeErase, ChangeRestrict:
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadChange, ch.Kind)
	}
	if ch.Profile == "" || len(ch.Profile) > 128 {
		return fmt.Errorf("%w: profile id missing or over 128 bytes", ErrBadChange)
	}
	for _, h := range ch.Idents {
		if len(h) != 32 {
			return fmt.Errorf("%w: identifier hash of %d bytes, want 32", ErrBadChange, len(h))
		}
	}
	for p, e := range ch.Consent {
		if err := e.Validate(); err != nil || e.Status == consent.Pending {
			return fmt.Errorf("%w: consent for %q: %v", ErrBadChange, p, err)
		}
	}
	return nil
}

func (a *Agent) applyChange(tx *store.Tx, ch Change) (*consent.Policy, error) {
	pk := a.pkey(ch.Profile)
	switch ch.Kind {
	case ChangeProfile:
		return nil, a.applyProfile(a.live(tx), pk, ch)
	case ChangeConsent:
		if err := a.applyConsent(tx, pk, ch); err != nil {
			return nil, err
		}
		return nil, a.receipt(tx, pk, RightConsent, ch)
	case ChangeErase, ChangeRestrict:
		r := RightErase
		if ch.Kind == ChangeRestrict {
			r = map[bool]Right{true: RightRestrict, false: RightUnrestrict}[ch.Restricted]
		}
		if err := a.carryOut(tx, pk, r, ch.Seq, consent.Central); err != nil {
			return nil, err
		}
		return nil, a.receipt(tx, subjectAfter(r, pk), r, ch)
	}
	return a.applyPolicy(tx, ch)
}

// applyProfile upserts a slice. An older version than the cached one is
// ignored (the cursor still moves: the change was seen). Identifiers that
// pointed at a profile made here are re-pointed, and that local profile is
// merged in: its decisions where newer, its held events.
func (a *Agent) applyProfile(c *cache, pk []byte, ch Change) error {
	old, err := c.get(pk)
	if err != nil {
		return err
	}
	if old != nil && old.Version >= ch.Version && ch.Version > 0 {
		return nil
	}
	rec := &profileRec{ID: ch.Profile, Version: ch.Version, Expires: ch.Expires, Idents: ch.Idents, Attrs: ch.Attrs}
	if old != nil {
		rec.Consent, rec.Restricted = old.Consent, old.Restricted
	}
	rec.Inactive = inactive(ch.Attrs, rec.Inactive)
	if err := a.mergeLocal(c, pk, rec); err != nil {
		return err
	}
	return c.put(pk, rec, old)
}

// mergeLocal folds local profiles that own any of rec's identifiers into rec.
func (a *Agent) mergeLocal(c *cache, pk []byte, rec *profileRec) error {
	for _, h := range rec.Idents {
		other, err := c.lookup(h)
		if err != nil || other == nil || string(other) == string(pk) {
			if err != nil {
				return err
			}
			continue
		}
		loc, err := c.get(other)
		if err != nil || loc == nil || !loc.Local {
			if err != nil {
				return err
			}
			continue // a central profile keeps its identifiers until the central says otherwise
		}
		for p, e := range loc.Consent {
			if e.Status != consent.Pending && consent.Wins(e, rec.Consent[p]) {
				if rec.Consent == nil {
					rec.Consent = map[string]consent.Entry{}
				}
				rec.Consent[p] = e
			}
		}
		if err := moveHeld(c.tx, other, pk); err != nil {
			return err
		}
		if err := c.del(other, loc); err != nil {
			return err
		}
	}
	return nil
}

// moveHeld re-keys the held events of from under to, keeping their order.
func moveHeld(tx *store.Tx, from, to []byte) error {
	held, err := heldFor(tx, from)
	if err != nil {
		return err
	}
	bk := tx.Bucket(store.BucketPending)
	for _, h := range held {
		b, err := store.MarshalRecord(h.rec)
		if err != nil {
			return err
		}
		if err := bk.Delete(h.key); err != nil {
			return err
		}
		if err := putHeld(tx, to, b); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) applyConsent(tx *store.Tx, pk []byte, ch Change) error {
	c := a.live(tx)
	rec, err := c.get(pk)
	if err != nil {
		return err
	}
	existed := rec != nil
	if !existed {
		rec = &profileRec{ID: ch.Profile, Expires: a.now() + a.cfg.LocalTTL.Milliseconds()}
	}
	decisions := make(map[string]consent.Entry, len(ch.Consent))
	for p, e := range ch.Consent {
		e.Source = consent.Central
		decisions[p] = e
	}
	_, err = a.decide(c, pk, rec, existed, decisions)
	return err
}

func (a *Agent) applyPolicy(tx *store.Tx, ch Change) (*consent.Policy, error) {
	p := *ch.Policy
	p.V, p.Seq = 1, ch.Seq
	b, err := store.MarshalRecord(&p)
	if err != nil {
		return nil, err
	}
	if err := tx.Bucket(store.BucketState).Put([]byte(statePolicy), b); err != nil {
		return nil, err
	}
	// Purge what the new policy no longer permits, across the whole cache,
	// in this same transaction. Apply puts the policy in force after commit.
	c := a.live(tx)
	c.pol = &p
	return &p, c.refilter()
}

const statePolicy = "policy"

func loadPolicy(tx *store.Tx) (*consent.Policy, error) {
	b, err := tx.Bucket(store.BucketState).Get([]byte(statePolicy))
	if err != nil || b == nil {
		return nil, err
	}
	p := &consent.Policy{}
	if err := store.UnmarshalRecord(store.BucketState, []byte(statePolicy), b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// refilter rewrites every cached profile that holds an attribute the policy
// in force no longer permits.
func (c *cache) refilter() error {
	var keys [][]byte
	err := c.profiles().ForEach(nil, func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, pk := range keys {
		rec, err := c.get(pk)
		if err != nil || rec == nil {
			return err
		}
		if n := len(rec.Attrs); len(permittedAttrs(c.pol, rec)) != n {
			old := *rec
			if err := c.put(pk, rec, &old); err != nil {
				return err
			}
		}
	}
	return nil
}

// receipt queues "Rights Request Applied" {kind, seq, profile}: the
// central's proof that this recipient complied.
func (a *Agent) receipt(tx *store.Tx, subject []byte, r Right, ch Change) error {
	ev := a.rightsEvent("Rights Request Applied", ch.Profile, "", map[string]any{
		"kind": string(r), "seq": ch.Seq, "profile": ch.Profile,
	})
	return a.appendRights(tx, subject, ev)
}
