package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/storeagent/storeagent/store/cborhead"
)

// DecodeEventBatchIDs is DecodeEventBatch for a reader that needs only the
// batch's header and its events' messageIds: a central that deduplicates
// and keeps the payload as received. It accepts and refuses exactly the
// payloads DecodeEventBatch does, with the same errors: every event is
// checked against every rule. It returns the header with Events nil, and
// each event's messageId as its 16 bytes, in batch order.
//
// An event in the form agents send (known keys, each once, values of
// their types) is checked in place, without building its Go value; any
// other event goes through DecodeEvent's path, which judges it and names
// what is wrong. The fuzz targets hold the two paths to the same verdicts.
func DecodeEventBatchIDs(data []byte) (EventBatch, [][16]byte, error) {
	b, ids, err := decodeEventBatchIDs(data)
	if err != nil {
		return EventBatch{}, nil, fmt.Errorf("decode event batch: %w", err)
	}
	return b, ids, nil
}

// eventBatchRaw is how both decoders read an EventBatch: eventBatchWire
// with its events pointing into the input rather than copied out of it.
type eventBatchRaw struct {
	V uint64 `cbor:"v"`
	EventBatch
	Events []rawField `cbor:"events"`
}

func decodeEventBatchIDs(data []byte) (EventBatch, [][16]byte, error) {
	if b, ids, ok := scanEventBatch(data); ok {
		return b, ids, nil
	}
	var w eventBatchRaw
	if _, err := decodeMessage(data, MaxEventBatchSize, eventBatchKeys, &w); err != nil {
		return EventBatch{}, nil, err
	}
	b := w.EventBatch
	b.Events = nil
	ids := make([][16]byte, len(w.Events))
	for i, raw := range w.Events {
		if id, ok := checkEvent(raw); ok {
			ids[i] = id
			continue
		}
		e, err := decodeValid[Event](raw, MaxEventSize, eventKeys)
		if err != nil {
			return EventBatch{}, nil, within(index("events", i), err)
		}
		ids[i], _ = parseUUID([]byte(e.MessageID)) // Validate checked it
	}
	return b, ids, b.validateHeader(len(ids))
}

// scanEventBatch reads a batch in the form agents send (known keys, each
// once, values of their types, every event taken by scanEvent) in place.
// It reports false for anything else, valid or not: the caller then
// decodes the batch with the library. What it takes, decodeEventBatch
// accepts with the same header and messageIds; the depth of what it takes
// stays within MaxNesting, and its counts within MaxItems.
func scanEventBatch(data []byte) (b EventBatch, ids [][16]byte, ok bool) {
	if len(data) > MaxEventBatchSize {
		return b, nil, false
	}
	major, n, p, ok := cborhead.Read(data)
	if !ok || major != 5 || n != uint64(len(eventBatchKeys)) {
		return b, nil, false
	}
	var seen [7]bool // v, agent, store, first, last, sentAt, events
	for range n {
		var key, s []byte
		if key, p, ok = asciiText(p); !ok {
			return b, nil, false
		}
		i := slices.Index(eventBatchKeys, string(key))
		if i < 0 || seen[i] {
			return b, nil, false
		}
		seen[i] = true
		var u uint64
		switch key := string(key); key {
		case "agent", "store":
			if s, p, ok = asciiText(p); !ok || !ValidIDBytes(s) {
				return b, nil, false
			}
			if key == "agent" {
				b.Agent = string(s)
			} else {
				b.Store = string(s)
			}
		case "v", "first", "last", "sentAt":
			if major, u, p, ok = cborhead.Read(p); !ok || major != 0 || u > math.MaxInt64 {
				return b, nil, false
			}
			switch key {
			case "v":
				ok = u == ProtocolVersion
			case "first":
				b.First = u
			case "last":
				b.Last = u
			case "sentAt":
				b.SentAt = int64(u)
			}
		case "events":
			if major, u, p, ok = cborhead.Read(p); !ok || major != 4 || u == 0 || u > MaxItems || u > uint64(len(p)) {
				return b, nil, false
			}
			ids = make([][16]byte, u)
			for j := range ids {
				if ids[j], p, ok = scanEvent(p); !ok {
					return b, nil, false
				}
			}
		}
		if !ok {
			return b, nil, false
		}
	}
	if len(p) != 0 || b.validateHeader(len(ids)) != nil {
		return EventBatch{}, nil, false
	}
	return b, ids, true
}

// Keys of an event and of its context, as bits of a set.
const (
	keyMessageID = 1 << iota
	keyType
	keyEvent
	keyUserID
	keyAnonymousID
	keyPreviousID
	keyOriginalTimestamp
	keyProperties
	keyTraits
	keyContext
)

