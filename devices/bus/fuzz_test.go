package bus

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/storeagent/storeagent/agent/event"
)

// The decoders read bytes any device, or anyone on the store's broker, may
// send. Each fuzz test checks that nothing panics, that a refusal carries
// a known code and a reason made of limits and field names only, and that
// what is accepted keeps every rule of its message. Seeds are in
// testdata/fuzz/FuzzDecode*.

func FuzzDecodeSighting(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, sh, err := decodeSighting(b)
		if err != nil {
			checkRefusal(t, err, sightingFields)
			return
		}
		checkAccepted(t, b, sightingFields)
		switch {
		case !sh.seen["rssi"] || s.RSSI < -127 || s.RSSI > 20:
			t.Fatalf("rssi %d accepted", s.RSSI)
		case s.BeaconID != "" && !beaconIDPattern.MatchString(s.BeaconID), sh.seen["beaconId"] && s.BeaconID == "":
			t.Fatalf("beaconId %q accepted", s.BeaconID)
		case s.At < 0 || s.At > maxTime, sh.seen["at"] && s.At == 0:
			t.Fatalf("at %d accepted", s.At)
		case sh.seen["anonymousId"] && !event.ValidUUID(s.AnonymousID):
			t.Fatalf("anonymousId %q accepted", s.AnonymousID)
		}
	})
}

func FuzzDecodeIdentify(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, sh, err := decodeIdentify(b)
		if err != nil {
			checkRefusal(t, err, identifyFields)
			return
		}
		checkAccepted(t, b, identifyFields)
		scan := r.Scan != ""
		typed := r.Kind != "" && sh.seen["value"]
		switch {
		case !requestIDPattern.MatchString(r.RequestID) || r.RequestID != sh.requestID:
			t.Fatalf("requestId %q accepted", r.RequestID)
		case scan == typed || (scan && (sh.seen["kind"] || sh.seen["value"])):
			t.Fatalf("scan %v and kind/value %v accepted together or neither", scan, typed)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, sh, err := decodeEvent(b)
		if err != nil {
			checkRefusal(t, err, eventFields)
			return
		}
		checkAccepted(t, b, eventFields)
		switch {
		case sh.seen["requestId"] && !requestIDPattern.MatchString(r.RequestID):
			t.Fatalf("requestId %q accepted", r.RequestID)
		case len(r.UserID) > maxIDLen || len(r.AnonymousID) > maxIDLen:
			t.Fatal("over-long id accepted")
		case r.Timestamp < 0 || r.Timestamp > maxTime:
			t.Fatalf("timestamp %d accepted", r.Timestamp)
		}
		checkValues(t, r.Properties, 2)
		checkValues(t, r.Traits, 2)
		// What is accepted must make an event that leaves the outbox: it
		// encodes (or is refused as too large) and decodes again.
		ev := &event.Event{
			MessageID: event.NewID(), Type: event.Track, Event: "Fuzzed",
			Properties: r.Properties, Traits: r.Traits,
			Context: event.Context{Store: "s1", Agent: "a1", Purpose: "analytics"},
		}
		enc, err := ev.Encode()
		if errors.Is(err, event.ErrTooLarge) {
			return
		}
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		if _, err := event.Decode(enc); err != nil {
			t.Fatalf("accepted event does not decode again: %v", err)
		}
	})
}

func FuzzDecodeConsent(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := decodeConsent(b)
		if err != nil {
			checkRefusal(t, err, consentFields)
			return
		}
		checkAccepted(t, b, consentFields)
		switch {
		case !requestIDPattern.MatchString(r.RequestID):
			t.Fatalf("requestId %q accepted", r.RequestID)
		case r.UserID == "" || len(r.UserID) > maxIDLen || r.Purpose == "" || len(r.Purpose) > maxNameLen:
			t.Fatalf("userId or purpose out of bounds accepted")
		case r.Status != "granted" && r.Status != "denied" && r.Status != "withdrawn" && r.Status != "objected":
			t.Fatalf("status %q accepted", r.Status)
		case r.At < 0 || r.At > maxTime:
			t.Fatalf("at %d accepted", r.At)
		}
	})
}

// checkRefusal: a rejection with a known code, whose reason was made only
// of limits and the message's own field names: nothing the device sent.
func checkRefusal(t *testing.T, err error, fields []string) {
	t.Helper()
	r, ok := errors.AsType[*rejection](err)
	if !ok {
		t.Fatalf("%T %v is not a rejection", err, err)
	}
	if !slices.Contains(codes, r.code) || r.reason == "" {
		t.Fatalf("code %q reason %q", r.code, r.reason)
	}
	for _, a := range r.args {
		switch a := a.(type) {
		case int:
		case string:
			if !slices.Contains(fields, a) {
				t.Fatalf("reason %q carries %q, not a field name", r.reason, a)
			}
		default:
			t.Fatalf("reason %q carries a %T", r.reason, a)
		}
	}
}

// checkAccepted: one JSON object within MaxPayload, with only the
// message's fields, none null.
func checkAccepted(t *testing.T, b []byte, fields []string) {
	t.Helper()
	if len(b) > MaxPayload || !json.Valid(b) {
		t.Fatalf("accepted %d bytes that are too many or not JSON", len(b))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("accepted a payload that is not an object: %v", err)
	}
	for k, v := range top {
		if !slices.Contains(fields, k) || string(v) == "null" {
			t.Fatalf("accepted field %q = %s", k, v)
		}
	}
}

// checkValues: a map of properties or traits at the given depth holds only
// what the event codec takes back, within the depth and member limits.
func checkValues(t *testing.T, v any, depth int) {
	t.Helper()
	switch v := v.(type) {
	case nil, string, bool, int64:
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			t.Fatalf("number %v accepted", v)
		}
	case map[string]any:
		if depth > maxDepth || len(v) > maxMembers {
			t.Fatalf("object of %d members at depth %d accepted", len(v), depth)
		}
		for _, e := range v {
			checkValues(t, e, depth+1)
		}
	case []any:
		if depth > maxDepth || len(v) > maxMembers {
			t.Fatalf("array of %d elements at depth %d accepted", len(v), depth)
		}
		for _, e := range v {
			checkValues(t, e, depth+1)
		}
	default:
		t.Fatalf("value of type %T accepted", v)
	}
}
