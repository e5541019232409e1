package agent

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// Snapshot builds a whole new cache from the central's snapshot chunks in
// the cache generation that is not live, while Identify keeps serving the
// live one; Commit switches generations in one transaction that also sets
// the cursor.
//
// A million profiles keyed by hashes, inserted chunk by chunk into a bbolt
// bucket, would touch nearly every page of the bucket in every
// transaction. Instead each chunk goes to a bulk loader (store.Loader) as
// sorted runs, and Commit merges the runs into the staging generation in
// key order, filtering each slice by its customer's decisions and the
// snapshot's policy as it goes, building the identifier and expiry indexes
// the same way, and carrying over what only this store knows by walking
// the live generation beside the merge (both are in key order). Memory
// stays bounded by the loaders' buffers, whatever the snapshot's size.
type Snapshot struct {
	a      *Agent
	to     uint64
	gen    uint64
	policy *consent.Policy // the snapshot's own policy, if it carries one
	n      uint64          // profiles written to the staging generation

	profiles, idents, expiry *store.Loader
	liveAfter                []byte   // the live key the carry walk last passed
	live                     *cache   // the live generation in the current merge transaction
	displaced                [][]byte // home records the identifier being merged no longer keeps
}

// Loader ids of a snapshot's three bulk loads.
const (
	loadProfiles = 1 + iota
	loadIdents
	loadExpiry
)

// BeginSnapshot starts a snapshot that leaves the cache at cursor to. It
// clears whatever an interrupted snapshot left in the staging generation.
func (a *Agent) BeginSnapshot(ctx context.Context, to uint64) (*Snapshot, error) {
	s := &Snapshot{a: a, to: to, policy: a.Policy()}
	err := a.db.Update(func(tx *store.Tx) error {
		s.gen = tx.MetaUint(metaGen) + 1
		for _, b := range []string{store.BucketProfiles, store.BucketIdents, store.BucketExpiry} {
			if err := tx.ClearBucket(store.CacheBucket(b, s.gen)); err != nil {
				return err
			}
		}
		return tx.SetMetaUint(fmt.Sprint(metaCountBase, s.gen%2), 0)
	})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	s.idents, err = a.db.NewLoader(loadIdents, store.CacheBucket(store.BucketIdents, s.gen), store.LoadOptions{
		Merge: s.displace, Final: s.settle,
	})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	if s.expiry, err = a.db.NewLoader(loadExpiry, store.CacheBucket(store.BucketExpiry, s.gen), store.LoadOptions{}); err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	s.profiles, err = a.db.NewLoader(loadProfiles, store.CacheBucket(store.BucketProfiles, s.gen), store.LoadOptions{
		Sealed: true, Merge: mergeRecords, Final: s.final, Between: s.flushIndexes,
		Pause: func() bool { return s.idents.Full() || s.expiry.Full() }, // records go to idents: see index
	})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	a.trackDirty(true)
	return s, nil
}

// Add takes one chunk of the snapshot: profile, consent, restrict and
// policy changes (their seq is ignored: the snapshot as a whole is at its
// cursor). A customer's changes are folded into one record; a customer
// whose changes span chunks is folded again when Commit merges.
func (s *Snapshot) Add(ctx context.Context, changes []Change) error {
	recs, order, err := s.merge(changes)
	if err != nil {
		return err
	}
	for _, id := range order {
		b, err := store.MarshalRecord(recs[id])
		if err != nil {
			return fmt.Errorf("snapshot chunk: %w", err)
		}
		if err := s.profiles.Add(s.a.pkey(id), b); err != nil {
			return fmt.Errorf("snapshot chunk: %w", err)
		}
	}
	return nil
}

// merge folds a chunk's changes into one record per customer, in the order
// customers first appear.
func (s *Snapshot) merge(changes []Change) (map[string]*profileRec, []string, error) {
	recs := map[string]*profileRec{}
	var order []string
	for i := range changes {
		ch := changes[i]
		if ch.Seq == 0 {
			ch.Seq = s.to // validate wants one; a snapshot's changes need not carry theirs
		}
		if err := ch.validate(); err != nil {
			return nil, nil, err
		}
		if ch.Kind == ChangePolicy {
			p := *ch.Policy
			p.V, p.Seq = 1, s.to
			s.policy = &p
			continue
		}
		rec, ok := recs[ch.Profile]
		if !ok {
			rec = &profileRec{ID: ch.Profile}
			recs[ch.Profile], order = rec, append(order, ch.Profile)
		}
		if err := fold(rec, ch); err != nil {
			return nil, nil, err
		}
	}
	return recs, order, nil
}

