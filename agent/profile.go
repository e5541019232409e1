package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

const (
	metaGen       = "agent.cache_gen"     // the live cache generation
	metaCursor    = "agent.change_cursor" // last central change applied
	metaCountBase = "agent.cache_count."  // + generation: profiles held
	pkeyLen       = 16
	identLen      = 32 // an identifier's keyed hash
)

// Attribute is one attribute of a profile slice.
type Attribute struct {
	Name    string `cbor:"1,keyasint" json:"name"`
	Purpose string `cbor:"2,keyasint" json:"purpose"`
	Value   any    `cbor:"3,keyasint" json:"value"`
}

// profileRec is the cached record of one customer, sealed at rest.
type profileRec struct {
	V           uint8                    `cbor:"0,keyasint"`
	ID          string                   `cbor:"1,keyasint"`           // central id (userId), or a local anonymous id
	Local       bool                     `cbor:"2,keyasint,omitempty"` // made here, not (yet) known to the central
	Version     uint64                   `cbor:"3,keyasint,omitempty"`
	Expires     int64                    `cbor:"4,keyasint,omitempty"` // ms; the slice is dropped after it
	Restricted  bool                     `cbor:"5,keyasint,omitempty"`
	Inactive    bool                     `cbor:"6,keyasint,omitempty"`
	Attrs       []Attribute              `cbor:"7,keyasint,omitempty"`
	Idents      [][]byte                 `cbor:"8,keyasint,omitempty"`
	Consent     map[string]consent.Entry `cbor:"9,keyasint,omitempty"`
	Provisional bool                     `cbor:"10,keyasint,omitempty"` // enrolled here, consent undecided
}

func (r *profileRec) subject() consent.Subject {
	return consent.Subject{Known: true, Inactive: r.Inactive, Restricted: r.Restricted, Decisions: r.Consent}
}

// pkey is the store key of a profile: a keyed hash of its id, so the cache
// never holds an id in the clear as a key.
func (a *Agent) pkey(id string) []byte {
	sum := a.hasher.Derive("profile", []byte(id))
	return sum[:pkeyLen]
}

// cache is the profile cache of one generation inside one transaction. Its
// buckets are opened on first use: Identify needs two of the three.
type cache struct {
	a   *Agent
	pol *consent.Policy // the policy the cache is filtered by
	tx  *store.Tx
	gen uint64

	profilesB, identsB, expiryB *store.Bucket
}

func (a *Agent) cacheIn(tx *store.Tx, gen uint64) *cache {
	return &cache{a: a, tx: tx, gen: gen, pol: a.Policy()}
}

func (c *cache) open(b **store.Bucket, base string) *store.Bucket {
	if *b == nil {
		*b = c.tx.Bucket(store.CacheBucket(base, c.gen))
	}
	return *b
}

func (c *cache) profiles() *store.Bucket { return c.open(&c.profilesB, store.BucketProfiles) }
func (c *cache) idents() *store.Bucket   { return c.open(&c.identsB, store.BucketIdents) }
func (c *cache) expiry() *store.Bucket   { return c.open(&c.expiryB, store.BucketExpiry) }

// live is the cache generation the transaction sees as live: never ahead
// of or behind the snapshot switch it can see. It is read from the file
// unless the agent's mark says it is known for the state the transaction
// sees, which spares Identify a bucket and a lookup.
func (a *Agent) live(tx *store.Tx) *cache {
	if m := a.mark.Load(); m != nil && tx.ID() >= m.since {
		return a.cacheIn(tx, m.gen)
	}
	return a.cacheIn(tx, tx.MetaUint(metaGen))
}

// liveMark is the live generation of every state of the file from the
// commit since on, until the mark is cleared. The switch of generation
// clears it inside its transaction, before the commit, and sets it after:
// a transaction that sees the switch began after it was cleared, and
// loads either no mark or the new one (whose since it reaches); one that
// does not see it has an ID below the new mark's since. Besides the
// switch, a mark is set only where no switch can be uncommitted: in New,
// and after a compaction (which holds the store alone, so every switch has
// committed or not begun, and the new file's ids start again). A mark so
// set may be overwritten by a switch's own, which names the same
// generation.
type liveMark struct{ gen, since uint64 }

