package wire

import (
	"bytes"
	"reflect"
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

// A batch as an agent sends it must take the in-place path whole.
func TestScanEventBatchTakesAgentBatches(t *testing.T) {
	b := EventBatch{Agent: "pos-1", Store: "s1", First: 7, Last: 9, SentAt: testTime,
		Events: []Event{sampleEvent(), sampleIdentify()}}
	raw := [][]byte{must[[]byte](t)(EncodeEvent(b.Events[0])), must[[]byte](t)(EncodeEvent(b.Events[1]))}
	for name, data := range map[string][]byte{
		"encoded":     must[[]byte](t)(EncodeEventBatch(b)),
		"encoded raw": must[[]byte](t)(EncodeEventBatchRaw(b, raw)),
	} {
		h, ids, ok := scanEventBatch(data)
		want := b
		want.Events = nil
		if !ok || !reflect.DeepEqual(h, want) || len(ids) != 2 {
			t.Fatalf("%s: scanEventBatch = %+v, %d ids, %v", name, h, len(ids), ok)
		}
		for i, e := range b.Events {
			if id, _ := parseUUID([]byte(e.MessageID)); ids[i] != id {
				t.Errorf("%s: events[%d]: id %x, want %s", name, i, ids[i], e.MessageID)
			}
		}
	}
}

// appendEventBatchRaw must write exactly what the deterministic encoder
// writes for the same batch: signatures and golden files depend on it.
func TestEncodeEventBatchRawIsDeterministic(t *testing.T) {
	raw := [][]byte{must[[]byte](t)(EncodeEvent(sampleEvent())), must[[]byte](t)(EncodeEvent(sampleIdentify()))}
	many := make([][]byte, 300)
	for i := range many {
		many[i] = raw[i%2]
	}
	for _, c := range []struct {
		b      EventBatch
		events [][]byte
	}{
		{EventBatch{Agent: "a", Store: "s", First: 1, Last: 2, SentAt: 1}, raw},
		{EventBatch{Agent: strings.Repeat("a", 64), Store: "store-1", First: 23, Last: 24, SentAt: testTime}, raw},
		{EventBatch{Agent: "pos-1", Store: "s1", First: 255, Last: 256, SentAt: 1 << 32}, raw},
		{EventBatch{Agent: "pos-1", Store: "s1", First: 65535, Last: 65536 + 300, SentAt: 1<<63 - 1}, many},
		{EventBatch{Agent: "pos-1", Store: "s1", First: 1 << 40, Last: 1<<40 + 1000, SentAt: 24}, many[:24]},
	} {
		w := eventBatchWire{V: ProtocolVersion, EventBatch: c.b}
		for _, e := range c.events {
			w.Events = append(w.Events, e)
		}
		want := must[[]byte](t)(encMode.Marshal(w))
		got := must[[]byte](t)(EncodeEventBatchRaw(c.b, c.events))
		if !bytes.Equal(got, want) {
			t.Errorf("batch %+v: got %x\nwant %x", c.b, got[:min(len(got), 80)], want[:min(len(want), 80)])
		}
	}
}
