package wire

import (
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/fxamacker/cbor/v2"
)

// Kind names the kind of a Change on the wire.
type Kind string

// The change kinds of protocol v1.
const (
	KindProfile  Kind = "profile"
	KindConsent  Kind = "consent"
	KindErase    Kind = "erase"
	KindRestrict Kind = "restrict"
	KindPolicy   Kind = "policy"
)

// Change is one entry of a store's change stream.
//
// On the wire a change is one flat map, {v, seq, kind, ...} with the fields
// of its kind beside the header. In Go the kind-specific part is Body, one
// of *ProfileChange, *ConsentChange, *EraseChange, *RestrictChange or
// *PolicyChange, and Body.Kind() gives the kind. This shape was chosen over
// one struct holding the union of all fields because (1) "purposes" has a
// different type in a consent and a policy change, (2) with a union the
// encoder could not tell a false "restricted" from an absent one, and (3) a
// type switch on Body cannot read a field of another kind by mistake.
type Change struct {
	// Seq is the change's place in the store-wide sequence, from 1.
	Seq uint64
	// Body is the kind-specific part; its type gives the kind.
	Body Body
}

// Body is the kind-specific part of a Change. Only this package's types
// implement it.
type Body interface {
	// Kind names the body's kind on the wire.
	Kind() Kind
	validate() error
	// flat returns the value to encode: h and the body's fields in one map.
	flat(h changeHeader) any
	// required lists the body's keys that must be present on the wire.
	required() []string
}

// changeHeader is the part of the wire map shared by every kind.
type changeHeader struct {
	V    uint64 `cbor:"v"`
	Seq  uint64 `cbor:"seq"`
	Kind Kind   `cbor:"kind"`
}

var changeKeys = []string{"v", "seq", "kind"}

// Ident is an identifier as the central sends it: HMAC-SHA256(tenant key,
// kind ":" normalised value), never the clear value. It is an array so the
// store can use it as a map key.
type Ident [32]byte

// MarshalCBOR encodes id as a 32-byte byte string.
func (id Ident) MarshalCBOR() ([]byte, error) { return encMode.Marshal(id[:]) }

// UnmarshalCBOR accepts only a byte string of exactly 32 bytes: the
// library's default would also take an array of integers, or silently pad a
// short string with zeros.
func (id *Ident) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 || data[0]>>5 != 2 { // major type 2: byte string
		return errIdentShape
	}
	var b []byte
	if err := decMode.Unmarshal(data, &b); err != nil || len(b) != len(id) {
		return errIdentShape
	}
	copy(id[:], b)
	return nil
}

// String returns a short prefix of id, enough to tell idents apart in a
// log. Use hex.EncodeToString(id[:]) for the full value.
func (id Ident) String() string { return hex.EncodeToString(id[:4]) + "…" }

// LogValue implements slog.LogValuer, so logging an Ident shows only its
// short prefix.
func (id Ident) LogValue() slog.Value { return slog.StringValue(id.String()) }

// Attr is one attribute of a profile slice, held for one purpose.
type Attr struct {
	// Name is the attribute's name, such as "tier".
	Name string `cbor:"name"`
	// Purpose is the one purpose this copy of the attribute may serve.
	Purpose string `cbor:"purpose"`
	// Value is a free-form value as JSON could hold it.
	Value any `cbor:"value"`
}

// ProfileChange replaces the slice of a profile the store may hold.
type ProfileChange struct {
	// Profile is the central's id of the profile, never a clear identifier.
	Profile string `cbor:"profile"`
	// Idents are the keyed hashes a scan is matched against.
	Idents []Ident `cbor:"idents"`
	// Attrs are the attributes the store may hold, each for one purpose.
	Attrs []Attr `cbor:"attrs"`
	// Version is the profile's version at the central.
	Version uint64 `cbor:"version"`
	// Expires, in milliseconds since the Unix epoch, is when the agent
	// drops the slice unless a later change refreshes it.
	Expires int64 `cbor:"expires"`
}

// ConsentStatus is the state of a customer's consent for one purpose.
type ConsentStatus string

// The consent statuses of protocol v1.
const (
	StatusGranted   ConsentStatus = "granted"
	StatusDenied    ConsentStatus = "denied"
	StatusWithdrawn ConsentStatus = "withdrawn"
	StatusObjected  ConsentStatus = "objected"
)

// Basis is a lawful basis of processing (GDPR Art. 6).
type Basis string

// The lawful bases of protocol v1.
const (
	BasisConsent            Basis = "consent"
	BasisContract           Basis = "contract"
	BasisLegitimateInterest Basis = "legitimate_interest"
	BasisLegalObligation    Basis = "legal_obligation"
	BasisVitalInterest      Basis = "vital_interest"
	BasisPublicTask         Basis = "public_task"
)

