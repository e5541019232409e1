package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/event"
)

// The fuzzers check what every decoder promises: it never panics; a
// refusal is an *APIError of 400 or 413 whose reason holds no quoted value
// and no e-mail-like text; an accepted body is valid JSON with only the
// body's fields, and satisfies the rules of the body, checked here again
// without the decoder's help. Seeds are in testdata/fuzz/FuzzXxx.

// checkRefusal checks a decoder's error.
func checkRefusal(t *testing.T, body []byte, limit int, err error) {
	t.Helper()
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *APIError", err, err)
	}
	switch {
	case len(body) > limit && (e.Status != 413 || e.Code != CodeTooLarge):
		t.Fatalf("%d bytes over the %d limit: %d %s", len(body), limit, e.Status, e.Code)
	case e.Status != 400 && e.Status != 413, e.Code != CodeBadRequest && e.Code != CodeTooLarge:
		t.Fatalf("refusal %d %s", e.Status, e.Code)
	case e.Reason == "" || strings.ContainsAny(e.Reason, "\"@"):
		t.Fatalf("reason %q is empty or may echo the input", e.Reason)
	}
}

// checkFields checks that an accepted body is one JSON object whose keys
// (case-insensitively, as encoding/json matches them) are all allowed.
func checkFields(t *testing.T, body []byte, allowed ...string) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("accepted a body that is not an object: %v", err)
	}
	for k := range m {
		ok := false
		for _, a := range allowed {
			ok = ok || strings.EqualFold(k, a)
		}
		if !ok {
			t.Fatalf("accepted unknown field %q", k)
		}
	}
}

// checkIdent is the identifier rule: a scan, or a kind and a value.
func checkIdent(t *testing.T, scan, kind, value string) {
	t.Helper()
	if (scan != "") == (kind != "" || value != "") || scan == "" && (kind == "" || value == "") {
		t.Fatalf("accepted scan %q kind %q value %q", scan, kind, value)
	}
}

func checkCommon(t *testing.T, purpose, device string) {
	t.Helper()
	if !purposeName.MatchString(purpose) || !deviceID.MatchString(device) {
		t.Fatalf("accepted purpose %q device %q", purpose, device)
	}
}

// checkTree checks the bounds of properties or traits and that no
// json.Number is left in them.
func checkTree(t *testing.T, v any, depth int) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if depth > maxDepth || len(x) > maxMembers {
			t.Fatalf("accepted an object at depth %d with %d members", depth, len(x))
		}
		for _, e := range x {
			checkTree(t, e, depth+1)
		}
	case []any:
		if depth > maxDepth || len(x) > maxMembers {
			t.Fatalf("accepted an array at depth %d with %d elements", depth, len(x))
		}
		for _, e := range x {
			checkTree(t, e, depth+1)
		}
	case json.Number:
		t.Fatalf("json.Number %q left in the tree", x)
	case nil, string, bool, int64, float64:
	default:
		t.Fatalf("unexpected %T in the tree", x)
	}
}

func FuzzDecodeIdentify(f *testing.F) {
	f.Add([]byte(`{"scan":"79927398713","purpose":"loyalty","device":"pos-1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeIdentify(body)
		if err != nil {
			checkRefusal(t, body, maxBody, err)
			return
		}
		checkFields(t, body, "scan", "kind", "value", "purpose", "device")
		checkIdent(t, r.Scan, r.Kind, r.Value)
		checkCommon(t, r.Purpose, r.Device)
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"event":"Order Completed","userId":"cust-1","device":"pos-1","properties":{"total":12.5}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeEvent(body)
		if err != nil {
			checkRefusal(t, body, maxEventBody, err)
			return
		}
		checkFields(t, body, "messageId", "type", "event", "userId", "anonymousId", "device", "timestamp", "properties", "traits", "purpose")
		switch {
		case r.Type != "" && r.Type != event.Track && r.Type != event.Identify,
			r.Type != event.Identify && r.Event == "",
			len(r.Event) > maxEventNameLen, len(r.UserID) > maxIDLen, len(r.AnonymousID) > maxIDLen,
			r.MessageID != "" && !event.ValidID(r.MessageID),
			r.Timestamp < 0,
			r.Purpose != "" && !purposeName.MatchString(r.Purpose),
			!deviceID.MatchString(r.Device):
			t.Fatalf("accepted %+v", r)
		}
		checkTree(t, map[string]any(r.Properties), 1)
		checkTree(t, map[string]any(r.Traits), 1)
		// What is accepted can always be read back from the outbox: an
		// event that encodes also decodes.
		ev := &event.Event{MessageID: event.NewID(), Type: event.Track, Event: r.Event, Properties: r.Properties, Traits: r.Traits}
		if b, err := ev.Encode(); err == nil {
			if _, err := event.Decode(b); err != nil {
				t.Fatalf("accepted an event that encodes but does not decode: %v", err)
			}
		}
	})
}

func FuzzDecodeConsent(f *testing.F) {
	f.Add([]byte(`{"purpose":"marketing","status":"withdrawn","device":"kiosk-1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeConsent(body)
		if err != nil {
			checkRefusal(t, body, maxBody, err)
			return
		}
		checkFields(t, body, "purpose", "status", "device")
		checkCommon(t, r.Purpose, r.Device)
		switch r.Status {
		case "granted", "denied", "withdrawn", "objected":
		default:
			t.Fatalf("accepted status %q", r.Status)
		}
	})
}

func FuzzDecodeRights(f *testing.F) {
	f.Add([]byte(`{"right":"erase","device":"kiosk-1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRights(body)
		if err != nil {
			checkRefusal(t, body, maxBody, err)
			return
		}
		checkFields(t, body, "right", "device")
		switch r.Right {
		case "erase", "restrict", "unrestrict", "access", "portability":
		default:
			t.Fatalf("accepted right %q", r.Right)
		}
		if !deviceID.MatchString(r.Device) {
			t.Fatalf("accepted device %q", r.Device)
		}
	})
}

func FuzzDecodeEnrol(f *testing.F) {
	f.Add([]byte(`{"scan":"4111111111111111","purpose":"loyalty","device":"kiosk-1","traits":{"firstName":"Grace"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeEnrol(body)
		if err != nil {
			checkRefusal(t, body, maxBody, err)
			return
		}
		checkFields(t, body, "scan", "kind", "value", "traits", "purpose", "device")
		checkIdent(t, r.Scan, r.Kind, r.Value)
		checkCommon(t, r.Purpose, r.Device)
		checkTree(t, map[string]any(r.Traits), 1)
	})
}

// TestDecodeKeepsIntegers checks the number conversion the fuzzers rely on.
func TestDecodeKeepsIntegers(t *testing.T) {
	r, err := decodeEvent([]byte(`{"event":"x","device":"pos-1","properties":{"i":9007199254740993,"f":1.5,"big":1e30,"a":[1,{"n":-2}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := r.Properties
	if p["i"] != int64(9007199254740993) || p["f"] != 1.5 || p["big"] != 1e30 {
		t.Fatalf("got %#v", p)
	}
	if a := p["a"].([]any); a[0] != int64(1) || a[1].(map[string]any)["n"] != int64(-2) {
		t.Fatalf("got %#v", a)
	}
	if _, err := decodeEvent(bytes.Repeat([]byte(" "), maxEventBody+1)); err == nil {
		t.Fatal("oversized body accepted")
	}
}
