package bus

import (
	"errors"
	"strings"
	"testing"
)

// decoded runs the decoder of kind and returns the code of its refusal,
// "" when accepted, and the requestId it kept for the answer.
func decoded(kind topicKind, payload string) (Code, string) {
	var (
		sh  shape
		err error
	)
	b := []byte(payload)
	switch kind {
	case topicSightings:
		_, sh, err = decodeSighting(b)
	case topicIdentify:
		_, sh, err = decodeIdentify(b)
	case topicEvents:
		_, sh, err = decodeEvent(b)
	case topicConsent:
		_, sh, err = decodeConsent(b)
	}
	if err == nil {
		return "", sh.requestID
	}
	r, _ := errors.AsType[*rejection](err)
	return r.code, sh.requestID
}

func TestDecoders(t *testing.T) {
	long := strings.Repeat("a", MaxPayload)
	tests := []struct {
		name    string
		kind    topicKind
		payload string
		code    Code
		reqID   string
	}{
		{"sighting", topicSightings, `{"rssi":-60}`, "", ""},
		{"sighting in full", topicSightings, `{"beaconId":"AA:BB:CC:DD:EE:FF","rssi":0,"at":1760000000000,"anonymousId":"0190a1b2-c3d4-8e5f-8a6b-7c8d9e0f1a2b"}`, "", ""},
		{"sighting without rssi", topicSightings, `{"beaconId":"z"}`, CodeBadRequest, ""},
		{"rssi out of range", topicSightings, `{"rssi":-200}`, CodeBadRequest, ""},
		{"rssi not an integer", topicSightings, `{"rssi":-60.5}`, CodeBadType, ""},
		{"rssi as text", topicSightings, `{"rssi":"-60"}`, CodeBadType, ""},
		{"anonymous id not a uuid", topicSightings, `{"rssi":-60,"anonymousId":"ada@example.com"}`, CodeBadRequest, ""},
		{"upper-case uuid", topicSightings, `{"rssi":-60,"anonymousId":"0190A1B2-C3D4-8E5F-8A6B-7C8D9E0F1A2B"}`, CodeBadRequest, ""},
		{"a userId in a sighting", topicSightings, `{"rssi":-60,"userId":"cust-1"}`, CodeUnknownField, ""},
		{"negative time", topicSightings, `{"rssi":-60,"at":-1}`, CodeBadRequest, ""},

		{"scan", topicIdentify, `{"requestId":"r-1","scan":"123"}`, "", "r-1"},
		{"kind and value", topicIdentify, `{"requestId":"r.2","kind":"phone","value":"+4930123456"}`, "", "r.2"},
		{"both", topicIdentify, `{"requestId":"r3","scan":"1","kind":"phone","value":"2"}`, CodeBadRequest, "r3"},
		{"neither", topicIdentify, `{"requestId":"r4"}`, CodeBadRequest, "r4"},
		{"kind without value", topicIdentify, `{"requestId":"r5","kind":"email"}`, CodeBadRequest, "r5"},
		{"empty scan", topicIdentify, `{"requestId":"r6","scan":""}`, CodeBadRequest, "r6"},
		{"request id with a space", topicIdentify, `{"requestId":"r 7","scan":"1"}`, CodeBadRequest, ""},
		{"request id too long", topicIdentify, `{"requestId":"` + strings.Repeat("r", 65) + `","scan":"1"}`, CodeBadRequest, ""},
		{"purpose", topicIdentify, `{"requestId":"r8","scan":"1","purpose":"marketing"}`, CodeUnknownField, "r8"},
		{"field in other case", topicIdentify, `{"requestId":"r9","SCAN":"1"}`, CodeUnknownField, "r9"},
		{"request id after an unknown field", topicIdentify, `{"x":1,"requestId":"r10"}`, CodeUnknownField, "r10"},
		{"duplicate key", topicIdentify, `{"requestId":"r11","scan":"1","scan":"2"}`, CodeBadJSON, "r11"},
		{"null", topicIdentify, `{"requestId":"r12","scan":null}`, CodeBadType, "r12"},
		{"trailing data", topicIdentify, `{"requestId":"r13","scan":"1"} {}`, CodeBadJSON, "r13"},
		{"truncated", topicIdentify, `{"requestId":"r14","scan":"1"`, CodeBadJSON, "r14"},
		{"array", topicIdentify, `[{"requestId":"r15","scan":"1"}]`, CodeBadJSON, ""},
		{"empty", topicIdentify, ``, CodeBadJSON, ""},
		{"too large", topicIdentify, `{"requestId":"r16","scan":"` + long + `"}`, CodeTooLarge, ""},

		{"event", topicEvents, `{"event":"Order Completed","userId":"cust-1","properties":{"total":12.5,"n":3,"big":12345678901234567890,"tags":["a",true,null]}}`, "", ""},
		{"event with request id", topicEvents, `{"requestId":"e1","event":"X"}`, "", "e1"},
		{"event with bad request id", topicEvents, `{"requestId":"e 1","event":"X"}`, CodeBadRequest, ""},
		{"device in event", topicEvents, `{"event":"X","device":"kiosk-2"}`, CodeUnknownField, ""},
		{"properties not an object", topicEvents, `{"event":"X","properties":[1]}`, CodeBadType, ""},
		{"deep enough", topicEvents, `{"event":"X","properties":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}`, "", ""},
		{"too deep", topicEvents, `{"event":"X","properties":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}}`, CodeTooLarge, ""},
		{"too many members", topicEvents, `{"event":"X","properties":{"a":[` + strings.Repeat("0,", maxMembers) + `0]}}`, CodeTooLarge, ""},
		{"number out of range", topicEvents, `{"event":"X","properties":{"a":1e400}}`, CodeBadRequest, ""},
		{"negative timestamp", topicEvents, `{"event":"X","timestamp":-5}`, CodeBadRequest, ""},
		{"user id too long", topicEvents, `{"event":"X","userId":"` + strings.Repeat("u", 129) + `"}`, CodeBadRequest, ""},

		{"consent", topicConsent, `{"requestId":"c1","userId":"cust-1","purpose":"loyalty","status":"withdrawn"}`, "", "c1"},
		{"consent with time", topicConsent, `{"requestId":"c2","userId":"cust-1","purpose":"loyalty","status":"granted","at":1760000000000}`, "", "c2"},
		{"pending", topicConsent, `{"requestId":"c3","userId":"cust-1","purpose":"loyalty","status":"pending"}`, CodeBadRequest, "c3"},
		{"no user", topicConsent, `{"requestId":"c4","purpose":"loyalty","status":"granted"}`, CodeBadRequest, "c4"},
		{"no purpose", topicConsent, `{"requestId":"c5","userId":"cust-1","status":"granted"}`, CodeBadRequest, "c5"},
		{"no request id", topicConsent, `{"userId":"cust-1","purpose":"loyalty","status":"granted"}`, CodeBadRequest, ""},
		{"status as bool", topicConsent, `{"requestId":"c6","userId":"cust-1","purpose":"loyalty","status":false}`, CodeBadType, "c6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, reqID := decoded(tc.kind, tc.payload)
			if code != tc.code || reqID != tc.reqID {
				t.Fatalf("got code %q requestId %q, want %q %q", code, reqID, tc.code, tc.reqID)
			}
		})
	}
}

