package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"slices"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
)

// Limits of a request payload. The depth and member limits keep what is
// accepted within what the event codec decodes again (16 levels, 4096
// members), so that an accepted event can always leave the outbox.
const (
	// MaxPayload is the largest request payload, in bytes.
	MaxPayload = 16 << 10
	maxDepth   = 8   // nesting of objects and arrays, the payload itself being 1
	maxMembers = 256 // members of one object or elements of one array
	// maxTime bounds times in ms since the epoch (year 2286): past it a
	// number is not a time but a mistake.
	maxTime  = 9_999_999_999_999
	maxIDLen = 128 // userId, anonymousId: the agent's bound
)

var (
	requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	beaconIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
)

// sighting is the payload of .../sightings.
type sighting struct {
	BeaconID    string `json:"beaconId"`    // optional: the beacon or zone seen
	RSSI        int    `json:"rssi"`        // required: dBm, -127 to 20
	At          int64  `json:"at"`          // optional: ms since the epoch, device clock
	AnonymousID string `json:"anonymousId"` // optional: a UUID, never a customer's identifier
}

// identifyRequest is the payload of .../identify. The purpose is not part
// of it: the device's configuration says which purpose it serves.
type identifyRequest struct {
	RequestID string `json:"requestId"`
	Scan      string `json:"scan"`
	Kind      string `json:"kind"`
	Value     string `json:"value"`
}

// eventRequest is the payload of .../events: the local API's capture
// request, without device (the topic says) or purpose (the device's
// configuration and the policy say).
type eventRequest struct {
	RequestID   string         `json:"requestId"`
	MessageID   string         `json:"messageId"`
	Type        string         `json:"type"`
	Event       string         `json:"event"`
	UserID      string         `json:"userId"`
	AnonymousID string         `json:"anonymousId"`
	Timestamp   int64          `json:"timestamp"`
	Properties  map[string]any `json:"properties"`
	Traits      map[string]any `json:"traits"`
}