// The cache's layout. A profile's record is sealed at its home: the entry
// of its first identifier in idents, so that a scan of that identifier
// (the loyalty card at the till) finds the record in one lookup; or its
// profile key in profiles when it has no identifier.
//
//	idents[h]      = pkey (pkeyLen bytes, clear)  h identifies the profile at pkey, its record is elsewhere
//	idents[h]      = sealed(pkey || record)       h is the home of pkey's record
//	profiles[pkey] = sealed(record)               the record is here (a CBOR map)
//	profiles[pkey] = sealed(homeTag || h || carry) the record is at idents[h]
//
// A sealed value is never pkeyLen bytes (the seal alone adds more), and a
// record is a CBOR map, whose first byte is never homeTag. A store written
// before homes (every record under its pkey) reads the same way. carry is
// 1 when a snapshot carries something of the record over (see carried):
// a snapshot's walks of the live cache follow only those pointers, instead
// of a random lookup for every customer.
const homeTag = 0x00

// homePointer is what profiles holds for rec, homed at h.
func homePointer(h []byte, rec *profileRec) []byte {
	carry := byte(0)
	if carried(rec) {
		carry = 1
	}
	return slices.Concat([]byte{homeTag}, h, []byte{carry})
}

// carried reports whether a snapshot carries anything of rec over: a
// profile made here, or a decision made here (carryDecisions).
func carried(rec *profileRec) bool {
	if rec.Local {
		return true
	}
	for _, e := range rec.Consent {
		if e.Source == consent.Local {
			return true
		}
	}
	return false
}

// get returns the record at pkey, or nil.
func (c *cache) get(pkey []byte) (*profileRec, error) {
	raw, err := c.record(nil, pkey)
	if err != nil || raw == nil {
		return nil, err
	}
	return c.unmarshal(pkey, raw)
}

// record appends the opened record of the profile at pkey to dst and
// returns it, or nil when there is none.
func (c *cache) record(dst, pkey []byte) ([]byte, error) {
	plain, err := c.profiles().GetSealedTo(dst, pkey)
	if err != nil || plain == nil {
		return nil, err
	}
	return c.follow(pkey, plain)
}

// follow returns the record that plain, the opened profiles value of pkey,
// is or points to.
func (c *cache) follow(pkey, plain []byte) ([]byte, error) {
	if len(plain) == 0 || plain[0] != homeTag {
		return plain, nil
	}
	var home [identLen]byte // plain's room is reused for the record
	if len(plain) != 1+identLen+1 {
		return nil, c.corrupt(store.BucketProfiles, pkey, "malformed home pointer")
	}
	copy(home[:], plain[1:])
	v, err := c.idents().Peek(home[:])
	if err != nil {
		return nil, err
	}
	if len(v) <= pkeyLen { // gone, or a pointer back: never followed
		return nil, c.corrupt(store.BucketProfiles, pkey, "points to a home that holds no record")
	}
	owner, rec, err := c.openHome(plain[:0], home[:], v)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(owner, pkey) {
		return nil, c.corrupt(store.BucketProfiles, pkey, "points to a home that holds another profile")
	}
	return rec, nil
}

// atIdent returns the profile key identifier h maps to and, appended to
// dst, that profile's opened record; nil, nil when h is unknown.
func (c *cache) atIdent(dst, h []byte) (owner, rec []byte, err error) {
	v, err := c.idents().Peek(h) // valid in this transaction
	if err != nil || v == nil {
		return nil, nil, err
	}
	if len(v) == pkeyLen {
		rec, err := c.record(dst, v)
		return v, rec, err
	}
	return c.openHome(dst, h, v)
}

// openHome opens v, the value of home entry h, appending it to dst.
func (c *cache) openHome(dst, h, v []byte) (owner, rec []byte, err error) {
	plain, err := c.idents().OpenTo(dst, h, v)
	if err != nil {
		return nil, nil, err
	}
	if len(plain) <= pkeyLen {
		return nil, nil, c.corrupt(store.BucketIdents, h, "home entry without a record")
	}
	return plain[:pkeyLen], plain[pkeyLen:], nil
}

