package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/event"
)

// codec pairs an encoder and a decoder of one message type, so one table
// drives round trips and rejections for all of them.
type codec struct {
	name   string
	valid  func() any
	encode func(any) ([]byte, error)
	decode func([]byte) (any, error)
}

func codecFor[T any](name string, valid func() T, enc func(T) ([]byte, error), dec func([]byte) (T, error)) codec {
	return codec{
		name:   name,
		valid:  func() any { return valid() },
		encode: func(v any) ([]byte, error) { return enc(v.(T)) },
		decode: func(b []byte) (any, error) { return dec(b) },
	}
}

func codecs() []codec {
	change := func(i int) func() Change { return func() Change { return sampleChanges()[i] } }
	return []codec{
		codecFor("event", sampleEvent, EncodeEvent, DecodeEvent),
		codecFor("identify", sampleIdentify, EncodeEvent, DecodeEvent),
		codecFor("event-batch", sampleBatch, EncodeEventBatch, DecodeEventBatch),
		codecFor("ack", sampleAck, EncodeAck, decodeAck),
		codecFor("sync-request", sampleSyncRequest, EncodeSyncRequest, DecodeSyncRequest),
		codecFor("agent-status", sampleStatus, EncodeAgentStatus, DecodeAgentStatus),
		codecFor("change-profile", change(0), EncodeChange, decodeChange),
		codecFor("change-consent", change(1), EncodeChange, decodeChange),
		codecFor("change-erase", change(2), EncodeChange, decodeChange),
		codecFor("change-restrict", change(3), EncodeChange, decodeChange),
		codecFor("change-policy", change(4), EncodeChange, decodeChange),
		codecFor("change-set-run", sampleRun, EncodeChangeSet, decodeChangeSet),
		codecFor("change-set-snapshot", sampleSnapshot, EncodeChangeSet, decodeChangeSet),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range codecs() {
		t.Run(c.name, func(t *testing.T) {
			want := c.valid()
			b, err := c.encode(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip changed the value\n got %#v\nwant %#v", got, want)
			}
			again, err := c.encode(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("encoding is not deterministic: %v", err)
			}
		})
	}
}

// TestDecodeRejectsMalformed runs the same broken forms through every
// decoder: none of them depends on the message type.
func TestDecodeRejectsMalformed(t *testing.T) {
	for _, c := range codecs() {
		valid, err := c.encode(c.valid())
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			in   []byte
			want error
		}{
			{"empty", nil, ErrMalformed},
			{"not a map", []byte{0x83, 0x01, 0x02, 0x03}, ErrMalformed},
			{"truncated", valid[:len(valid)-1], ErrMalformed},
			{"trailing bytes", append(bytes.Clone(valid), 0x00), ErrMalformed},
			{"not cbor", []byte("{\"v\":1}"), ErrMalformed},
			{"indefinite length", indefinite(valid), ErrMalformed},
			{"unknown field", mutate(t, valid, func(m map[string]any) { m["zzz"] = "later minor" }), nil},
			{"tag", mutate(t, valid, func(m map[string]any) { m["zzz"] = rawTag{} }), ErrMalformed},
		}
		for _, tc := range cases {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				_, err := c.decode(tc.in)
				if tc.want == nil {
					wantErr(t, err)
					return
				}
				wantErr(t, err, tc.want)
			})
		}
	}
}

// rawTag marshals as tag 32 around a text, a form no decoder accepts.
type rawTag struct{}

func (rawTag) MarshalCBOR() ([]byte, error) { return []byte{0xd8, 0x20, 0x61, 'x'}, nil }

func TestDecodeRejectsVersion(t *testing.T) {
	for _, c := range codecs() {
		if strings.HasPrefix(c.name, "event") && c.name != "event-batch" || c.name == "identify" {
			continue // an event is not versioned on its own
		}
		valid := must[[]byte](t)(c.encode(c.valid()))
		for name, f := range map[string]func(map[string]any){
			"v 2":       func(m map[string]any) { m["v"] = 2 },
			"v 0":       func(m map[string]any) { m["v"] = 0 },
			"v missing": func(m map[string]any) { delete(m, "v") },
			"v null":    func(m map[string]any) { m["v"] = nil },
			"v text":    func(m map[string]any) { m["v"] = "1" },
		} {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				_, err := c.decode(mutate(t, valid, f))
				wantErr(t, err, ErrBadVersion)
			})
		}
	}
}

