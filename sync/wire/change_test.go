package wire

import (
	"errors"
	"reflect"
	"testing"
)

func TestChangeKinds(t *testing.T) {
	for _, c := range sampleChanges() {
		t.Run(string(c.Body.Kind()), func(t *testing.T) {
			b := must[[]byte](t)(EncodeChange(c))
			var m map[string]any
			if err := looseDec.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			// The wire form is one flat map: header beside the body.
			if m["kind"] != string(c.Body.Kind()) || m["v"] != uint64(1) || m["seq"] != c.Seq {
				t.Fatalf("header not flat: %v", m)
			}
			got := must[Change](t)(decodeChange(b))
			if reflect.TypeOf(got.Body) != reflect.TypeOf(c.Body) {
				t.Fatalf("body %T, want %T", got.Body, c.Body)
			}
		})
	}
}

func TestRestrictFalseIsKept(t *testing.T) {
	// With one union struct and omitempty, false would vanish and read as
	// "missing"; here it must travel.
	b := must[[]byte](t)(EncodeChange(Change{Seq: 1, Body: &RestrictChange{Profile: "p", Restricted: false}}))
	got := must[Change](t)(decodeChange(b))
	if r, ok := got.Body.(*RestrictChange); !ok || r.Restricted {
		t.Fatalf("got %#v", got.Body)
	}
}

func TestChangeRejects(t *testing.T) {
	valid := func(i int) []byte { return must[[]byte](t)(EncodeChange(sampleChanges()[i])) }
	cases := []struct {
		name string
		in   []byte
		want []error
	}{
		{"unknown kind", mutate(t, valid(2), func(m map[string]any) { m["kind"] = "segment" }), []error{ErrUnknownKind, ErrInvalid}},
		{"kind not text", mutate(t, valid(2), func(m map[string]any) { m["kind"] = 3 }), []error{ErrMalformed}},
		{"seq zero", mutate(t, valid(2), func(m map[string]any) { m["seq"] = 0 }), []error{ErrInvalid}},
		{"seq negative", mutate(t, valid(2), func(m map[string]any) { m["seq"] = -1 }), []error{ErrMalformed}},
		{"restrict without restricted", mutate(t, valid(3), func(m map[string]any) { delete(m, "restricted") }), []error{ErrMalformed}},
		{"profile id bad", mutate(t, valid(2), func(m map[string]any) { m["profile"] = "alice@example.com" }), []error{ErrInvalid}},
		{"ident short", mutate(t, valid(0), func(m map[string]any) { m["idents"] = []any{make([]byte, 31)} }), []error{ErrMalformed}},
		{"ident long", mutate(t, valid(0), func(m map[string]any) { m["idents"] = []any{make([]byte, 33)} }), []error{ErrMalformed}},
		{"ident as array", mutate(t, valid(0), func(m map[string]any) { m["idents"] = []any{make([]any, 32)} }), []error{ErrMalformed}},
		{"ident as text", mutate(t, valid(0), func(m map[string]any) { m["idents"] = []any{string(make([]byte, 32))} }), []error{ErrMalformed}},
		{"ident duplicate", mutate(t, valid(0), func(m map[string]any) {
			id := sampleIdent(1)
			m["idents"] = []any{id[:], id[:]}
		}), []error{ErrInvalid}},
		{"expires zero", mutate(t, valid(0), func(m map[string]any) { m["expires"] = 0 }), []error{ErrInvalid}},
		{"attr purpose bad", mutate(t, valid(0), func(m map[string]any) {
			m["attrs"] = []any{map[string]any{"name": "tier", "purpose": "", "value": 1}}
		}), []error{ErrInvalid}},
		{"attr duplicate", mutate(t, valid(0), func(m map[string]any) {
			a := map[string]any{"name": "tier", "purpose": "p", "value": 1}
			m["attrs"] = []any{a, a}
		}), []error{ErrInvalid}},
		{"consent status unknown", mutate(t, valid(1), func(m map[string]any) {
			m["purposes"] = map[string]any{"marketing": map[string]any{"status": "maybe", "basis": "consent", "at": 1}}
		}), []error{ErrInvalid}},
		{"consent basis unknown", mutate(t, valid(1), func(m map[string]any) {
			m["purposes"] = map[string]any{"marketing": map[string]any{"status": "granted", "basis": "whim", "at": 1}}
		}), []error{ErrInvalid}},
		{"consent at zero", mutate(t, valid(1), func(m map[string]any) {
			m["purposes"] = map[string]any{"marketing": map[string]any{"status": "granted", "basis": "consent", "at": 0}}
		}), []error{ErrInvalid}},
		{"consent empty", mutate(t, valid(1), func(m map[string]any) { m["purposes"] = map[string]any{} }), []error{ErrInvalid}},
		{"consent purposes as policy array", mutate(t, valid(1), func(m map[string]any) {
			m["purposes"] = []any{map[string]any{"name": "x", "basis": "consent"}}
		}), []error{ErrMalformed}},
		{"policy basis unknown", mutate(t, valid(4), func(m map[string]any) {
			m["purposes"] = []any{map[string]any{"name": "x", "basis": "whim"}}
			m["events"] = map[string]any{}
		}), []error{ErrInvalid}},
		{"policy duplicate purpose", mutate(t, valid(4), func(m map[string]any) {
			p := map[string]any{"name": "x", "basis": "consent"}
			m["purposes"] = []any{p, p}
			m["events"] = map[string]any{}
		}), []error{ErrInvalid}},
		{"policy event to undeclared purpose", mutate(t, valid(4), func(m map[string]any) {
			m["events"] = map[string]any{"Order Completed": "nowhere"}
		}), []error{ErrInvalid}},
		{"policy event name with newline", mutate(t, valid(4), func(m map[string]any) {
			m["events"] = map[string]any{"Order\nCompleted": "billing"}
		}), []error{ErrInvalid}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeChange(tc.in)
			wantErr(t, err, tc.want...)
			noPII(t, err, "alice@example.com")
		})
	}
}

