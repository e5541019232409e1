package central

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// storeLog is one store's change stream: its seq, its append-only log of
// signed changes, and the state of every profile a change touched since the
// baseline (the overlay a snapshot lays over the synthetic customers).
type storeLog struct {
	c     *Central
	store string
	scope wire.Scope // tenant and store; no agent
	base  uint64     // seq of the first logged change

	mu sync.Mutex // guards the fields below, and the order of publishes on the changes topic
	// file is nil until the first change.
	file *logFile
	// err, once set, fails every append: a write failed.
	err error
	// seq is the last seq: base-1 before any change.
	seq uint64
	// offsets[i] is the file offset of the record of seq base+i.
	offsets []int64
	counts  map[wire.Kind]uint64
	// state holds a profileState per profile a change touched. Entries are
	// never modified, only replaced, so a copy of the map is a consistent
	// view.
	state     map[string]*profileState
	policy    *wire.PolicyChange // the last policy change, nil if none
	policySeq uint64
}

// profileState is a profile as the logged changes left it.
type profileState struct {
	// baseline is true while the synthetic customer of this id stands: it
	// was never erased.
	baseline bool
	// profile is the last profile change since the last erase, if any; it
	// replaces the baseline's slice.
	profile    *wire.ProfileChange
	profileSeq uint64
	// consent holds the purposes set by consent changes since the last
	// erase, laid over the baseline's decisions.
	consent     map[string]wire.ConsentEntry
	consentSeq  uint64
	restricted  bool
	restrictSeq uint64
}

// present reports whether the profile exists at the central.
func (p *profileState) present() bool { return p.baseline || p.profile != nil }

func newStoreLog(c *Central, store string) *storeLog {
	base := baseSeq(c.cfg.Customers)
	return &storeLog{
		c: c, store: store, scope: wire.Scope{Tenant: c.cfg.Tenant, Store: store},
		base: base, seq: base - 1, counts: map[wire.Kind]uint64{}, state: map[string]*profileState{},
	}
}

// openStoreLog opens an existing change log and replays it, verifying every
// change with the central's key: the log holds exactly what was published.
func openStoreLog(c *Central, store string) (*storeLog, error) {
	sl := newStoreLog(c, store)
	f, err := openLogFile(storePath(c.cfg.DataDir, store), magicChanges, c.log, sl.replay)
	if err != nil {
		return nil, err
	}
	sl.file = f
	return sl, nil
}

func (sl *storeLog) replay(off int64, payload []byte) error {
	r, err := decodeChangeRecord(payload)
	if err != nil {
		return err
	}
	if r.Seq != sl.seq+1 {
		if sl.seq == sl.base-1 {
			return fmt.Errorf("%w: store %s: log starts at seq %d, the baseline wants %d", ErrDataMismatch, sl.store, r.Seq, sl.base)
		}
		return fmt.Errorf("%w: seq %d follows %d", ErrCorrupt, r.Seq, sl.seq)
	}
	ch, err := wire.VerifyChange(sl.c.verifier, sl.scope, r.Signed)
	if err != nil {
		if errors.Is(err, wire.ErrBadSignature) {
			return fmt.Errorf("%w: store %s: change %d is not signed by this central key", ErrDataMismatch, sl.store, r.Seq)
		}
		return fmt.Errorf("%w: change %d: %v", ErrCorrupt, r.Seq, err)
	}
	if ch.Seq != r.Seq || ch.Body.Kind() != r.Kind {
		return fmt.Errorf("%w: change %d does not match its record", ErrCorrupt, r.Seq)
	}
	sl.applyLocked(ch)
	sl.offsets = append(sl.offsets, off)
	return nil
}

func (sl *storeLog) close() error {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.file == nil {
		return nil
	}
	err := sl.file.close()
	sl.file = nil
	return err
}

// isBaseline reports whether id names a customer of the baseline.
func (sl *storeLog) isBaseline(id string) bool {
	i, ok := CustomerIndex(id)
	return ok && i < sl.c.cfg.Customers
}