// consentRequest is the payload of .../consent.
type consentRequest struct {
	RequestID string `json:"requestId"`
	UserID    string `json:"userId"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
	At        int64  `json:"at"`
}

var (
	sightingFields = []string{"beaconId", "rssi", "at", "anonymousId"}
	identifyFields = []string{"requestId", "scan", "kind", "value"}
	eventFields    = []string{"requestId", "messageId", "type", "event", "userId", "anonymousId", "timestamp", "properties", "traits"}
	consentFields  = []string{"requestId", "userId", "purpose", "status", "at"}
)

// shape is what the structural pass learnt of a payload.
type shape struct {
	seen      map[string]bool // top-level keys present
	requestID string          // the requestId, if present and well formed, even in a refused payload
}

func decodeSighting(b []byte) (sighting, shape, error) {
	var s sighting
	sh, err := decodeStrict(b, sightingFields, &s)
	if err != nil {
		return s, sh, err
	}
	switch {
	case !sh.seen["rssi"]:
		return s, sh, reject(CodeBadRequest, "rssi is required")
	case s.RSSI < -127 || s.RSSI > 20:
		return s, sh, reject(CodeBadRequest, "rssi must be -127 to 20 dBm")
	case sh.seen["beaconId"] && !beaconIDPattern.MatchString(s.BeaconID):
		return s, sh, reject(CodeBadRequest, "beaconId must be 1 to 64 of A-Z a-z 0-9 _ . : -")
	case sh.seen["at"] && (s.At <= 0 || s.At > maxTime):
		return s, sh, reject(CodeBadRequest, "at must be a time in ms since the epoch")
	// An app's pseudonym, or an anonymousId the agent gave: nothing else
	// may stand for a shopper in a sighting.
	case sh.seen["anonymousId"] && !event.ValidUUID(s.AnonymousID):
		return s, sh, reject(CodeBadRequest, "anonymousId must be a UUID in lower-case canonical form")
	}
	return s, sh, nil
}

func decodeIdentify(b []byte) (identifyRequest, shape, error) {
	var r identifyRequest
	sh, err := decodeStrict(b, identifyFields, &r)
	if err != nil {
		return r, sh, err
	}
	if err := needRequestID(sh); err != nil {
		return r, sh, err
	}
	typed := sh.seen["kind"] || sh.seen["value"]
	switch {
	case sh.seen["scan"] && typed:
		return r, sh, reject(CodeBadRequest, "give either scan or kind and value, not both")
	case sh.seen["scan"] && r.Scan == "":
		return r, sh, reject(CodeBadRequest, "scan must not be empty")
	case !sh.seen["scan"] && (r.Kind == "" || !sh.seen["value"]):
		return r, sh, reject(CodeBadRequest, "scan, or kind and value, are required")
	}
	return r, sh, nil
}

func decodeEvent(b []byte) (eventRequest, shape, error) {
	var r eventRequest
	sh, err := decodeStrict(b, eventFields, &r)
	if err != nil {
		return r, sh, err
	}
	switch {
	case sh.seen["requestId"] && sh.requestID == "":
		return r, sh, reject(CodeBadRequest, "requestId must be 1 to 64 of A-Z a-z 0-9 _ . : -")
	case len(r.UserID) > maxIDLen || len(r.AnonymousID) > maxIDLen:
		return r, sh, reject(CodeBadRequest, "userId and anonymousId are at most %d bytes", maxIDLen)
	case r.Timestamp < 0 || r.Timestamp > maxTime:
		return r, sh, reject(CodeBadRequest, "timestamp must be a time in ms since the epoch")
	}
	if err := numbers(r.Properties); err != nil {
		return r, sh, err
	}
	return r, sh, numbers(r.Traits)
}

// consentStatuses are the decisions a device may make; pending is where
// an enrolment starts, not a decision.
var consentStatuses = []consent.Status{consent.Granted, consent.Denied, consent.Withdrawn, consent.Objected}

func decodeConsent(b []byte) (consentRequest, shape, error) {
	var r consentRequest
	sh, err := decodeStrict(b, consentFields, &r)
	if err != nil {
		return r, sh, err
	}
	if err := needRequestID(sh); err != nil {
		return r, sh, err
	}
	switch {
	case r.UserID == "" || len(r.UserID) > maxIDLen:
		return r, sh, reject(CodeBadRequest, "userId is required, at most %d bytes", maxIDLen)
	case r.Purpose == "" || len(r.Purpose) > maxNameLen:
		return r, sh, reject(CodeBadRequest, "purpose is required, at most %d bytes", maxNameLen)
	case !slices.Contains(consentStatuses, consent.Status(r.Status)):
		return r, sh, reject(CodeBadRequest, "status must be granted, denied, withdrawn or objected")
	case r.At < 0 || r.At > maxTime:
		return r, sh, reject(CodeBadRequest, "at must be a time in ms since the epoch")
	}
	return r, sh, nil
}

func needRequestID(sh shape) error {
	if sh.requestID == "" {
		return reject(CodeBadRequest, "requestId is required: 1 to 64 of A-Z a-z 0-9 _ . : -")
	}
	return nil
}

// decodeStrict decodes one JSON object into v, strictly: at most
// MaxPayload bytes, exactly the keys in fields (case-sensitive, each at
// most once, none null), values of the types of v's fields, objects and
// arrays within maxDepth and maxMembers, nothing after the object.
// Numbers inside maps of v are json.Number until numbers converts them.
func decodeStrict(b []byte, fields []string, v any) (shape, error) {
	if len(b) > MaxPayload {
		return shape{}, reject(CodeTooLarge, "payload over %d bytes", MaxPayload)
	}
	sh, err := checkShape(b, fields)
	if err != nil {
		return sh, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // checkShape did, exactly; this is a second lock
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && slices.Contains(fields, te.Field) {
			return sh, reject(CodeBadType, "%s has the wrong type", te.Field)
		}
		return sh, reject(CodeBadType, "a field has the wrong type")
	}
	return sh, nil
}

// level is one open object or array in checkShape.
type level struct {
	object  bool
	wantKey bool            // an object waiting for a key or its end
	keys    map[string]bool // an object's keys so far
	n       int             // members so far
}

// checkShape is the structural pass of decodeStrict. It reports syntax and
// size first; an unknown or null field only once the whole payload has
// been read, so that the requestId can still be echoed in the answer. It
// never puts a key or value of the payload in its error.
func checkShape(b []byte, fields []string) (shape, error) {
	sh := shape{seen: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return sh, reject(CodeBadJSON, "payload must be one JSON object")
	}
	stack := []*level{{object: true, wantKey: true, keys: map[string]bool{}}}
	var later error // unknown or null field
	key := ""       // the top-level key whose value comes next
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return sh, reject(CodeBadJSON, "payload is not well-formed JSON")
		}
		l := stack[len(stack)-1]
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if l.object && l.wantKey {
			k, _ := tok.(string) // the decoder only yields a string here
			if l.keys[k] {
				return sh, reject(CodeBadJSON, "a key appears twice")
			}
			l.keys[k], l.wantKey = true, false
			if len(stack) == 1 {
				key = k
				sh.seen[k] = true
				if !slices.Contains(fields, k) && later == nil {
					later = reject(CodeUnknownField, "a field is not part of this message")
				}
			}
			continue
		}
		// A value: of the object's last key, or an array's element.
		if l.n++; l.n > maxMembers {
			return sh, reject(CodeTooLarge, "an object or array has more than %d members", maxMembers)
		}
		l.wantKey = l.object
		if len(stack) == 1 {
			if tok == nil && later == nil {
				later = reject(CodeBadType, "a field is null")
			}
			if s, ok := tok.(string); ok && key == "requestId" && requestIDPattern.MatchString(s) {
				sh.requestID = s
			}
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxDepth {
				return sh, reject(CodeTooLarge, "nested deeper than %d levels", maxDepth)
			}
			stack = append(stack, &level{object: d == '{', wantKey: d == '{', keys: map[string]bool{}})
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return sh, reject(CodeBadJSON, "payload must be one JSON object")
	}
	return sh, later
}

// numbers replaces the json.Numbers of a decoded map by int64, or float64
// when not an integer, in place. A number out of float64's range is refused.
func numbers(m map[string]any) error {
	for k, v := range m {
		nv, err := number(v)
		if err != nil {
			return err
		}
		m[k] = nv
	}
	return nil
}

func number(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, reject(CodeBadRequest, "a number is out of range")
		}
		return f, nil
	case map[string]any:
		return v, numbers(v)
	case []any:
		for i, e := range v {
			ne, err := number(e)
			if err != nil {
				return nil, err
			}
			v[i] = ne
		}
	}
	return v, nil
}