// ConsentEntry is a profile's consent for one purpose.
type ConsentEntry struct {
	// Status is granted, denied, withdrawn or objected.
	Status ConsentStatus `cbor:"status"`
	// Basis is the lawful basis the purpose relies on.
	Basis Basis `cbor:"basis"`
	// At is when the status was set, in milliseconds since the Unix epoch;
	// a local change wins over a central one with an older At.
	At int64 `cbor:"at"`
}

// ConsentChange sets a profile's consent, keyed by purpose.
type ConsentChange struct {
	// Profile is the central's id of the profile.
	Profile string `cbor:"profile"`
	// Purposes maps a purpose to its consent, at least one.
	Purposes map[string]ConsentEntry `cbor:"purposes"`
}

// EraseChange erases a profile from the store.
type EraseChange struct {
	// Profile is the central's id of the profile to forget.
	Profile string `cbor:"profile"`
}

// RestrictChange restricts a profile's processing, or lifts the
// restriction.
type RestrictChange struct {
	// Profile is the central's id of the profile.
	Profile string `cbor:"profile"`
	// Restricted is true to restrict, false to lift the restriction.
	Restricted bool `cbor:"restricted"`
}

// PolicyPurpose declares a purpose and its lawful basis.
type PolicyPurpose struct {
	// Name is the purpose's id, such as "personalisation".
	Name string `cbor:"name"`
	// Basis is the lawful basis the purpose relies on.
	Basis Basis `cbor:"basis"`
}

// PolicyChange replaces the tenant's purpose policy.
type PolicyChange struct {
	// Purposes declares every purpose, each once.
	Purposes []PolicyPurpose `cbor:"purposes"`
	// Events maps an event name to the purpose it is captured under.
	Events map[string]string `cbor:"events"`
}

// Kind implements Body.
func (*ProfileChange) Kind() Kind { return KindProfile }

// Kind implements Body.
func (*ConsentChange) Kind() Kind { return KindConsent }

// Kind implements Body.
func (*EraseChange) Kind() Kind { return KindErase }

// Kind implements Body.
func (*RestrictChange) Kind() Kind { return KindRestrict }

// Kind implements Body.
func (*PolicyChange) Kind() Kind { return KindPolicy }

func (b *ProfileChange) flat(h changeHeader) any {
	return struct {
		changeHeader
		ProfileChange
	}{h, *b}
}

func (b *ConsentChange) flat(h changeHeader) any {
	return struct {
		changeHeader
		ConsentChange
	}{h, *b}
}

func (b *EraseChange) flat(h changeHeader) any {
	return struct {
		changeHeader
		EraseChange
	}{h, *b}
}

func (b *RestrictChange) flat(h changeHeader) any {
	return struct {
		changeHeader
		RestrictChange
	}{h, *b}
}

func (b *PolicyChange) flat(h changeHeader) any {
	return struct {
		changeHeader
		PolicyChange
	}{h, *b}
}

func (*ProfileChange) required() []string {
	return []string{"profile", "idents", "attrs", "version", "expires"}
}
func (*ConsentChange) required() []string  { return []string{"profile", "purposes"} }
func (*EraseChange) required() []string    { return []string{"profile"} }
func (*RestrictChange) required() []string { return []string{"profile", "restricted"} }
func (*PolicyChange) required() []string   { return []string{"purposes", "events"} }

// newBody returns an empty body of kind k, or nil for an unknown kind.
func newBody(k Kind) Body {
	switch k {
	case KindProfile:
		return new(ProfileChange)
	case KindConsent:
		return new(ConsentChange)
	case KindErase:
		return new(EraseChange)
	case KindRestrict:
		return new(RestrictChange)
	case KindPolicy:
		return new(PolicyChange)
	}
	return nil
}

// Validate checks c's seq and its body.
func (c Change) Validate() error {
	if c.Seq == 0 {
		return invalid("seq", "zero")
	}
	if c.Body == nil || isNilBody(c.Body) {
		return invalid("kind", "no body")
	}
	return c.Body.validate()
}

// isNilBody catches a typed nil pointer in Body, such as (*EraseChange)(nil).
func isNilBody(b Body) bool {
	switch x := b.(type) {
	case *ProfileChange:
		return x == nil
	case *ConsentChange:
		return x == nil
	case *EraseChange:
		return x == nil
	case *RestrictChange:
		return x == nil
	case *PolicyChange:
		return x == nil
	}
	return true
}

func (b *ProfileChange) validate() error {
	if !ValidID(b.Profile) {
		return invalid("profile", "not a valid id")
	}
	if b.Expires <= 0 {
		return invalid("expires", "not a positive unix time in ms")
	}
	seen := make(map[Ident]struct{}, len(b.Idents))
	for i, id := range b.Idents {
		if _, dup := seen[id]; dup {
			return invalid(index("idents", i), "duplicate")
		}
		seen[id] = struct{}{}
	}
	return validateAttrs(b.Attrs)
}