// applyLocked lays ch over the state. Entries are replaced, never
// modified.
func (sl *storeLog) applyLocked(ch wire.Change) {
	sl.seq = ch.Seq
	sl.counts[ch.Body.Kind()]++
	switch b := ch.Body.(type) {
	case *wire.PolicyChange:
		sl.policy, sl.policySeq = b, ch.Seq
	case *wire.EraseChange:
		sl.state[b.Profile] = &profileState{}
	case *wire.ProfileChange:
		ns := sl.next(b.Profile)
		ns.profile, ns.profileSeq = b, ch.Seq
	case *wire.ConsentChange:
		ns := sl.next(b.Profile)
		ns.consent = maps.Clone(ns.consent)
		if ns.consent == nil {
			ns.consent = map[string]wire.ConsentEntry{}
		}
		maps.Copy(ns.consent, b.Purposes)
		ns.consentSeq = ch.Seq
	case *wire.RestrictChange:
		ns := sl.next(b.Profile)
		ns.restricted, ns.restrictSeq = b.Restricted, ch.Seq
	}
}

// next replaces the state of id with a copy and returns it for changing.
func (sl *storeLog) next(id string) *profileState {
	var ns profileState
	if old := sl.state[id]; old != nil {
		ns = *old
	} else {
		ns.baseline = sl.isBaseline(id)
	}
	sl.state[id] = &ns
	return &ns
}

// appendLocked logs ch durably (fsync) and applies it; the caller holds
// mu. A failed write leaves the file in an unknown state, so it also fails
// every later append of the store (err): the next start truncates what was
// torn.
func (sl *storeLog) appendLocked(ch wire.Change, signed []byte, at int64) error {
	if sl.err != nil {
		return sl.err
	}
	if err := sl.writeLocked(ch, signed, at); err != nil {
		sl.err = fmt.Errorf("change log of store %s unusable until restart: %w", sl.store, err)
		return sl.err
	}
	sl.applyLocked(ch)
	return nil
}

func (sl *storeLog) writeLocked(ch wire.Change, signed []byte, at int64) error {
	if sl.file == nil {
		f, err := openLogFile(storePath(sl.c.cfg.DataDir, sl.store), magicChanges, sl.c.log, func(int64, []byte) error {
			return fmt.Errorf("%w: change log appeared while cdpsim ran", ErrCorrupt)
		})
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Join(sl.c.cfg.DataDir, changesDir)); err != nil {
			f.close()
			return err
		}
		sl.file = f
	}
	rec, err := encodeRecord(&changeRecord{Seq: ch.Seq, Kind: ch.Body.Kind(), At: at, Signed: signed})
	if err != nil {
		return err
	}
	off, err := sl.file.append(rec)
	if err != nil {
		return err
	}
	if err := sl.file.sync(); err != nil {
		return err
	}
	sl.offsets = append(sl.offsets, off)
	return nil
}

// report returns the store's report, if it has logged a change.
func (sl *storeLog) report() (StoreReport, bool) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if len(sl.offsets) == 0 {
		return StoreReport{}, false
	}
	sr := StoreReport{Store: sl.store, Seq: sl.seq, Changes: map[string]uint64{}}
	for k, n := range sl.counts {
		sr.Changes[string(k)] = n
	}
	return sr, true
}

func sortStores(s []StoreReport) {
	slices.SortFunc(s, func(a, b StoreReport) int { return cmp.Compare(a.Store, b.Store) })
}

// storeView is a consistent view of a store at one seq, for a sync reply
// that runs while more changes are published.
type storeView struct {
	scope     wire.Scope
	seq       uint64
	base      uint64
	offsets   []int64 // only indexes below seq-base+1 are read
	file      *logFile
	state     map[string]*profileState
	policy    *wire.PolicyChange
	policySeq uint64
}

func (sl *storeLog) view() storeView {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return storeView{
		scope: sl.scope, seq: sl.seq, base: sl.base, offsets: sl.offsets, file: sl.file,
		state: maps.Clone(sl.state), policy: sl.policy, policySeq: sl.policySeq,
	}
}