func TestDecodeRequiresKeys(t *testing.T) {
	for _, c := range codecs() {
		valid := must[[]byte](t)(c.encode(c.valid()))
		keys := requiredOf(t, c.valid())
		for _, k := range keys {
			if k == "v" {
				continue
			}
			t.Run(c.name+"/"+k, func(t *testing.T) {
				_, err := c.decode(mutate(t, valid, func(m map[string]any) { delete(m, k) }))
				wantErr(t, err, ErrMalformed)
				_, err = c.decode(mutate(t, valid, func(m map[string]any) { m[k] = nil }))
				wantErr(t, err, ErrMalformed)
			})
		}
	}
}

// requiredOf returns the required keys the decoder of v checks.
func requiredOf(t *testing.T, v any) []string {
	switch x := v.(type) {
	case Event:
		return eventKeys
	case EventBatch:
		return eventBatchKeys
	case Ack:
		return ackKeys
	case SyncRequest:
		return syncRequestKeys
	case AgentStatus:
		return agentStatusKeys
	case ChangeSet:
		return changeSetKeys
	case Change:
		return append(append([]string{}, changeKeys...), x.Body.required()...)
	}
	t.Fatalf("no keys for %T", v)
	return nil
}

// TestRequiredKeysMatchTags checks that the key lists hold exactly the
// fields without omitempty: PROTOCOL.md marks optional fields with "?" and
// those are the only ones with omitempty.
func TestRequiredKeysMatchTags(t *testing.T) {
	versioned := func(keys []string) []string { return append([]string{"v"}, keys...) }
	cases := []struct {
		name string
		typ  any
		got  []string
		v    bool
	}{
		{"event", Event{}, eventKeys, false},
		{"event batch", EventBatch{}, eventBatchKeys, true},
		{"ack", Ack{}, ackKeys, true},
		{"sync request", SyncRequest{}, syncRequestKeys, true},
		{"agent status", AgentStatus{}, agentStatusKeys, true},
		{"change set", ChangeSet{}, changeSetKeys, true},
		{"change header", changeHeader{}, changeKeys, false},
	}
	for _, b := range []Body{&ProfileChange{}, &ConsentChange{}, &EraseChange{}, &RestrictChange{}, &PolicyChange{}} {
		cases = append(cases, struct {
			name string
			typ  any
			got  []string
			v    bool
		}{string(b.Kind()), reflect.ValueOf(b).Elem().Interface(), b.required(), false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tagKeys(reflect.TypeOf(tc.typ))
			if tc.v {
				want = versioned(want)
			}
			if !reflect.DeepEqual(tc.got, want) {
				t.Fatalf("required keys %v, struct tags say %v", tc.got, want)
			}
		})
	}
}

// tagKeys lists the cbor keys of t's fields that have no omitempty.
func tagKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		tag := f.Tag.Get("cbor")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || strings.Contains(opts, "omitempty") {
			continue
		}
		keys = append(keys, name)
	}
	return keys
}

func TestDecodeRejectsDuplicateKeys(t *testing.T) {
	in := rawMap(t, "v", 1, "agent", "pos-1", "ranges", []any{}, "agent", "alice@example.com")
	_, err := decodeAck(in)
	wantErr(t, err, ErrMalformed)
	noPII(t, err, "alice@example.com")

	// A duplicate deep inside free-form properties is caught too, and its
	// key, which could be anything, is not echoed.
	props := rawMap(t, "alice@example.com", 1, "alice@example.com", 2)
	ev := mutate(t, must[[]byte](t)(EncodeEvent(sampleEvent())), func(m map[string]any) { m["properties"] = rawCBOR(props) })
	_, err = DecodeEvent(ev)
	wantErr(t, err, ErrMalformed)
	noPII(t, err, "alice@example.com")
}

// rawCBOR marshals as itself.
type rawCBOR []byte

func (r rawCBOR) MarshalCBOR() ([]byte, error) { return r, nil }