// Numbers in properties keep their integer form, for the event codec.
func TestEventNumbers(t *testing.T) {
	r, _, err := decodeEvent([]byte(`{"event":"X","properties":{"i":3,"f":1.5,"l":[2,{"n":-7}]},"traits":{"t":9007199254740993}}`))
	if err != nil {
		t.Fatal(err)
	}
	l := r.Properties["l"].([]any)
	if r.Properties["i"] != int64(3) || r.Properties["f"] != 1.5 || l[0] != int64(2) || l[1].(map[string]any)["n"] != int64(-7) || r.Traits["t"] != int64(9007199254740993) {
		t.Fatalf("properties %#v traits %#v", r.Properties, r.Traits)
	}
}

func TestTopics(t *testing.T) {
	tp := newTopics("s1")
	tests := []struct {
		topic  string
		device string
		kind   topicKind
		ok     bool
	}{
		{"store/s1/devices/speaker-1/identify", "speaker-1", topicIdentify, true},
		{"store/s1/devices/b_1/sightings", "b_1", topicSightings, true},
		{"store/s1/devices/k/events", "k", topicEvents, true},
		{"store/s1/devices/k/consent", "k", topicConsent, true},
		{"store/s1/devices/k/identify/reply", "", 0, false},
		{"store/s2/devices/k/identify", "", 0, false},
		{"store/s1/devices//identify", "", 0, false},
		{"store/s1/devices/ada@example.com/identify", "", 0, false},
		{"store/s1/devices/k/unknown", "", 0, false},
		{"store/s1/devices/k", "", 0, false},
	}
	for _, tc := range tests {
		d, k, ok := tp.parse(tc.topic)
		if d != tc.device || k != tc.kind || ok != tc.ok {
			t.Errorf("parse(%q) = %q %v %v", tc.topic, d, k, ok)
		}
	}
	if got := tp.filters(); len(got) != 4 || got[1] != "store/s1/devices/+/identify" {
		t.Fatalf("filters %v", got)
	}
	if got := tp.reply("k", topicEvents); got != "store/s1/devices/k/events/ack" {
		t.Fatalf("reply %s", got)
	}
}
