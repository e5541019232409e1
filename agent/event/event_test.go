package event

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() *Event {
	return &Event{
		MessageID: NewID(), Type: Track, Event: "Order Completed", UserID: "cust-1",
		OriginalTimestamp: 1_700_000_000_123,
		Properties:        map[string]any{"total": 42.5, "email": "ada@example.com", "Phone": "+447700900123", "items": []any{"a", "b"}},
		Traits:            map[string]any{"firstName": "Ada"},
		Context: Context{Store: "s1", Agent: "a1", Device: "pos-1", Purpose: "service",
			Consent: Consent{CategoryPreferences: map[string]bool{"service": true}}},
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	e := sample()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e.Properties["total"] = 42.5
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n%+v\n%+v", got, e)
	}
	again, _ := got.Encode()
	if string(again) != string(b) {
		t.Fatal("encoding is not deterministic")
	}
}

func TestStrip(t *testing.T) {
	e := sample()
	e.AnonymousID = "anon-known"
	e.Strip(DefaultIdentifying)
	if e.UserID != "" || e.Traits != nil || e.AnonymousID == "anon-known" || !ValidID(e.AnonymousID) {
		t.Fatalf("identity left: %+v", e)
	}
	if _, ok := e.Properties["email"]; ok {
		t.Fatal("email property kept")
	}
	if _, ok := e.Properties["Phone"]; ok {
		t.Fatal("property names are matched case-insensitively")
	}
	if e.Properties["total"] != 42.5 || e.Context.Purpose != "service" {
		t.Fatal("non-identifying data lost")
	}
}

func TestTooLarge(t *testing.T) {
	e := sample()
	e.Properties["blob"] = strings.Repeat("x", MaxSize)
	if _, err := e.Encode(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode: %v", err)
	}
	if _, err := Decode(make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decode: %v", err)
	}
}

// UUIDv7s are well formed and strictly increase, even within a millisecond
// and when the clock steps back.
func TestNewIDMonotonic(t *testing.T) {
	var ms int64
	g := &IDs{now: func() time.Time { return time.UnixMilli(ms) }}
	prev := ""
	for i, at := range []int64{1000, 1000, 1000, 999, 1001, 1001} {
		ms = at
		id := g.Next()
		if !ValidID(id) || id[14] != '7' || !strings.ContainsAny(id[19:20], "89ab") {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if id <= prev {
			t.Fatalf("id %d %q not after %q", i, id, prev)
		}
		prev = id
	}
	ms = 2000
	for range 5000 {
		id := g.Next()
		if id <= prev {
			t.Fatalf("counter overflow broke order: %q after %q", id, prev)
		}
		prev = id
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"0190a6d2-7c1e-7abc-8def-0123456789ab": true,
		"0190a6d2-7c1e-4abc-8def-0123456789ab": false, // v4
		"0190a6d2-7c1e-7abc-cdef-0123456789ab": false, // wrong variant
		"0190A6D2-7C1E-7ABC-8DEF-0123456789AB": false,
		"0190a6d27c1e7abc8def0123456789ab":     false,
		"":                                     false,
	} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) != %v", s, want)
		}
	}
}

// Outbox payloads are decoded before a batch leaves; whatever is on disk,
// Decode must refuse bad bytes without panicking, and what it accepts must
// re-encode to the same bytes' meaning.
func FuzzDecodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		out, err := e.Encode()
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatalf("accepted event does not encode: %v", err)
		}
		e2, err := Decode(out)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event: %v", err)
		}
	})
}

// What Encode accepts, Decode reads back: the limits are the same.
func TestEncodeRefusesWhatDecodeWould(t *testing.T) {
	deep := any("leaf")
	for range MaxValueDepth {
		deep = map[string]any{"x": deep}
	}
	tests := map[string]any{
		"too deep":   deep,
		"too wide":   make([]any, MaxItems+1),
		"NaN":        math.NaN(),
		"a func":     func() {},
		"inf inside": []any{1.0, math.Inf(1)},
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			e := sample()
			e.Properties["v"] = v
			if _, err := e.Encode(); !errors.Is(err, ErrBadValue) {
				t.Fatalf("encode: %v", err)
			}
		})
	}
	ok := any("leaf")
	for range MaxValueDepth - 1 {
		ok = map[string]any{"x": ok}
	}
	e := sample()
	e.Properties["v"] = ok
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatalf("an event at the limit does not decode: %v", err)
	}
}