func TestDecodeRejectsWrongTypes(t *testing.T) {
	ack := must[[]byte](t)(EncodeAck(sampleAck()))
	cases := map[string]func(map[string]any){
		"agent is a number":       func(m map[string]any) { m["agent"] = 5 },
		"ranges is a map":         func(m map[string]any) { m["ranges"] = map[string]any{} },
		"range of three":          func(m map[string]any) { m["ranges"] = []any{[]any{1, 2, 3}} },
		"range of one":            func(m map[string]any) { m["ranges"] = []any{[]any{1}} },
		"range bound is negative": func(m map[string]any) { m["ranges"] = []any{[]any{-1, 2}} },
		"range bound is a float":  func(m map[string]any) { m["ranges"] = []any{[]any{1.5, 2}} },
		"pace is negative":        func(m map[string]any) { m["pace"] = -5 },
		"pace is text":            func(m map[string]any) { m["pace"] = "fast" },
		"agent is bytes":          func(m map[string]any) { m["agent"] = []byte("pos-1") },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeAck(mutate(t, ack, f))
			wantErr(t, err, ErrMalformed)
		})
	}
}

func TestDecodeRejectsInvalid(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		name   string
		c      codec
		break_ func(m map[string]any)
		field  string
	}{
		{"ack agent with slash", codecs()[3], func(m map[string]any) { m["agent"] = "pos/1" }, "agent"},
		{"ack agent empty", codecs()[3], func(m map[string]any) { m["agent"] = "" }, "agent"},
		{"ack agent too long", codecs()[3], func(m map[string]any) { m["agent"] = long }, "agent"},
		{"ack range reversed", codecs()[3], func(m map[string]any) { m["ranges"] = []any{[]any{1, 2}, []any{9, 3}} }, "ranges[1]"},
		{"sync from zero", codecs()[4], func(m map[string]any) { m["from"] = 0 }, "from"},
		{"status at zero", codecs()[5], func(m map[string]any) { m["at"] = 0 }, "at"},
		{"status version empty", codecs()[5], func(m map[string]any) { m["version"] = "" }, "version"},
		{"status store bad", codecs()[5], func(m map[string]any) { m["store"] = "s 1" }, "store"},
		{"batch first after last", codecs()[2], func(m map[string]any) { m["first"] = 13 }, "first"},
		{"batch more events than seqs", codecs()[2], func(m map[string]any) { m["first"] = 12 }, "events"},
		{"batch no events", codecs()[2], func(m map[string]any) { m["events"] = []any{} }, "events"},
		{"batch event purpose bad", codecs()[2], func(m map[string]any) {
			e := m["events"].([]any)[1].(map[string]any)
			e["context"].(map[string]any)["purpose"] = "a.b"
		}, "events[1].context.purpose"},
		{"event id uppercase", codecs()[0], func(m map[string]any) { m["messageId"] = strings.ToUpper(testMessageID) }, "messageId"},
		{"event id v4", codecs()[0], func(m map[string]any) { m["messageId"] = "01890a5d-ac96-474b-bcce-b302099a8057" }, "messageId"},
		{"event type unknown", codecs()[0], func(m map[string]any) { m["type"] = "page" }, "type"},
		{"track without name", codecs()[0], func(m map[string]any) { delete(m, "event") }, "event"},
		{"identify with name", codecs()[1], func(m map[string]any) { m["event"] = "x" }, "event"},
		{"no identity", codecs()[0], func(m map[string]any) { delete(m, "userId") }, "userId"},
		{"alias without previousId", codecs()[0], func(m map[string]any) { m["type"] = "alias"; delete(m, "event") }, "previousId"},
		{"timestamp negative", codecs()[0], func(m map[string]any) { m["originalTimestamp"] = -1 }, "originalTimestamp"},
		{"device missing", codecs()[0], func(m map[string]any) { delete(m["context"].(map[string]any), "device") }, "context.device"},
		{"consent purpose bad", codecs()[0], func(m map[string]any) {
			m["context"].(map[string]any)["consent"] = map[string]any{"categoryPreferences": map[string]any{"": true}}
		}, "context.consent.categoryPreferences"},
		{"value too deep", codecs()[0], func(m map[string]any) { m["properties"] = map[string]any{"x": deep(11)} }, "properties"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			valid := must[[]byte](t)(tc.c.encode(tc.c.valid()))
			_, err := tc.c.decode(mutate(t, valid, tc.break_))
			wantErr(t, err, ErrInvalid)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %q: want field %q", err, tc.field)
			}
		})
	}
}

