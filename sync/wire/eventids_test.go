package wire

import (
	"strings"
	"testing"
)

// The events agents send must take the in-place path: otherwise
// DecodeEventBatchIDs is only a slower DecodeEventBatch.
func TestCheckEventTakesAgentEvents(t *testing.T) {
	alias := sampleEvent()
	alias.Type, alias.Event, alias.PreviousID, alias.Properties = EventAlias, "", "anon-7", nil
	noConsent := sampleEvent()
	noConsent.Context.Consent = Consent{}
	floats := sampleEvent()
	floats.Properties = map[string]any{"f": 1.5, "neg": int64(-3), "bytes": []byte{1}, "nil": nil,
		"deep": map[string]any{"a": []any{map[string]any{"b": "é"}}}}
	for name, e := range map[string]Event{
		"track": sampleEvent(), "identify": sampleIdentify(), "alias": alias, "no consent": noConsent, "values": floats,
	} {
		raw := must[[]byte](t)(EncodeEvent(e))
		id, ok := checkEvent(raw)
		want, _ := parseUUID([]byte(e.MessageID))
		if !ok || id != want {
			t.Errorf("%s: checkEvent = %x, %v; want %x, true", name, id, ok, want)
		}
	}
}

// Each of these breaks a rule Validate or the decoder enforces; the
// in-place check must leave every one to the full decoder.
func TestCheckEventRefuses(t *testing.T) {
	mod := func(f func(*Event)) Event { e := sampleEvent(); f(&e); return e }
	cases := map[string][]byte{
		"uppercase id":   encodeUnchecked(t, mod(func(e *Event) { e.MessageID = strings.ToUpper(e.MessageID) })),
		"uuidv4":         encodeUnchecked(t, mod(func(e *Event) { e.MessageID = "01890a5d-ac96-474b-bcce-b302099a8057" })),
		"no event name":  encodeUnchecked(t, mod(func(e *Event) { e.Event = "" })),
		"control char":   encodeUnchecked(t, mod(func(e *Event) { e.Event = "a\x01" })),
		"identify named": encodeUnchecked(t, mod(func(e *Event) { e.Type = EventIdentify })),
		"alias alone":    encodeUnchecked(t, mod(func(e *Event) { e.Type, e.Event = EventAlias, "" })),
		"other type":     encodeUnchecked(t, mod(func(e *Event) { e.Type = "page" })),
		"anonymous":      encodeUnchecked(t, mod(func(e *Event) { e.UserID = "" })),
		"zero time":      encodeUnchecked(t, mod(func(e *Event) { e.OriginalTimestamp = 0 })),
		"bad store":      encodeUnchecked(t, mod(func(e *Event) { e.Context.Store = "s 1" })),
		"no device":      encodeUnchecked(t, mod(func(e *Event) { e.Context.Device = "" })),
		"bad purpose":    encodeUnchecked(t, mod(func(e *Event) { e.Context.Consent.CategoryPreferences["a b"] = true })),
		"too deep": encodeUnchecked(t, mod(func(e *Event) {
			var v any = "leaf"
			for range MaxValueNesting {
				v = []any{v}
			}
			e.Properties = map[string]any{"x": v}
		})),
		"nan":            {0xa1, 0x61, 'x', 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0},
		"half infinity":  {0xa1, 0x61, 'x', 0xf9, 0x7c, 0x00},
		"uint too large": {0xa1, 0x61, 'x', 0x1b, 0xff, 0, 0, 0, 0, 0, 0, 0},
		"repeated key":   {0xa2, 0x61, 'x', 0x01, 0x61, 'x', 0x02},
		"integer key":    {0xa1, 0x01, 0x01},
		"bad utf-8":      {0xa1, 0x61, 'x', 0x62, 0xff, 0xfe},
		"tag":            {0xa1, 0x61, 'x', 0xc1, 0x01},
	}
	for name, raw := range cases {
		if raw[0] == 0xa1 || raw[0] == 0xa2 { // a properties map: put it in a valid event
			raw = withProperties(t, raw)
		}
		if _, ok := checkEvent(raw); ok {
			t.Errorf("%s: checkEvent took it", name)
		}
		if _, err := DecodeEvent(raw); err == nil {
			t.Errorf("%s: DecodeEvent accepts it: the case tests nothing", name)
		}
	}
}

// encodeUnchecked encodes e without Validate.
func encodeUnchecked(t *testing.T, e Event) []byte {
	t.Helper()
	return must[[]byte](t)(encMode.Marshal(e))
}

// withProperties is a valid event whose properties are the encoded map m.
func withProperties(t *testing.T, m []byte) []byte {
	t.Helper()
	e := sampleEvent()
	e.Properties = map[string]any{"zzzz-placeholder": "zz"}
	raw := must[[]byte](t)(EncodeEvent(e))
	ph := must[[]byte](t)(encMode.Marshal(e.Properties))
	i := strings.Index(string(raw), string(ph))
	return append(append(append([]byte{}, raw[:i]...), m...), raw[i+len(ph):]...)
}