// eventKeyBit is the bit of an event's key, 0 for a key it does not have.
func eventKeyBit(key []byte) int {
	switch string(key) {
	case "messageId":
		return keyMessageID
	case "type":
		return keyType
	case "event":
		return keyEvent
	case "userId":
		return keyUserID
	case "anonymousId":
		return keyAnonymousID
	case "previousId":
		return keyPreviousID
	case "originalTimestamp":
		return keyOriginalTimestamp
	case "properties":
		return keyProperties
	case "traits":
		return keyTraits
	case "context":
		return keyContext
	}
	return 0
}

// checkEvent checks one encoded event in place against the decoder's rules
// and Event.Validate, and returns its messageId. It reports false for
// anything it does not take, valid or not: the caller then decodes the
// event in full. Whatever it takes, DecodeEvent accepts with the same
// messageId. It relies on the batch being well-formed CBOR already
// (decodeMessage checked it: lengths, tags, indefinite lengths, nesting),
// yet never reads out of bounds whatever it is given.
func checkEvent(raw []byte) (id [16]byte, ok bool) {
	id, rest, ok := scanEvent(raw)
	return id, ok && len(rest) == 0
}

// scanEvent is checkEvent for the event at the start of p: it returns
// what follows the event too.
func scanEvent(raw []byte) (id [16]byte, rest []byte, ok bool) {
	major, n, p, ok := cborhead.Read(raw)
	if !ok || major != 5 {
		return id, nil, false
	}
	var (
		seen           int // the keys read, each taken: any refusal returns at once
		typ, eventName []byte
	)
	for range n {
		var key []byte
		if key, p, ok = asciiText(p); !ok {
			return id, nil, false
		}
		bit := eventKeyBit(key)
		if bit == 0 || seen&bit != 0 {
			return id, nil, false // unknown or repeated: the full decoder judges
		}
		seen |= bit
		var s []byte
		switch bit {
		case keyMessageID:
			if s, p, ok = asciiText(p); ok {
				id, ok = parseUUID(s)
			}
		case keyType:
			typ, p, ok = asciiText(p)
		case keyEvent:
			eventName, p, ok = asciiText(p)
		case keyUserID, keyAnonymousID, keyPreviousID:
			_, p, ok = nonEmptyText(p)
		case keyOriginalTimestamp:
			var ts uint64
			major, ts, p, ok = cborhead.Read(p)
			ok = ok && major == 0 && ts > 0 && ts <= math.MaxInt64
		case keyProperties, keyTraits:
			p, ok = checkFreeMap(p)
		case keyContext:
			p, ok = checkContext(p)
		}
		if !ok {
			return id, nil, false
		}
	}
	has := func(bit int) bool { return seen&bit != 0 }
	if len(raw)-len(p) > MaxEventSize || !has(keyContext) || !has(keyOriginalTimestamp) || !has(keyMessageID) {
		return id, nil, false
	}
	event, userID := has(keyEvent), has(keyUserID)
	switch string(typ) {
	case string(EventTrack):
		ok = event && validEventNameBytes(eventName)
	case string(EventIdentify):
		ok = !event
	case string(EventAlias):
		ok = !event && has(keyPreviousID) && userID
	default:
		ok = false
	}
	return id, p, ok && (userID || has(keyAnonymousID))
}

// checkContext checks an event's context in place: its four ids and, if
// present, its consent, nothing else.
func checkContext(p []byte) ([]byte, bool) {
	major, n, p, ok := cborhead.Read(p)
	if !ok || major != 5 {
		return nil, false
	}
	var seen [5]bool
	names := [...]string{"store", "agent", "device", "purpose", "consent"}
	for range n {
		var key, s []byte
		if key, p, ok = asciiText(p); !ok {
			return nil, false
		}
		i := 0
		for i < len(names) && names[i] != string(key) {
			i++
		}
		if i == len(names) || seen[i] {
			return nil, false
		}
		seen[i] = true
		if i == 4 {
			p, ok = checkConsent(p)
		} else {
			s, p, ok = asciiText(p)
			ok = ok && ValidIDBytes(s)
		}
		if !ok {
			return nil, false
		}
	}
	return p, seen[0] && seen[1] && seen[2] && seen[3]
}

// checkConsent checks {categoryPreferences: {purpose: bool}}.
func checkConsent(p []byte) ([]byte, bool) {
	major, n, p, ok := cborhead.Read(p)
	if !ok || major != 5 || n != 1 {
		return nil, false
	}
	var key []byte
	if key, p, ok = asciiText(p); !ok || string(key) != "categoryPreferences" {
		return nil, false
	}
	if major, n, p, ok = cborhead.Read(p); !ok || major != 5 || n > maxInPlaceMap {
		return nil, false
	}
	var keys [maxInPlaceMap][]byte
	for i := range n {
		var purpose []byte
		if purpose, p, ok = asciiText(p); !ok || !ValidIDBytes(purpose) || repeated(keys[:i], purpose) {
			return nil, false
		}
		keys[i] = purpose
		if len(p) == 0 || (p[0] != 0xf4 && p[0] != 0xf5) { // false, true
			return nil, false
		}
		p = p[1:]
	}
	return p, true
}

