// Package event is the shape of what the store tells the central: an event
// in the Segment Spec's fields (track, identify, alias), its messageId
// (UUIDv7), its CBOR encoding, and how identity is stripped from it.
//
// It owns no I/O. It must never leave identity in an event it was asked to
// strip: userId, traits, and every identifying property go, and the
// anonymousId is replaced by a fresh one that links to nothing.
//
// The invariants its tests protect: 4 (stripped events carry no identity)
// and the wire's size limit of 32 KiB per event.
package event

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// MaxSize is the largest encoded event: the limit Segment and RudderStack
// apply, and PROTOCOL.md's.
const MaxSize = 32 << 10

// Types of event (Segment Spec).
const (
	Track    = "track"
	Identify = "identify"
	Alias    = "alias"
)

// Event is one Segment-compatible event. Field names on the wire are the
// Segment Spec's, so a CBOR-to-JSON step yields what a Segment-compatible
// collector takes.
type Event struct {
	MessageID         string         `cbor:"messageId" json:"messageId"`
	Type              string         `cbor:"type" json:"type"`
	Event             string         `cbor:"event,omitempty" json:"event,omitempty"`
	UserID            string         `cbor:"userId,omitempty" json:"userId,omitempty"`
	AnonymousID       string         `cbor:"anonymousId,omitempty" json:"anonymousId,omitempty"`
	PreviousID        string         `cbor:"previousId,omitempty" json:"previousId,omitempty"`
	OriginalTimestamp int64          `cbor:"originalTimestamp" json:"originalTimestamp"`
	Properties        map[string]any `cbor:"properties,omitempty" json:"properties,omitempty"`
	Traits            map[string]any `cbor:"traits,omitempty" json:"traits,omitempty"`
	Context           Context        `cbor:"context" json:"context"`
}

// Context says where and under which purpose and consent an event was made.
type Context struct {
	Store   string  `cbor:"store" json:"store"`
	Agent   string  `cbor:"agent" json:"agent"`
	Device  string  `cbor:"device" json:"device"`
	Purpose string  `cbor:"purpose" json:"purpose"`
	Consent Consent `cbor:"consent" json:"consent"`
}

// Consent is Segment's consent object.
type Consent struct {
	CategoryPreferences map[string]bool `cbor:"categoryPreferences" json:"categoryPreferences"`
}

var (
	enc cbor.EncMode
	dec cbor.DecMode
)

func init() {
	var err error
	if enc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	dec, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  MaxValueDepth + 4, // event, properties, then the value
		MaxArrayElements: MaxItems,
		MaxMapPairs:      MaxItems,
		DefaultMapType:   mapStringAny,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Encode returns the event's deterministic CBOR. It fails with ErrBadValue
// for a property or trait the wire cannot carry, and with ErrTooLarge past
// MaxSize.
func (e *Event) Encode() ([]byte, error) {
	if err := checkValues("properties", e.Properties); err != nil {
		return nil, err
	}
	if err := checkValues("traits", e.Traits); err != nil {
		return nil, err
	}
	if e.Context.Consent.CategoryPreferences == nil {
		// The wire's consent object is a map, never null: one form for
		// "no purposes known", so an event has one canonical encoding.
		e.Context.Consent.CategoryPreferences = map[string]bool{}
	}
	b, err := enc.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("event of %d bytes: %w", len(b), ErrTooLarge)
	}
	return b, nil
}

// Decode reads an event encoded by Encode.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("event of %d bytes: %w", len(b), ErrTooLarge)
	}
	var e Event
	if err := dec.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &e, nil
}

// ErrTooLarge is returned when an event encodes to more than MaxSize bytes.
var ErrTooLarge = errors.New("event too large")

// Strip removes identity: userId, previousId, traits, and every property
// whose name (case-insensitive) is in identifying, and gives the event a
// fresh anonymousId that links to nothing else. The purpose and consent
// context stay: they are what the central needs to see it was stripped.
func (e *Event) Strip(identifying []string) {
	e.UserID, e.PreviousID, e.Traits = "", "", nil
	e.AnonymousID = NewID()
	for k := range e.Properties {
		if isIdentifying(k, identifying) {
			delete(e.Properties, k)
		}
	}
	if len(e.Properties) == 0 {
		e.Properties = nil
	}
}

func isIdentifying(name string, identifying []string) bool {
	for _, id := range identifying {
		if strings.EqualFold(name, id) {
			return true
		}
	}
	return false
}

// DefaultIdentifying are the property names stripped with identity when a
// config names none.
var DefaultIdentifying = []string{
	"email", "phone", "name", "first_name", "last_name", "firstName", "lastName",
	"address", "street", "postal_code", "postalCode", "birthday", "loyalty", "loyalty_number",
	"loyaltyNumber", "card", "card_number", "userId", "user_id",
}

// idGen makes UUIDv7s that increase within one process even when the clock
// stands still or steps back (RFC 9562 section 6.2, method 1: the 12-bit
// rand_a field is a counter seeded at random each new millisecond).
type idGen struct {
	mu     sync.Mutex
	lastMs int64
	seq    uint16
}

var gen idGen

// NewID returns a new UUIDv7 in its text form. messageId uses it, and so
// does every anonymous id.
func NewID() string { return gen.next(time.Now().UnixMilli()) }

func (g *idGen) next(ms int64) string {
	var b [16]byte
	rand.Read(b[6:])
	g.mu.Lock()
	if ms > g.lastMs {
		g.lastMs = ms
		g.seq = binary.BigEndian.Uint16(b[6:8]) & 0x7ff // leave room to count up
	} else {
		g.seq++
		if g.seq > 0xfff {
			g.lastMs++ // counter overflow: borrow the next millisecond
			g.seq = 0
		}
	}
	ms, seq := g.lastMs, g.seq
	g.mu.Unlock()
	binary.BigEndian.PutUint64(b[0:8], uint64(ms)<<16)
	b[6] = 0x70 | byte(seq>>8)
	b[7] = byte(seq)
	b[8] = 0x80 | b[8]&0x3f
	return format(b)
}

func format(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// ValidID reports whether s is a UUIDv7 in lower-case canonical text, the
// only messageId the wire accepts (a POS bringing its own id for an
// idempotent retry must make a v7).
func ValidID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s[14] == '7' && strings.IndexByte("89ab", s[19]) >= 0
}

// ValidName reports whether s may be an id on the wire (store, agent,
// device, purpose): 1 to 64 of A-Z a-z 0-9 _ -.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