// deep returns n nested arrays.
func deep(n int) any {
	var v any = "leaf"
	for range n {
		v = []any{v}
	}
	return v
}

func TestValueNesting(t *testing.T) {
	e := sampleEvent()
	e.Properties = map[string]any{"x": deep(MaxValueNesting - 1)}
	b, err := EncodeEvent(e)
	wantErr(t, err)
	batch := sampleBatch()
	batch.Events = []Event{e}
	_, err = DecodeEventBatch(must[[]byte](t)(EncodeEventBatch(batch)))
	wantErr(t, err)
	if _, err := DecodeEvent(b); err != nil {
		t.Fatal(err)
	}
	e.Properties = map[string]any{"x": deep(MaxValueNesting)}
	_, err = EncodeEvent(e)
	wantErr(t, err, ErrInvalid)
}

func TestEncodeRejectsWhatDecodeWould(t *testing.T) {
	cases := map[string]any{
		"NaN":          math.NaN(),
		"infinity":     math.Inf(1),
		"float32 NaN":  float32(math.NaN()),
		"big uint":     uint64(math.MaxUint64),
		"int keys":     map[int]string{1: "a"},
		"struct":       struct{ A int }{1},
		"pointer":      new(int),
		"nested NaN":   []any{map[string]any{"a": math.NaN()}},
		"typed slices": []float64{1, math.Inf(-1)},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			e := sampleEvent()
			e.Properties = map[string]any{"x": v}
			_, err := EncodeEvent(e)
			wantErr(t, err, ErrInvalid)
		})
	}
	ok := map[string]any{"ints": []int{1, 2}, "uint": uint32(7), "strings": map[string]string{"a": "b"}, "bytes": []byte{1}}
	e := sampleEvent()
	e.Properties = ok
	b, err := EncodeEvent(e)
	wantErr(t, err)
	if _, err := DecodeEvent(b); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejectsNonFinite(t *testing.T) {
	valid := must[[]byte](t)(EncodeEvent(sampleEvent()))
	for name, raw := range map[string][]byte{
		"NaN":       {0xf9, 0x7e, 0x00},
		"infinity":  {0xf9, 0x7c, 0x00},
		"simple 99": {0xf8, 0x63},
		"neg big":   {0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"int key":   {0xa1, 0x01, 0x01},
	} {
		t.Run(name, func(t *testing.T) {
			in := mutate(t, valid, func(m map[string]any) { m["properties"] = map[string]any{"x": rawCBOR(raw)} })
			_, err := DecodeEvent(in)
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSizes(t *testing.T) {
	big := func(n int) Event {
		e := sampleEvent()
		e.Properties = map[string]any{"blob": strings.Repeat("x", n)}
		return e
	}
	t.Run("event over limit", func(t *testing.T) {
		_, err := EncodeEvent(big(MaxEventSize))
		wantErr(t, err, ErrTooLarge)
	})
	t.Run("batch over limit", func(t *testing.T) {
		b := sampleBatch()
		b.First, b.Last = 1, 100
		b.Events = nil
		for i := range 9 {
			e := big(30 << 10)
			e.MessageID = testMessageID[:35] + string(rune('0'+i))
			b.Events = append(b.Events, e)
		}
		_, err := EncodeEventBatch(b)
		wantErr(t, err, ErrTooLarge)
	})
	t.Run("decode checks size before parsing", func(t *testing.T) {
		junk := bytes.Repeat([]byte{0xff}, MaxEventBatchSize+1)
		_, err := DecodeEventBatch(junk)
		wantErr(t, err, ErrTooLarge)
		_, err = DecodeSyncRequest(junk[:MaxSyncRequestSize+1])
		wantErr(t, err, ErrTooLarge)
		_, err = DecodeAgentStatus(junk[:MaxAgentStatusSize+1])
		wantErr(t, err, ErrTooLarge)
		_, err = decodeChange(junk[:MaxChangeSize+1])
		wantErr(t, err, ErrTooLarge)
	})
	t.Run("event in batch over limit", func(t *testing.T) {
		// Built by hand: the encoder would refuse it.
		e := mutate(t, must[[]byte](t)(EncodeEvent(sampleEvent())), func(m map[string]any) {
			m["properties"] = map[string]any{"blob": strings.Repeat("x", MaxEventSize)}
		})
		b := mutate(t, must[[]byte](t)(EncodeEventBatch(sampleBatch())), func(m map[string]any) {
			m["events"] = []any{rawCBOR(e)}
		})
		_, err := DecodeEventBatch(b)
		wantErr(t, err, ErrTooLarge)
	})
}

// TestOverheads proves MaxEventBatchOverhead and MaxChangeSetOverhead with
// the largest header a valid message can have.
func TestOverheads(t *testing.T) {
	id := strings.Repeat("x", 64)
	e := sampleEvent()
	batch := EventBatch{Agent: id, Store: id, First: math.MaxUint64 - 1, Last: math.MaxUint64, SentAt: math.MaxInt64, Events: []Event{e}}
	evLen := len(must[[]byte](t)(EncodeEvent(e)))
	// An array of up to MaxItems elements needs at most 4 more header bytes.
	if over := len(must[[]byte](t)(EncodeEventBatch(batch))) - evLen + 4; over > MaxEventBatchOverhead {
		t.Fatalf("event batch overhead %d > %d", over, MaxEventBatchOverhead)
	}
	c := sampleChanges()[2]
	c.Seq = math.MaxUint64
	cs := ChangeSet{From: math.MaxUint64, To: math.MaxUint64, Snapshot: true, More: true, Changes: []Change{c}}
	cLen := len(must[[]byte](t)(EncodeChange(c)))
	if over := len(must[[]byte](t)(EncodeChangeSet(cs))) - cLen + 4; over > MaxChangeSetOverhead {
		t.Fatalf("change set overhead %d > %d", over, MaxChangeSetOverhead)
	}
}

func TestBatchWithHoles(t *testing.T) {
	b := sampleBatch()
	b.First, b.Last = 1, 1000 // 998 shed entries
	got := must[EventBatch](t)(DecodeEventBatch(must[[]byte](t)(EncodeEventBatch(b))))
	if got.First != 1 || got.Last != 1000 || len(got.Events) != 2 {
		t.Fatalf("got %+v", got)
	}
}

func TestErrorsCarryNoValues(t *testing.T) {
	secret := "alice@example.com"
	e := sampleEvent()
	e.Context.Device = secret
	_, err := EncodeEvent(e)
	wantErr(t, err, ErrInvalid)
	noPII(t, err, secret)

	c := Change{Seq: 1, Body: &EraseChange{Profile: secret}}
	_, err = EncodeChange(c)
	wantErr(t, err, ErrInvalid)
	noPII(t, err, secret)

	big := mutate(t, must[[]byte](t)(EncodeAck(sampleAck())), func(m map[string]any) { m["pace"] = uint64(math.MaxUint64) })
	_, err = decodeAck(mutate(t, big, func(m map[string]any) { m["agent"] = -12345678901 }))
	wantErr(t, err, ErrMalformed)
	noPII(t, err, "12345678901")
}

// A batch of events encoded one by one is the batch EncodeEventBatch makes,
// byte for byte, and decodes to the same events.
func TestEncodeEventBatchRaw(t *testing.T) {
	b := EventBatch{Agent: "a1", Store: "s1", First: 3, Last: 9, SentAt: 1_700_000_000_000}
	var raws [][]byte
	for i := range 3 {
		e := Event{MessageID: event.NewID(), Type: EventTrack, Event: "Product Viewed", AnonymousID: "v",
			OriginalTimestamp: 1_700_000_000_000 + int64(i), Properties: map[string]any{"i": int64(i)},
			Context: Context{Store: "s1", Agent: "a1", Device: "pos-1", Purpose: "analytics", Consent: Consent{CategoryPreferences: map[string]bool{"analytics": true}}}}
		raw, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		b.Events = append(b.Events, e)
	}
	want, err := EncodeEventBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeEventBatchRaw(b, raws)
	if err != nil || string(got) != string(want) {
		t.Fatalf("raw batch differs (%v)", err)
	}
	big := [][]byte{make([]byte, MaxEventSize+1)}
	if _, err := EncodeEventBatchRaw(b, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized raw event: %v", err)
	}
	if _, err := EncodeEventBatchRaw(EventBatch{Agent: "a1", Store: "s1", First: 3, Last: 3, SentAt: 1}, raws); !errors.Is(err, ErrInvalid) {
		t.Fatalf("three events in one seq: %v", err)
	}
}