// fold applies one snapshot change to a record being built.
func fold(rec *profileRec, ch Change) error {
	switch ch.Kind {
	case ChangeProfile:
		rec.Version, rec.Expires, rec.Idents, rec.Attrs = ch.Version, ch.Expires, ch.Idents, ch.Attrs
		rec.Inactive = inactive(ch.Attrs, rec.Inactive)
	case ChangeConsent:
		if rec.Consent == nil {
			rec.Consent = map[string]consent.Entry{}
		}
		for p, e := range ch.Consent {
			e.Source = consent.Central
			rec.Consent[p] = e
		}
	case ChangeRestrict:
		rec.Restricted = ch.Restricted
	default:
		return fmt.Errorf("%w: a snapshot cannot carry a %s change", ErrBadChange, ch.Kind)
	}
	return nil
}

// mergeRecords folds a customer's record from a later chunk into the one
// from an earlier chunk.
func mergeRecords(older, newer []byte) ([]byte, error) {
	var old, rec profileRec
	if err := store.UnmarshalRecord("snapshot", nil, older, &old); err != nil {
		return nil, err
	}
	if err := store.UnmarshalRecord("snapshot", nil, newer, &rec); err != nil {
		return nil, err
	}
	if rec.Version > 0 || rec.Idents != nil {
		old.Version, old.Expires, old.Idents, old.Attrs, old.Inactive = rec.Version, rec.Expires, rec.Idents, rec.Attrs, rec.Inactive
	}
	for p, e := range rec.Consent {
		if old.Consent == nil {
			old.Consent = map[string]consent.Entry{}
		}
		old.Consent[p] = e
	}
	old.Restricted = old.Restricted || rec.Restricted
	return store.MarshalRecord(&old)
}

// final writes one customer of the snapshot, in key order, inside a merge
// transaction: first the live customers before it that the snapshot does
// not have, then the customer with this store's newer decisions carried
// over, filtered, indexed and counted. Past Config.MaxProfiles, further
// customers are left out (counted as evicted): the cache never outgrows
// its bound.
func (s *Snapshot) final(tx *store.Tx, pk, val []byte) ([]byte, error) {
	if s.live == nil || s.live.tx != tx { // once per merge transaction, not per customer
		s.live = s.a.live(tx)
	}
	live := s.live
	if err := s.carryUntil(tx, live, pk); err != nil {
		return nil, err
	}
	s.liveAfter = bytes.Clone(pk)
	var rec profileRec
	if err := store.UnmarshalRecord("snapshot", pk, val, &rec); err != nil {
		return nil, err
	}
	mine, err := live.getCarried(pk)
	if err != nil {
		return nil, err
	}
	if mine != nil {
		carryDecisions(mine, &rec)
	}
	if s.n >= s.a.cfg.MaxProfiles {
		s.a.stats.Evicted.Add(1)
		return nil, nil
	}
	return s.index(pk, &rec)
}

// index filters rec by the snapshot's policy, buffers its index entries
// (the record itself, sealed, at its home: see homeTag) and counts it; it
// returns what to store at pk.
func (s *Snapshot) index(pk []byte, rec *profileRec) ([]byte, error) {
	rec.V = 1
	rec.Attrs = permittedAttrs(s.policy, rec)
	rec.Idents = distinct(rec.Idents)
	b, err := store.MarshalRecord(rec)
	if err != nil {
		return nil, err
	}
	if rec.Expires > 0 {
		s.expiry.Buffer(expiryKey(rec.Expires, pk), nil)
	}
	s.n++
	if len(rec.Idents) == 0 {
		return b, nil
	}
	if err := s.idents.BufferSealed(rec.Idents[0], slices.Concat(pk, b)); err != nil {
		return nil, err
	}
	for _, h := range rec.Idents[1:] {
		s.idents.Buffer(h, pk)
	}
	return homePointer(rec.Idents[0], rec), nil
}

// displace folds two entries of one identifier as a put would: the later
// keeps it. A home record it displaces is kept aside for settle, which
// moves it under its own profile key.
func (s *Snapshot) displace(older, newer []byte) ([]byte, error) {
	if len(older) > pkeyLen {
		s.displaced = append(s.displaced, bytes.Clone(older))
	}
	return newer, nil
}