func TestChangeValidateBody(t *testing.T) {
	for name, c := range map[string]Change{
		"nil body":       {Seq: 1},
		"typed nil body": {Seq: 1, Body: (*EraseChange)(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeChange(c)
			wantErr(t, err, ErrInvalid)
		})
	}
}

func TestChangeSetRules(t *testing.T) {
	ch := func(seq uint64) Change { return Change{Seq: seq, Body: &EraseChange{Profile: "p"}} }
	cases := []struct {
		name string
		cs   ChangeSet
		ok   bool
	}{
		{"run", ChangeSet{From: 5, To: 7, Changes: []Change{ch(5), ch(6), ch(7)}}, true},
		{"run with gap", ChangeSet{From: 5, To: 9, Changes: []Change{ch(5), ch(9)}}, true},
		{"empty run, up to date", ChangeSet{From: 5, To: 4}, true},
		{"empty run, to below from-1", ChangeSet{From: 5, To: 3}, false},
		{"run from zero", ChangeSet{From: 0, To: 3, Changes: []Change{ch(1)}}, false},
		{"run below from", ChangeSet{From: 5, To: 7, Changes: []Change{ch(4)}}, false},
		{"run above to", ChangeSet{From: 5, To: 7, Changes: []Change{ch(8)}}, false},
		{"run descending", ChangeSet{From: 5, To: 7, Changes: []Change{ch(6), ch(5)}}, false},
		{"run repeated", ChangeSet{From: 5, To: 7, Changes: []Change{ch(5), ch(5)}}, false},
		{"snapshot any order", ChangeSet{From: 1, To: 9, Snapshot: true, More: true, Changes: []Change{ch(9), ch(2), ch(2)}}, true},
		{"snapshot of empty central", ChangeSet{From: 0, To: 0, Snapshot: true}, true},
		{"snapshot seq above to", ChangeSet{From: 1, To: 9, Snapshot: true, Changes: []Change{ch(10)}}, false},
		{"invalid change", ChangeSet{From: 1, To: 9, Changes: []Change{{Seq: 1}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeChangeSet(tc.cs)
			if !tc.ok {
				wantErr(t, err, ErrInvalid)
				return
			}
			wantErr(t, err)
			got := must[ChangeSet](t)(decodeChangeSet(b))
			if got.From != tc.cs.From || got.To != tc.cs.To || len(got.Changes) != len(tc.cs.Changes) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestChangeSetChecksEachChange(t *testing.T) {
	big := Change{Seq: 1, Body: &ProfileChange{
		Profile: "p", Expires: 1,
		Attrs: []Attr{{Name: "blob", Purpose: "p", Value: make([]byte, MaxChangeSize)}},
	}}
	_, err := EncodeChangeSet(ChangeSet{From: 1, To: 1, Changes: []Change{big}})
	wantErr(t, err, ErrTooLarge)

	// A change over its limit inside a set within its own is refused on
	// decode as well.
	raw := mutate(t, must[[]byte](t)(EncodeChange(sampleChanges()[0])), func(m map[string]any) {
		m["attrs"] = []any{map[string]any{"name": "blob", "purpose": "p", "value": make([]byte, MaxChangeSize)}}
	})
	set := mutate(t, must[[]byte](t)(EncodeChangeSet(sampleRun())), func(m map[string]any) {
		m["changes"] = []any{rawCBOR(raw)}
	})
	_, err = decodeChangeSet(set)
	wantErr(t, err, ErrTooLarge)

	bad := mutate(t, must[[]byte](t)(EncodeChangeSet(sampleRun())), func(m map[string]any) {
		m["changes"].([]any)[2].(map[string]any)["profile"] = "a b"
	})
	_, err = decodeChangeSet(bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "changes[2].profile" {
		t.Fatalf("error %v: want field changes[2].profile", err)
	}
}

func TestIdentLogValue(t *testing.T) {
	id := sampleIdent(0xab)
	if got := id.String(); got != "abacadae…" {
		t.Fatalf("String() = %q", got)
	}
	if got := id.LogValue().String(); got != id.String() {
		t.Fatalf("LogValue() = %q", got)
	}
}