// change reads and verifies the logged change seq of the view.
func (v *storeView) change(c *Central, seq uint64) (wire.Change, error) {
	if seq < v.base || seq > v.seq || v.file == nil {
		return wire.Change{}, fmt.Errorf("change %d not in the log", seq)
	}
	p, err := v.file.readFrame(v.offsets[seq-v.base])
	if err != nil {
		return wire.Change{}, err
	}
	r, err := decodeChangeRecord(p)
	if err != nil {
		return wire.Change{}, err
	}
	ch, err := wire.VerifyChange(c.verifier, v.scope, r.Signed)
	if err != nil || ch.Seq != seq {
		return wire.Change{}, fmt.Errorf("%w: logged change %d: %v", ErrCorrupt, seq, err)
	}
	return ch, nil
}

// storeLog returns the log of store, creating an empty one (no file until
// its first change) when create is true; otherwise a missing store gets a
// fresh, unregistered storeLog (its state is the baseline alone).
func (c *Central) storeLog(store string, create bool) (*storeLog, error) {
	if !wire.ValidID(store) {
		return nil, badRequest("store is not a valid id")
	}
	c.storesMu.Lock()
	defer c.storesMu.Unlock()
	if sl := c.stores[store]; sl != nil {
		return sl, nil
	}
	sl := newStoreLog(c, store)
	if create {
		if c.closed.Load() {
			return nil, errors.New("central is closed")
		}
		c.stores[store] = sl
	}
	return sl, nil
}

// publishTimeout bounds the wait for the broker's PUBACK of a change.
const publishTimeout = 10 * time.Second

// Publish makes body the store's next change:
//
//  1. It assigns the next seq of the store and signs the change for the
//     store's changes topic (tenant and store; no agent).
//  2. It appends the signed change to the store's change log and fsyncs:
//     when Publish returns a seq, the change is durable, and every later
//     SyncRequest and snapshot reflects it.
//  3. It publishes the signed change on the changes topic at QoS 1 and
//     waits for the broker's PUBACK (or ctx). Changes are handed to the
//     client in seq order, even from concurrent callers.
//
// A body the protocol refuses fails before step 2, with the sync/wire
// error (ErrInvalid...). When step 3 fails (Run not active, broker
// unreachable) Publish returns the seq and an error matching
// ErrNotPublished: agents will get the change by SyncRequest.
func (c *Central) Publish(ctx context.Context, store string, body wire.Body) (uint64, error) {
	sl, err := c.storeLog(store, true)
	if err != nil {
		return 0, err
	}
	seq, tok, err := sl.publish(body)
	if err != nil {
		return 0, err
	}
	c.log.Info("change logged", "store", store, "seq", seq, "kind", body.Kind())
	if tok == nil {
		return seq, fmt.Errorf("%w: %w", ErrNotPublished, ErrNotRunning)
	}
	if err := link.Wait(ctx, tok, publishTimeout); err != nil {
		return seq, fmt.Errorf("%w: %w", ErrNotPublished, err)
	}
	return seq, nil
}

// publish does Publish's steps 1 to 3 under the store's lock, without
// waiting for the broker. The change it applies is the one decoded back
// from the signed bytes, so the state never aliases the caller's body.
func (sl *storeLog) publish(body wire.Body) (uint64, mqtt.Token, error) {
	c := sl.c
	topic, err := sl.scope.Topic(wire.TopicChanges)
	if err != nil {
		return 0, nil, err
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	seq := sl.seq + 1
	signed, err := wire.SignChange(c.signer, sl.scope, wire.Change{Seq: seq, Body: body})
	if err != nil {
		return 0, nil, fmt.Errorf("publish change: %w", err)
	}
	ch, err := wire.VerifyChange(c.verifier, sl.scope, signed)
	if err != nil {
		return 0, nil, fmt.Errorf("publish change: %w", err)
	}
	if err := sl.appendLocked(ch, signed, c.nowMs()); err != nil {
		return 0, nil, fmt.Errorf("publish change: %w", err)
	}
	return seq, c.publish(topic, signed), nil
}