// settle runs once per identifier h of the load, in key order, inside the
// merge transaction, after displace has folded its entries into val: the
// records displaced from h go under their profile keys, where the pointer
// to h stood.
func (s *Snapshot) settle(tx *store.Tx, h, val []byte) ([]byte, error) {
	if len(s.displaced) == 0 {
		return val, nil
	}
	defer func() { s.displaced = s.displaced[:0] }()
	next := s.a.cacheIn(tx, s.gen)
	keeper := val
	if len(val) > pkeyLen {
		owner, _, err := next.openHome(nil, h, val)
		if err != nil {
			return nil, err
		}
		keeper = owner
	}
	for _, d := range s.displaced {
		owner, rec, err := next.openHome(nil, h, d)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(owner, keeper) {
			continue
		}
		if err := next.profiles().PutSealed(owner, rec); err != nil {
			return nil, err
		}
	}
	return val, nil
}

// carryUntil walks the live generation from where it last stopped up to
// (not including) before, nil for the end, and copies into the staging
// generation the customers made here that the snapshot does not have (the
// central does not know them yet). The others are gone from the central:
// they are left behind.
func (s *Snapshot) carryUntil(tx *store.Tx, live *cache, before []byte) error {
	_, err := s.carryWalk(tx, live, before, 0)
	return err
}

// carryWalk is carryUntil walking at most limit keys (0: no limit); it
// reports whether the walk reached before.
func (s *Snapshot) carryWalk(tx *store.Tx, live *cache, before []byte, limit int) (bool, error) {
	target := tx.Bucket(store.CacheBucket(store.BucketProfiles, s.gen))
	walked, done := 0, true
	err := live.profiles().Range(s.liveAfter, before, func(k, v []byte) (bool, error) {
		if limit > 0 && walked == limit {
			done = false
			return true, nil
		}
		walked++
		s.liveAfter = bytes.Clone(k)
		plain, err := live.profiles().Open(k, v)
		if err != nil {
			return false, err
		}
		rec, err := live.carriedRec(k, plain)
		if err != nil || rec == nil || !rec.Local {
			return false, err
		}
		b, err := s.index(k, rec)
		if err != nil {
			return false, err
		}
		return false, target.PutSealed(k, b)
	})
	return done, err
}

// flushIndexes writes out the index loaders' buffers once full: final and
// the carry walk fill them inside transactions, where they cannot.
func (s *Snapshot) flushIndexes() error {
	if err := s.idents.FlushIfFull(); err != nil {
		return err
	}
	return s.expiry.FlushIfFull()
}

// carryDecisions copies into rec the decisions made here that are newer
// than the snapshot's.
func carryDecisions(mine, rec *profileRec) bool {
	changed := false
	for p, e := range mine.Consent {
		if e.Source == consent.Local && consent.Wins(e, rec.Consent[p]) {
			if rec.Consent == nil {
				rec.Consent = map[string]consent.Entry{}
			}
			rec.Consent[p], changed = e, true
		}
	}
	return changed
}