// validateAttrs requires each (name, purpose) pair once, with ids for both
// and a value JSON can hold.
func validateAttrs(attrs []Attr) error {
	type key struct{ name, purpose string }
	seen := make(map[key]struct{}, len(attrs))
	for i, a := range attrs {
		f := index("attrs", i)
		if err := validateIDs(f+".name", a.Name, f+".purpose", a.Purpose); err != nil {
			return err
		}
		if r := checkValue(a.Value, 0); r != "" {
			return invalid(f+".value", r)
		}
		k := key{a.Name, a.Purpose}
		if _, dup := seen[k]; dup {
			return invalid(f, "duplicate name and purpose")
		}
		seen[k] = struct{}{}
	}
	return nil
}

func (b *ConsentChange) validate() error {
	if !ValidID(b.Profile) {
		return invalid("profile", "not a valid id")
	}
	if len(b.Purposes) == 0 {
		return invalid("purposes", "empty")
	}
	for purpose, e := range b.Purposes {
		if !ValidID(purpose) {
			return invalid("purposes", "purpose is not a valid id")
		}
		if err := e.validate(); err != nil {
			return within("purposes", err)
		}
	}
	return nil
}

func (e ConsentEntry) validate() error {
	if !e.Status.Valid() {
		return invalid("status", "not a known status")
	}
	if !e.Basis.Valid() {
		return invalid("basis", "not a known basis")
	}
	if e.At <= 0 {
		return invalid("at", "not a positive unix time in ms")
	}
	return nil
}

// Valid reports whether s is a status of protocol v1.
func (s ConsentStatus) Valid() bool {
	switch s {
	case StatusGranted, StatusDenied, StatusWithdrawn, StatusObjected:
		return true
	}
	return false
}

// Valid reports whether b is a basis of protocol v1.
func (b Basis) Valid() bool {
	switch b {
	case BasisConsent, BasisContract, BasisLegitimateInterest,
		BasisLegalObligation, BasisVitalInterest, BasisPublicTask:
		return true
	}
	return false
}

func (b *EraseChange) validate() error {
	if !ValidID(b.Profile) {
		return invalid("profile", "not a valid id")
	}
	return nil
}

func (b *RestrictChange) validate() error {
	if !ValidID(b.Profile) {
		return invalid("profile", "not a valid id")
	}
	return nil
}

// validate requires unique purpose names with known bases, and every event
// to map to a declared purpose: an event under an undeclared purpose would
// have no basis to check.
func (b *PolicyChange) validate() error {
	declared := make(map[string]struct{}, len(b.Purposes))
	for i, p := range b.Purposes {
		f := index("purposes", i)
		if !ValidID(p.Name) {
			return invalid(f+".name", "not a valid id")
		}
		if !p.Basis.Valid() {
			return invalid(f+".basis", "not a known basis")
		}
		if _, dup := declared[p.Name]; dup {
			return invalid(f+".name", "duplicate")
		}
		declared[p.Name] = struct{}{}
	}
	for name, purpose := range b.Events {
		if !validEventName(name) {
			return invalid("events", "not a valid event name")
		}
		if _, ok := declared[purpose]; !ok {
			return invalid("events", "purpose not declared")
		}
	}
	return nil
}

// EncodeChange validates c and returns its deterministic CBOR. A central
// sends it signed: see SignChange.
func EncodeChange(c Change) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("encode change: %w", err)
	}
	return encodeChange(c)
}

// encodeChange encodes a change already validated.
func encodeChange(c Change) ([]byte, error) {
	h := changeHeader{V: ProtocolVersion, Seq: c.Seq, Kind: c.Body.Kind()}
	return encode("change", c.Body.flat(h), MaxChangeSize)
}

// decodeChange decodes and validates the CBOR of one change, signed alone or
// inside a ChangeSet. It is unexported because a change must not be trusted
// before its signature is checked: see VerifyChange.
func decodeChange(data []byte) (Change, error) {
	f, err := readFields(data, MaxChangeSize)
	if err != nil {
		return Change{}, err
	}
	if err := f.checkVersion(); err != nil {
		return Change{}, err
	}
	if err := f.require(changeKeys); err != nil {
		return Change{}, err
	}
	var h changeHeader
	if err := decodeHeader(f, &h); err != nil {
		return Change{}, err
	}
	body := newBody(h.Kind)
	if body == nil {
		return Change{}, &FieldError{Field: "kind", Reason: "not known to this version", Err: ErrUnknownKind}
	}
	if err := f.require(body.required()); err != nil {
		return Change{}, err
	}
	if err := decodeInto(data, body); err != nil {
		return Change{}, err
	}
	c := Change{Seq: h.Seq, Body: body}
	return c, c.Validate()
}