// corrupt names damage to the cache entry at key of bucket base.
func (c *cache) corrupt(base string, key []byte, why string) error {
	return &store.CorruptError{Bucket: store.CacheBucket(base, c.gen), Key: key, Err: errors.New(why)}
}

func (c *cache) unmarshal(pkey, raw []byte) (*profileRec, error) {
	rec := &profileRec{}
	if err := store.UnmarshalRecord("profiles", pkey, raw, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// getCarried is get for a snapshot's walks: nil, without following the
// pointer to its home, for a record a snapshot carries nothing of.
func (c *cache) getCarried(pkey []byte) (*profileRec, error) {
	plain, err := c.profiles().GetSealed(pkey)
	if err != nil || plain == nil {
		return nil, err
	}
	return c.carriedRec(pkey, plain)
}

// carriedRec is getCarried of plain, the opened profiles value of pkey.
func (c *cache) carriedRec(pkey, plain []byte) (*profileRec, error) {
	if len(plain) == 1+identLen+1 && plain[0] == homeTag && plain[1+identLen] == 0 {
		return nil, nil
	}
	raw, err := c.follow(pkey, plain)
	if err != nil {
		return nil, err
	}
	return c.unmarshal(pkey, raw)
}

// lookup returns the profile key an identifier hash maps to, or nil.
func (c *cache) lookup(hash []byte) ([]byte, error) {
	v, err := c.idents().Peek(hash)
	if err != nil || v == nil || len(v) == pkeyLen {
		return bytes.Clone(v), err
	}
	owner, _, err := c.openHome(nil, hash, v)
	return owner[:len(owner):len(owner)], err
}

// put writes rec at pkey, filtering its attributes to what the policy
// permits (the cache never holds more), indexing its identifiers and its
// expiry, and evicting the soonest-expiring profile when the cache is full.
// old is the record pkey held, nil for a new profile.
func (c *cache) put(pkey []byte, rec *profileRec, old *profileRec) error {
	if old != nil {
		if err := c.unindex(pkey, old, rec); err != nil {
			return err
		}
	} else if err := c.makeRoom(); err != nil {
		return err
	}
	if err := c.write(pkey, rec); err != nil {
		return err
	}
	if old == nil {
		return c.addCount(1)
	}
	return nil
}

// write stores rec at its home, and its index entries, filtered; it
// neither evicts nor counts (put does; a snapshot counts for itself). An
// identifier that another profile's record calls home is taken over: that
// record moves under its profile key first.
func (c *cache) write(pkey []byte, rec *profileRec) error {
	c.a.markDirty(pkey)
	rec.V = 1
	rec.Attrs = permittedAttrs(c.pol, rec)
	rec.Idents = distinct(rec.Idents)
	b, err := store.MarshalRecord(rec)
	if err != nil {
		return err
	}
	for _, h := range rec.Idents {
		if err := c.takeOver(h, pkey); err != nil {
			return err
		}
	}
	if len(rec.Idents) == 0 {
		err = c.profiles().PutSealed(pkey, b)
	} else {
		err = c.writeHomed(pkey, rec, b)
	}
	if err != nil {
		return err
	}
	if rec.Expires > 0 {
		return c.expiry().Put(expiryKey(rec.Expires, pkey), nil)
	}
	return nil
}

// writeHomed stores b, rec encoded, at its first identifier, a pointer to
// it at pkey, and pkey at its other identifiers.
func (c *cache) writeHomed(pkey []byte, rec *profileRec, b []byte) error {
	home := rec.Idents[0]
	if err := c.idents().PutSealed(home, slices.Concat(pkey, b)); err != nil {
		return err
	}
	if err := c.profiles().PutSealed(pkey, homePointer(home, rec)); err != nil {
		return err
	}
	for _, h := range rec.Idents[1:] {
		if err := c.idents().Put(h, pkey); err != nil {
			return err
		}
	}
	return nil
}

// takeOver makes identifier h free for pkey: a record of another profile
// homed at h moves under that profile's key, which keeps it whole.
func (c *cache) takeOver(h, pkey []byte) error {
	v, err := c.idents().Peek(h)
	if err != nil || v == nil || len(v) == pkeyLen {
		return err
	}
	owner, rec, err := c.openHome(nil, h, v)
	if err != nil || bytes.Equal(owner, pkey) {
		return err // its own home
	}
	return c.profiles().PutSealed(owner, rec)
}

// unindex removes the index entries of old that rec no longer has. An
// identifier the central has since given to another profile stays theirs.
func (c *cache) unindex(pkey []byte, old, rec *profileRec) error {
	for _, h := range old.Idents {
		if slices.ContainsFunc(rec.Idents, func(x []byte) bool { return bytes.Equal(x, h) }) {
			continue
		}
		owner, err := c.lookup(h)
		if err != nil {
			return err
		}
		if !bytes.Equal(owner, pkey) {
			continue
		}
		if err := c.idents().Delete(h); err != nil {
			return err
		}
	}
	if old.Expires > 0 && old.Expires != rec.Expires {
		return c.expiry().Delete(expiryKey(old.Expires, pkey))
	}
	return nil
}

// del removes the profile at pkey with its identifier and expiry entries.
func (c *cache) del(pkey []byte, rec *profileRec) error {
	c.a.markDirty(pkey)
	if err := c.unindex(pkey, rec, &profileRec{}); err != nil {
		return err
	}
	if err := c.profiles().Delete(pkey); err != nil {
		return err
	}
	return c.addCount(-1)
}

// distinct is idents without repeats, in first-seen order.
func distinct(idents [][]byte) [][]byte {
	out := idents[:0:0]
	for _, h := range idents {
		if !slices.ContainsFunc(out, func(x []byte) bool { return bytes.Equal(x, h) }) {
			out = append(out, h)
		}
	}
	return out
}

func (c *cache) count() uint64 { return c.tx.MetaUint(fmt.Sprint(metaCountBase, c.gen%2)) }

func (c *cache) addCount(d int) error {
	n := int64(c.count()) + int64(d)
	return c.tx.SetMetaUint(fmt.Sprint(metaCountBase, c.gen%2), uint64(max(n, 0)))
}

// makeRoom drops the profile that expires first when the cache is full.
func (c *cache) makeRoom() error {
	for c.count() >= c.a.cfg.MaxProfiles {
		k := firstKey(c.expiry())
		if k == nil {
			return fmt.Errorf("profile cache full (%d) and nothing expires: raise agent.max_profiles", c.count())
		}
		victim := k[8:]
		rec, err := c.get(victim)
		if err != nil {
			return err
		}
		if rec == nil { // an index entry left without its record
			if err := c.expiry().Delete(k); err != nil {
				return err
			}
			continue
		}
		c.a.stats.Evicted.Add(1)
		if err := c.del(victim, rec); err != nil {
			return err
		}
	}
	return nil
}

// firstKey returns a copy of the first key of b, or nil.
func firstKey(b *store.Bucket) []byte {
	var first []byte
	b.ForEach(nil, func(k, _ []byte) error {
		first = append([]byte(nil), k...)
		return errStop
	})
	return first
}

var errStop = errors.New("stop")

func expiryKey(at int64, pkey []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(pkey)), uint64(at))
	return append(k, pkey...)
}

// permittedAttrs keeps the attributes whose purpose the customer's
// decisions and the policy permit. A restriction (Art. 18) does not purge:
// it limits processing, not storage, so restricted attributes stay, unused,
// until it is lifted; Identify returns none of them meanwhile.
func permittedAttrs(p *consent.Policy, rec *profileRec) []Attribute {
	s := rec.subject()
	s.Restricted = false
	out := rec.Attrs[:0:0]
	for _, at := range rec.Attrs {
		if p.Permitted(at.Purpose, s) {
			out = append(out, at)
		}
	}
	return out
}