// Commit makes the snapshot the live cache, at cursor to. The loads are
// merged first, in bounded transactions, while the live cache keeps
// serving; then one transaction carries over what changed here while they
// ran, and switches generation, cursor and policy together. The old
// generation is emptied after, and a compaction is scheduled: a customer
// the snapshot left out must leave the file too.
func (s *Snapshot) Commit(ctx context.Context) (uint64, error) {
	a := s.a
	defer a.trackDirty(false)
	if _, err := s.profiles.Finish(ctx); err != nil {
		return 0, fmt.Errorf("commit snapshot: %w", err)
	}
	for done := false; !done; {
		err := a.db.Update(func(tx *store.Tx) error {
			var err error
			done, err = s.carryWalk(tx, a.live(tx), nil, 50_000)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("commit snapshot: %w", err)
		}
		if err := s.flushIndexes(); err != nil {
			return 0, fmt.Errorf("commit snapshot: %w", err)
		}
	}
	for _, l := range []*store.Loader{s.idents, s.expiry} {
		if _, err := l.Finish(ctx); err != nil {
			return 0, fmt.Errorf("commit snapshot: %w", err)
		}
	}
	var n, since uint64
	err := a.db.Update(func(tx *store.Tx) error {
		live, next := a.live(tx), a.cacheIn(tx, s.gen)
		a.mark.Store(nil) // before the commit: see liveMark
		since = tx.ID()
		next.pol = s.policy
		if err := tx.SetMetaUint(fmt.Sprint(metaCountBase, s.gen%2), s.n); err != nil {
			return err
		}
		for _, pk := range a.dirtyKeys() {
			if err := carryDirty(live, next, pk); err != nil {
				return err
			}
		}
		if s.policy.Seq == s.to {
			b, err := store.MarshalRecord(s.policy)
			if err != nil {
				return err
			}
			if err := tx.Bucket(store.BucketState).Put([]byte(statePolicy), b); err != nil {
				return err
			}
		}
		if err := tx.SetMetaUint(metaGen, s.gen); err != nil {
			return err
		}
		if err := tx.SetMetaUint(metaCursor, s.to); err != nil {
			return err
		}
		n = next.count()
		return tx.MarkForCompaction()
	})
	if err != nil {
		return 0, fmt.Errorf("commit snapshot: %w", err)
	}
	a.mark.Store(&liveMark{gen: s.gen, since: since})
	a.policy.Store(s.policy)
	a.log.Info("snapshot applied", "profiles", n, "cursor", s.to)
	return n, a.clearGen(s.gen + 1)
}

// carryDirty brings one customer changed here during the snapshot into
// the staging generation: a customer made here, a newer decision, or an
// erasure (gone from the live cache: gone from the new one too).
func carryDirty(live, next *cache, pk []byte) error {
	mine, err := live.get(pk)
	if err != nil {
		return err
	}
	into, err := next.get(pk)
	if err != nil {
		return err
	}
	switch {
	case mine == nil && into != nil:
		return next.del(pk, into)
	case mine == nil:
		return nil
	case into == nil:
		if !mine.Local {
			return nil
		}
		return next.put(pk, mine, nil)
	}
	old := *into
	if !carryDecisions(mine, into) {
		return nil
	}
	return next.put(pk, into, &old)
}

// trackDirty starts or stops recording which customers the live cache
// changes: a snapshot carries them over when it commits.
func (a *Agent) trackDirty(on bool) {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	a.dirty = nil
	if on {
		a.dirty = map[string]struct{}{}
	}
}

func (a *Agent) markDirty(pk []byte) {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	if a.dirty != nil {
		a.dirty[string(pk)] = struct{}{}
	}
}

func (a *Agent) dirtyKeys() [][]byte {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	keys := make([][]byte, 0, len(a.dirty))
	for k := range a.dirty {
		keys = append(keys, []byte(k))
	}
	return keys
}

// clearGen empties a cache generation that is no longer live.
func (a *Agent) clearGen(gen uint64) error {
	return a.db.Update(func(tx *store.Tx) error {
		for _, b := range []string{store.BucketProfiles, store.BucketIdents, store.BucketExpiry} {
			if err := tx.ClearBucket(store.CacheBucket(b, gen)); err != nil {
				return err
			}
		}
		return tx.SetMetaUint(fmt.Sprint(metaCountBase, gen%2), 0)
	})
}

// inactive reads the account status the central sends as the attribute
// account_status ("active" or anything else): the contract basis holds only
// for an active account. Without the attribute, the last status stands.
func inactive(attrs []Attribute, was bool) bool {
	for _, at := range attrs {
		if at.Name == "account_status" {
			return at.Value != "active"
		}
	}
	return was
}

// Recheck re-checks consent for queued records about to leave (invariant
// 4, the last line): a record linked to a customer whose purpose is no
// longer permitted leaves stripped, whatever happened since it was queued.
// It returns the payloads to send, in the records' order. A customer no
// longer cached (expired) keeps what was decided when the event was
// captured; a withdrawal would have stripped it then.
func (a *Agent) Recheck(recs []store.Record) ([][]byte, error) {
	out := make([][]byte, len(recs))
	permitted := map[string]map[string]bool{} // subject -> purpose -> permitted
	pol := a.Policy()
	err := a.db.View(func(tx *store.Tx) error {
		c := a.live(tx)
		for i, r := range recs {
			out[i] = r.Payload
			if len(r.Subject) == 0 || r.Label == consent.RightsPurpose {
				continue
			}
			ok, err := permittedFor(c, pol, permitted, r)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			ev, err := event.Decode(r.Payload)
			if err != nil {
				return err
			}
			ev.Strip(a.cfg.Identifying)
			if out[i], err = ev.Encode(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func permittedFor(c *cache, pol *consent.Policy, memo map[string]map[string]bool, r store.Record) (bool, error) {
	m, seen := memo[string(r.Subject)]
	if !seen {
		rec, err := c.get(r.Subject)
		if err != nil {
			return false, err
		}
		m = map[string]bool{}
		memo[string(r.Subject)] = m
		if rec == nil {
			return true, nil // not cached: keep the capture-time decision (an empty map marks it)
		}
		for _, pu := range pol.Purposes {
			m[pu.Name] = pol.Permitted(pu.Name, rec.subject())
		}
	}
	if len(m) == 0 {
		return true, nil
	}
	return m[r.Label], nil
}
