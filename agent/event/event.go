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
	"errors"
	"fmt"
	"strings"

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
