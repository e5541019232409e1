package agent

import (
	"errors"
	"math"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/storeagent/storeagent/store/cborhead"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

// profileView is what Identify needs of a cached profile: who, the flags
// permission reads, the consent decisions, and the attributes of the one
// purpose asked about. readView fills it straight from the record's CBOR
// (the shape store.MarshalRecord writes for profileRec), without the
// reflection of the general decoder and without allocating for what the
// purpose will not see: Identify is the hot path of the till.
type profileView struct {
	ID          string
	Local       bool
	Restricted  bool
	Inactive    bool
	Provisional bool
	// Statuses are the customer's decisions on the policy's purposes:
	// Statuses[i] on pol.Purposes[i], "" where there is none. Decisions on
	// purposes the policy does not name play no part in an answer.
	Statuses []consent.Status
	Attrs    []Attribute // only those of the purpose read for

	buf [8]consent.Status // Statuses' room for a small policy
}

func (v *profileView) subject() consent.Subject {
	return consent.Subject{Known: true, Inactive: v.Inactive, Restricted: v.Restricted}
}

// permitted is consent.Policy.Permitted for the viewed customer.
func (v *profileView) permitted(pol *consent.Policy, purpose string) bool {
	basis, ok := pol.Basis(purpose)
	if !ok {
		return false
	}
	var st consent.Status
	if i := slices.IndexFunc(pol.Purposes, func(pu consent.Purpose) bool { return pu.Name == purpose }); i >= 0 {
		st = v.Statuses[i]
	}
	return consent.Permits(basis, st, v.subject())
}

// preferences is consent.Policy.Preferences for the viewed customer.
func (v *profileView) preferences(pol *consent.Policy) map[string]bool {
	out := make(map[string]bool, len(pol.Purposes))
	s := v.subject()
	for i, pu := range pol.Purposes {
		out[pu.Name] = consent.Permits(pu.Basis, v.Statuses[i], s)
	}
	return out
}

// statusRoom sets Statuses to n empty statuses.
func (v *profileView) statusRoom(n int) {
	if n <= len(v.buf) {
		v.Statuses = v.buf[:n]
		clear(v.Statuses)
	} else {
		v.Statuses = make([]consent.Status, n)
	}
}

// viewOf is the view of a fully decoded record: the general decoder's
// answer, used when readView hands a record back.
func viewOf(rec *profileRec, pol *consent.Policy, purpose string, v *profileView) {
	*v = profileView{ID: rec.ID, Local: rec.Local, Restricted: rec.Restricted, Inactive: rec.Inactive,
		Provisional: rec.Provisional}
	v.statusRoom(len(pol.Purposes))
	for i, pu := range pol.Purposes {
		v.Statuses[i] = rec.Consent[pu.Name].Status
	}
	for _, at := range rec.Attrs {
		if at.Purpose == purpose {
			v.Attrs = append(v.Attrs, at)
		}
	}
}

// errGeneral says a record holds something readView leaves to the general
// decoder (store.UnmarshalRecord): a field it does not know, a value of an
// unusual type, a duplicate key. It is never an answer by itself: the
// caller decodes the record again the general way, which either succeeds
// or names the corruption.
var errGeneral = errors.New("profile record needs the general decoder")

// readBufs recycles the buffers profiles are opened into.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// view reads the profile identifier hash maps to, for purpose, into v, its
// statuses aligned with pol (the policy the answer will be made under:
// pass the same); ok is false when hash is unknown. A profile homed at hash
// takes one lookup.
func (c *cache) view(hash []byte, pol *consent.Policy, purpose string, v *profileView) (ok bool, err error) {
	bp := readBufs.Get().(*[]byte)
	owner, raw, err := c.atIdent((*bp)[:0], hash)
	defer func() {
		clear(raw) // no customer's record lingers in the pool (one that outgrew the buffer is the GC's)
		readBufs.Put(bp)
	}()
	if err != nil || raw == nil {
		return false, err
	}
	if err := readView(raw, pol, purpose, v); err == nil {
		return true, nil
	}
	rec, err := c.unmarshal(owner, raw)
	if err != nil {
		return false, err
	}
	viewOf(rec, pol, purpose, v)
	return true, nil
}

// readView decodes the profile record raw into v, keeping only purpose's
// attributes. Names of purposes and statuses are taken from the policy and
// the consent vocabulary rather than allocated. Any error means: use the
// general decoder.
func readView(raw []byte, pol *consent.Policy, purpose string, v *profileView) error {
	*v = profileView{}
	v.statusRoom(len(pol.Purposes))
	r := cborReader{b: raw}
	n, err := r.expect(majorMap)
	if err != nil {
		return err
	}
	var seen uint32
	for range n {
		key, err := r.key(0, 10, &seen)
		if err != nil {
			return err
		}
		switch key {
		case 0: // V, a uint8
			var ver uint64
			if ver, err = r.expect(majorUint); ver > math.MaxUint8 {
				err = errGeneral
			}
		case 1:
			var b []byte
			if b, err = r.text(); err == nil {
				v.ID = string(b)
			}
		case 2:
			v.Local, err = r.bool()
		case 3: // Version
			_, err = r.expect(majorUint)
		case 4: // Expires
			_, err = r.int()
		case 5:
			v.Restricted, err = r.bool()
		case 6:
			v.Inactive, err = r.bool()
		case 7:
			err = readAttrs(&r, purpose, v)
		case 8: // Idents
			err = r.skipBytesArray()
		case 9:
			err = readConsent(&r, pol, v.Statuses)
		case 10:
			v.Provisional, err = r.bool()
		}
		if err != nil {
			return errGeneral
		}
	}
	if r.off != len(r.b) || seen&(1<<1) == 0 {
		return errGeneral
	}
	return nil
}

func readAttrs(r *cborReader, purpose string, v *profileView) error {
	n, err := r.expect(majorArray)
	if err != nil {
		return err
	}
	for range n {
		m, err := r.expect(majorMap)
		if err != nil {
			return err
		}
		var name, pur []byte
		var val any
		var valAt int
		var seen uint32
		for range m {
			key, err := r.key(1, 3, &seen)
			if err != nil {
				return err
			}
			switch key {
			case 1:
				name, err = r.text()
			case 2:
				pur, err = r.text()
			case 3:
				valAt = r.off
				err = r.skip(0)
			}
			if err != nil {
				return err
			}
		}
		if seen != 0b1110 {
			return errGeneral
		}
		if string(pur) != purpose {
			continue
		}
		vr := cborReader{b: r.b[:r.off], off: valAt}
		if val, err = vr.value(); err != nil {
			return err
		}
		v.Attrs = append(v.Attrs, Attribute{Name: string(name), Purpose: purpose, Value: val})
	}
	return nil
}

// readConsent reads the consent map into statuses, aligned with the
// policy's purposes.
func readConsent(r *cborReader, pol *consent.Policy, statuses []consent.Status) error {
	n, err := r.expect(majorMap)
	if err != nil || n == 0 {
		return errGeneral // the encoder omits an empty map
	}
	var seen uint64 // purposes read, by index: a key twice is the general decoder's error
	for range n {
		b, err := r.text()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(pol.Purposes, func(pu consent.Purpose) bool { return pu.Name == string(b) })
		if i >= 64 {
			return errGeneral
		}
		if i >= 0 && seen&(1<<i) != 0 {
			return errGeneral
		}
		m, err := r.expect(majorMap)
		if err != nil {
			return err
		}
		var st consent.Status
		var keys uint32
		for range m {
			key, err := r.key(1, 3, &keys)
			if err != nil {
				return err
			}
			switch key {
			case 1:
				b, err = r.text()
				st = statusName(b)
			case 2:
				_, err = r.int()
			case 3:
				_, err = r.text()
			}
			if err != nil {
				return err
			}
		}
		if keys != 0b1110 {
			return errGeneral
		}
		if i >= 0 {
			seen |= 1 << i
			statuses[i] = st
		}
	}
	return nil
}

func statusName(b []byte) consent.Status {
	for _, s := range [...]consent.Status{consent.Granted, consent.Denied, consent.Withdrawn, consent.Objected, consent.Pending} {
		if string(s) == string(b) {
			return s
		}
	}
	return consent.Status(b)
}

// CBOR major types (RFC 8949, section 3.1).
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// cborReader reads the definite-length CBOR the store's encoder writes.
// Every method returns errGeneral for anything else.
type cborReader struct {
	b   []byte
	off int
}

// head reads an item's initial byte and argument.
func (r *cborReader) head() (major byte, arg uint64, err error) {
	major, arg, rest, ok := cborhead.Read(r.b[r.off:])
	if !ok { // truncated, reserved, or indefinite length: not the store's
		return 0, 0, errGeneral
	}
	r.off = len(r.b) - len(rest)
	return major, arg, nil
}

// expect reads a head of the given major type; for strings, arrays and maps
// the argument is a length, bounded by what is left.
func (r *cborReader) expect(major byte) (uint64, error) {
	m, arg, err := r.head()
	if err != nil || m != major {
		return 0, errGeneral
	}
	if (major == majorArray || major == majorMap || major == majorBytes || major == majorText) && arg > uint64(len(r.b)-r.off) {
		return 0, errGeneral // every element takes at least one byte
	}
	return arg, nil
}

// key reads a map key that must be an integer from lo to hi (at most 31)
// not yet in seen, and adds it there.
func (r *cborReader) key(lo, hi uint64, seen *uint32) (uint64, error) {
	k, err := r.expect(majorUint)
	if err != nil || k < lo || k > hi || *seen&(1<<k) != 0 {
		return 0, errGeneral
	}
	*seen |= 1 << k
	return k, nil
}

// text reads a text string, which must be valid UTF-8 as the general
// decoder requires.
func (r *cborReader) text() ([]byte, error) {
	n, err := r.expect(majorText)
	if err != nil {
		return nil, err
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	if !utf8.Valid(s) {
		return nil, errGeneral
	}
	return s, nil
}

func (r *cborReader) bool() (bool, error) {
	m, arg, err := r.head()
	if err != nil || m != majorSimple || arg != 20 && arg != 21 {
		return false, errGeneral
	}
	return arg == 21, nil
}

// int reads a signed integer that fits an int64.
func (r *cborReader) int() (int64, error) {
	m, arg, err := r.head()
	if err != nil || arg > math.MaxInt64 || m != majorUint && m != majorNegInt {
		return 0, errGeneral
	}
	if m == majorNegInt {
		return -1 - int64(arg), nil
	}
	return int64(arg), nil
}

// skipBytesArray skips an array of byte strings.
func (r *cborReader) skipBytesArray() error {
	n, err := r.expect(majorArray)
	if err != nil {
		return err
	}
	for range n {
		l, err := r.expect(majorBytes)
		if err != nil {
			return err
		}
		r.off += int(l)
	}
	return nil
}

// skip skips one item, nested at most 16 deep (the store decoder's limit).
func (r *cborReader) skip(depth int) error {
	if depth > 16 {
		return errGeneral
	}
	start := r.off
	m, arg, err := r.head()
	if err != nil {
		return err
	}
	switch m {
	case majorBytes, majorText:
		if arg > uint64(len(r.b)-r.off) {
			return errGeneral
		}
		r.off += int(arg)
	case majorArray, majorMap:
		if arg > uint64(len(r.b)-r.off) {
			return errGeneral
		}
		items := arg
		if m == majorMap {
			items *= 2
		}
		for range items {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
	case majorTag:
		return r.skip(depth + 1)
	case majorSimple:
		if r.b[start]&0x1f == 24 && arg < 32 { // a one-byte simple value below 32 is not well-formed
			return errGeneral
		}
	}
	return nil
}

// value decodes the next item as store.UnmarshalRecord decodes a free-form
// value: text, unsigned, negative, bool and null here; any other (floats,
// arrays, maps, tags, big numbers) by the general decoder, item by item.
func (r *cborReader) value() (any, error) {
	start := r.off
	m, arg, err := r.head()
	if err != nil {
		return nil, err
	}
	switch {
	case m == majorText:
		r.off = start
		b, err := r.text()
		return string(b), err
	case m == majorUint:
		return arg, nil
	case m == majorNegInt && arg <= math.MaxInt64:
		return -1 - int64(arg), nil
	case m == majorSimple && (arg == 20 || arg == 21) && r.b[start]&0x1f < 24:
		return arg == 21, nil
	case m == majorSimple && arg == 22 && r.b[start]&0x1f < 24:
		return nil, nil
	}
	r.off = start
	if err := r.skip(0); err != nil {
		return nil, err
	}
	var v any
	if err := store.UnmarshalRecord("profiles", nil, r.b[start:r.off], &v); err != nil {
		return nil, errGeneral
	}
	return v, nil
}