// maxInPlaceMap bounds the maps checked in place: their keys are compared
// pairwise for repeats. Larger maps go to the full decoder.
const maxInPlaceMap = 32

func repeated(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// checkFreeMap checks a map of free-form values (properties, traits) as
// checkMap does the decoded map: the map is one level of nesting.
func checkFreeMap(p []byte) ([]byte, bool) {
	if len(p) == 0 || p[0]>>5 != 5 {
		return nil, false
	}
	return checkFreeValue(p, 0)
}

// checkFreeValue checks one free-form value at depth (checkValue's depth:
// a container at MaxValueNesting or deeper is refused) and returns what
// follows it. It takes what decodes to nil, bool, int64, finite float64,
// string, []byte, []any and map[string]any without repeated keys.
func checkFreeValue(p []byte, depth int) ([]byte, bool) {
	if len(p) == 0 {
		return nil, false
	}
	switch p[0] {
	case 0xf4, 0xf5, 0xf6: // false, true, null
		return p[1:], true
	case 0xf9: // half
		if len(p) < 3 || p[1]&0x7c == 0x7c {
			return nil, false
		}
		return p[3:], true
	case 0xfa: // single
		if len(p) < 5 || checkFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(p[1:])))) != "" {
			return nil, false
		}
		return p[5:], true
	case 0xfb: // double
		if len(p) < 9 || checkFloat(math.Float64frombits(binary.BigEndian.Uint64(p[1:]))) != "" {
			return nil, false
		}
		return p[9:], true
	}
	major, n, rest, ok := cborhead.Read(p)
	if !ok {
		return nil, false
	}
	switch major {
	case 0, 1:
		return rest, n <= math.MaxInt64
	case 2:
		if n > uint64(len(rest)) {
			return nil, false
		}
		return rest[n:], true
	case 3:
		_, rest, ok = text(p)
		return rest, ok
	case 4:
		if depth >= MaxValueNesting {
			return nil, false
		}
		for range n {
			if rest, ok = checkFreeValue(rest, depth+1); !ok {
				return nil, false
			}
		}
		return rest, true
	case 5:
		if depth >= MaxValueNesting || n > maxInPlaceMap {
			return nil, false
		}
		var keys [maxInPlaceMap][]byte
		for i := range n {
			var k []byte
			if k, rest, ok = text(rest); !ok || repeated(keys[:i], k) {
				return nil, false
			}
			keys[i] = k
			if rest, ok = checkFreeValue(rest, depth+1); !ok {
				return nil, false
			}
		}
		return rest, true
	}
	return nil, false // tags, other simple values
}

// text reads a text string of valid UTF-8.
func text(p []byte) (s, rest []byte, ok bool) {
	major, n, rest, ok := cborhead.Read(p)
	if !ok || major != 3 || n > uint64(len(rest)) || !utf8.Valid(rest[:n]) {
		return nil, nil, false
	}
	return rest[:n], rest[n:], true
}

// asciiText reads a text string without checking its UTF-8, for a caller
// that takes it only when it matches an ASCII name or passes a check that
// admits ASCII alone (ValidIDBytes, parseUUID, validEventNameBytes).
func asciiText(p []byte) (s, rest []byte, ok bool) {
	major, n, rest, ok := cborhead.Read(p)
	if !ok || major != 3 || n > uint64(len(rest)) {
		return nil, nil, false
	}
	return rest[:n], rest[n:], true
}

func nonEmptyText(p []byte) (s, rest []byte, ok bool) {
	s, rest, ok = text(p)
	return s, rest, ok && len(s) > 0
}

// ValidIDBytes is ValidID for bytes.
func ValidIDBytes(s []byte) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// validEventNameBytes is validEventName for bytes.
func validEventNameBytes(s []byte) bool {
	if len(s) == 0 || len(s) > maxEventNameLen || !utf8.Valid(s) {
		return false
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if unicode.IsControl(r) {
			return false
		}
		s = s[size:]
	}
	return true
}

// parseUUID reads a UUIDv7 in lowercase canonical text, as event.ValidID
// defines it, into its 16 bytes.
func parseUUID(s []byte) (id [16]byte, ok bool) {
	if len(s) != 36 || s[14] != '7' || !(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b') {
		return id, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return id, false
			}
			i++
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
