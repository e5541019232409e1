package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
)

// Body limits. An event's is above event.MaxSize (32 KiB encoded) so that
// an event too large once encoded gets the agent's own 413, with room for
// JSON's overhead; a body past either limit is refused before it is read
// to the end.
const (
	maxBody      = 64 << 10
	maxEventBody = 40 << 10
)

// Bounds of properties and traits: below what event.Decode accepts (16
// levels counting the event itself, 4096 members), so that an accepted
// event can always be read back from the outbox.
const (
	maxDepth   = 8    // the properties or traits object itself is level 1
	maxMembers = 1024 // members of one object, elements of one array
)

// Field rules. Each rule is stated once, here; the decoders and the fuzz
// tests both use them.
var (
	// deviceID is a device's id: 1 to 64 of A-Z a-z 0-9 . _ : -, starting
	// with a letter or digit.
	deviceID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`) // an id on the wire (PROTOCOL.md)
	// purposeName is consent's rule for purpose names.
	purposeName = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)
)

const (
	maxIDLen        = 128 // userId, anonymousId: the agent's bound
	maxEventNameLen = 128
)

// rights are the rights a customer may request here; decisions the
// statuses a customer may set (pending is where enrolment starts).
var (
	rights    = []agent.Right{agent.RightErase, agent.RightRestrict, agent.RightUnrestrict, agent.RightAccess, agent.RightPortability}
	decisions = []consent.Status{consent.Granted, consent.Denied, consent.Withdrawn, consent.Objected}
)

// decodeIdentify reads and checks the body of POST /v1/identify. The
// identifier itself is the agent's to judge (422 with its reason).
func decodeIdentify(body []byte) (IdentifyRequest, error) {
	var r IdentifyRequest
	if err := decodeJSON(body, maxBody, &r); err != nil {
		return r, err
	}
	return r, firstErr(checkIdentifier(r.Scan, r.Kind, r.Value), checkPurpose(r.Purpose), checkDevice(r.Device))
}

// decodeEvent reads and checks the body of POST /v1/events.
func decodeEvent(body []byte) (EventRequest, error) {
	var r EventRequest
	if err := decodeJSON(body, maxEventBody, &r); err != nil {
		return r, err
	}
	return r, firstErr(
		checkEventShape(r),
		checkDevice(r.Device),
		checkOptionalPurpose(r.Purpose),
		checkObject("properties", r.Properties),
		checkObject("traits", r.Traits),
	)
}

func checkEventShape(r EventRequest) error {
	switch {
	case r.Type != "" && r.Type != event.Track && r.Type != event.Identify:
		return badRequest("type must be track or identify")
	case (r.Type == "" || r.Type == event.Track) && r.Event == "":
		return badRequest("event is required for a track event")
	case len(r.Event) > maxEventNameLen:
		return badRequest("event must be at most 128 bytes")
	case r.MessageID != "" && !event.ValidID(r.MessageID):
		return badRequest("messageId must be a UUID in lower-case canonical form")
	case len(r.UserID) > maxIDLen || len(r.AnonymousID) > maxIDLen:
		return badRequest("userId and anonymousId must be at most 128 bytes")
	case r.Timestamp < 0:
		return badRequest("timestamp must be milliseconds since the epoch")
	}
	return nil
}

// decodeConsent reads and checks the body of POST
// /v1/profiles/{userId}/consent.
func decodeConsent(body []byte) (ConsentRequest, error) {
	var r ConsentRequest
	if err := decodeJSON(body, maxBody, &r); err != nil {
		return r, err
	}
	var st error
	if !slices.Contains(decisions, consent.Status(r.Status)) {
		st = badRequest("status must be granted, denied, withdrawn or objected")
	}
	return r, firstErr(checkPurpose(r.Purpose), st, checkDevice(r.Device))
}

// decodeRights reads and checks the body of POST
// /v1/profiles/{userId}/rights.
func decodeRights(body []byte) (RightsRequest, error) {
	var r RightsRequest
	if err := decodeJSON(body, maxBody, &r); err != nil {
		return r, err
	}
	var right error
	if !slices.Contains(rights, agent.Right(r.Right)) {
		right = badRequest("right must be erase, restrict, unrestrict, access or portability")
	}
	return r, firstErr(right, checkDevice(r.Device))
}

// decodeEnrol reads and checks the body of POST /v1/enrol.
func decodeEnrol(body []byte) (EnrolRequest, error) {
	var r EnrolRequest
	if err := decodeJSON(body, maxBody, &r); err != nil {
		return r, err
	}
	return r, firstErr(checkIdentifier(r.Scan, r.Kind, r.Value), checkPurpose(r.Purpose), checkDevice(r.Device), checkObject("traits", r.Traits))
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkIdentifier(scan, kind, value string) error {
	switch {
	case scan != "" && (kind != "" || value != ""):
		return badRequest("give either scan, or kind and value, not both")
	case scan == "" && (kind == "" || value == ""):
		return badRequest("scan, or kind and value, are required")
	}
	return nil
}

func checkPurpose(p string) error {
	if !purposeName.MatchString(p) {
		return badRequest("purpose is required: 1 to 64 of a-z 0-9 _ . -")
	}
	return nil
}

func checkOptionalPurpose(p string) error {
	if p == "" {
		return nil
	}
	return checkPurpose(p)
}

func checkDevice(d string) error {
	if !deviceID.MatchString(d) {
		return badRequest("device is required: 1 to 64 of A-Z a-z 0-9 . _ : -, starting with a letter or digit")
	}
	return nil
}

// checkUserID checks a userId taken from the path: 1 to 128 bytes of
// printable UTF-8 without spaces.
func checkUserID(id string) error {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) || strings.ContainsFunc(id, badIDRune) {
		return badRequest("userId must be 1 to 128 bytes of printable characters without spaces")
	}
	return nil
}

func badIDRune(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }

// checkObject bounds properties or traits, and turns their numbers
// (json.Number, from UseNumber) into int64 when they are integers that fit,
// float64 otherwise.
func checkObject(field string, m map[string]any) error {
	if m == nil {
		return nil
	}
	if _, err := walk(m, 1); err != nil {
		return badRequest(field + " " + err.Error())
	}
	return nil
}

var (
	errTooDeep   = fmt.Errorf("must nest at most %d levels", maxDepth)
	errTooMany   = fmt.Errorf("must have at most %d members per object or array", maxMembers)
	errBadNumber = errors.New("hold a number out of range")
)

// walk checks v at depth and returns it with its numbers converted; maps
// and slices are converted in place.
func walk(v any, depth int) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if depth > maxDepth {
			return nil, errTooDeep
		}
		if len(x) > maxMembers {
			return nil, errTooMany
		}
		for k, e := range x {
			c, err := walk(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case []any:
		if depth > maxDepth {
			return nil, errTooDeep
		}
		if len(x) > maxMembers {
			return nil, errTooMany
		}
		for i, e := range x {
			c, err := walk(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	case json.Number:
		return number(x)
	}
	return v, nil
}

func number(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, errBadNumber
	}
	return f, nil
}

// decodeJSON decodes body, at most limit bytes, into v strictly: one JSON
// object, no unknown field, each field of its type. Its errors are
// *APIError with fixed reasons: a field's name may appear, a value never.
func decodeJSON(body []byte, limit int, v any) error {
	if len(body) > limit {
		return tooLarge(limit)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return badRequest("the body is empty: a JSON object is required")
	}
	if trimmed[0] != '{' {
		return badRequest("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body must hold exactly one JSON value")
	}
	return nil
}

func tooLarge(limit int) *APIError {
	return &APIError{Status: 413, Code: CodeTooLarge, Reason: fmt.Sprintf("the body must be at most %d KiB", limit>>10)}
}

// jsonError turns a decoding error into a reason without the input: the
// type error's field (a name from our own structs) and the syntax error's
// offset, nothing else. An unknown field's name came from the request, so
// it is not repeated.
func jsonError(err error) *APIError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("the body must be a JSON object")
		}
		return badRequest(fmt.Sprintf("field %s must be %s", typ.Field, kindOf(typ.Type)))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the JSON body is truncated")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return badRequest("the body has an unknown field: openapi.yaml lists the fields of each body")
	}
	return badRequest("malformed JSON")
}

// kindOf names the JSON kind a Go type is decoded from.
func kindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "of another type"
}