// decodeHeader reads seq and kind from the fields already read, which
// spares a pass over the whole change.
func decodeHeader(f fields, h *changeHeader) error {
	if err := decodeInto(f["seq"], &h.Seq); err != nil {
		return &FieldError{Field: "seq", Reason: "not an unsigned integer", Err: ErrMalformed}
	}
	if err := decodeInto(f["kind"], &h.Kind); err != nil {
		return &FieldError{Field: "kind", Reason: "not text", Err: ErrMalformed}
	}
	return nil
}

// ChangeSet answers a SyncRequest with a run of changes, or with one chunk
// of a snapshot.
type ChangeSet struct {
	// From and To bound the seqs of the changes. For a run, every change
	// has From <= seq <= To, in ascending order; an empty run says "nothing
	// from From on", with To >= From-1. For a snapshot, To is the seq the
	// whole snapshot stands at and every change has seq <= To.
	From uint64 `cbor:"from"`
	To   uint64 `cbor:"to"`
	// Snapshot marks a chunk of a snapshot: the agent replaces its whole
	// cache, at To, once the chunk with More false has arrived.
	Snapshot bool `cbor:"snapshot"`
	// More says another ChangeSet of the same reply follows.
	More bool `cbor:"more"`
	// Changes are the run's changes or the chunk's part of the snapshot.
	Changes []Change `cbor:"changes"`
}

var changeSetKeys = []string{"v", "from", "to", "snapshot", "more", "changes"}

// Validate checks every change and how the seqs sit in From..To. It does
// not require a run to be contiguous: the link detects gaps from its cursor,
// as it does on the change stream.
func (s ChangeSet) Validate() error { return s.validate(true) }

// validate checks the set; the decoder, which has validated each change
// already, passes false for changes.
func (s ChangeSet) validate(changes bool) error {
	if len(s.Changes) > MaxItems {
		return invalid("changes", "too many")
	}
	if !s.Snapshot && s.From == 0 {
		return invalid("from", "zero")
	}
	if s.From > 0 && s.To < s.From-1 {
		return invalid("to", "less than from minus one")
	}
	var prev uint64
	for i, c := range s.Changes {
		if changes {
			if err := c.Validate(); err != nil {
				return within(index("changes", i), err)
			}
		}
		if err := s.placeSeq(c.Seq, prev); err != nil {
			return within(index("changes", i), err)
		}
		prev = c.Seq
	}
	return nil
}

// placeSeq checks one change's seq against the set's bounds and, in a run,
// against the seq before it.
func (s ChangeSet) placeSeq(seq, prev uint64) error {
	if seq > s.To {
		return invalid("seq", "greater than to")
	}
	if s.Snapshot {
		return nil
	}
	if seq < s.From {
		return invalid("seq", "less than from")
	}
	if seq <= prev {
		return invalid("seq", "not ascending")
	}
	return nil
}

// changeSetWire is a ChangeSet on the wire. Its changes travel as raw CBOR
// so that each is measured against MaxChangeSize before it is decoded.
type changeSetWire struct {
	V uint64 `cbor:"v"`
	ChangeSet
	Changes []cbor.RawMessage `cbor:"changes"`
}

// EncodeChangeSet validates s and returns its deterministic CBOR. It fails
// with ErrTooLarge when a change exceeds MaxChangeSize or the set exceeds
// MaxChangeSetSize. A central sends it signed: see SignChangeSet.
func EncodeChangeSet(s ChangeSet) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("encode change set: %w", err)
	}
	w := changeSetWire{V: ProtocolVersion, ChangeSet: s, Changes: make([]cbor.RawMessage, len(s.Changes))}
	for i, c := range s.Changes {
		raw, err := encodeChange(c)
		if err != nil {
			return nil, fmt.Errorf("encode change set: %s: %w", index("changes", i), err)
		}
		w.Changes[i] = raw
	}
	return encode("change set", w, MaxChangeSetSize)
}

// decodeChangeSet decodes and validates the payload of a signed ChangeSet.
// It is unexported for the same reason as decodeChange.
func decodeChangeSet(data []byte) (ChangeSet, error) {
	var w changeSetWire
	if _, err := decodeMessage(data, MaxChangeSetSize, changeSetKeys, &w); err != nil {
		return ChangeSet{}, err
	}
	s := w.ChangeSet
	s.Changes = make([]Change, len(w.Changes))
	for i, raw := range w.Changes {
		c, err := decodeChange(raw)
		if err != nil {
			return ChangeSet{}, within(index("changes", i), err)
		}
		s.Changes[i] = c
	}
	return s, s.validate(false)
}
