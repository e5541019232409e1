package store

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseEnvelope holds the fast envelope reader to the strict decoder:
// whatever it accepts, the strict decoder accepts with the same values.
func FuzzParseEnvelope(f *testing.F) {
	tx := fuzzTx(f)
	for _, e := range []Entry{
		{Class: Telemetry, At: 1767225600000, Label: "analytics", Payload: []byte("x")},
		{Class: Critical, At: -5, Subject: []byte{1, 2, 3}, Label: "é", Payload: make([]byte, 300)},
		{Class: Critical},
	} {
		v, err := tx.encode(7, e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{0xa2, 0x00, 0x01, 0x00, 0x01}) // a key twice
	f.Add([]byte{0xa1, 0x04, 0x62, 0xff, 0xfe}) // a label that is not UTF-8
	f.Fuzz(func(t *testing.T, v []byte) {
		class, subject, headOK := envelopeHead(v)
		fast, ok := parseEnvelope(v)
		if !ok {
			return
		}
		valid := fast.V == envelopeV1 && (fast.Class == Critical || fast.Class == Telemetry)
		if valid && (!headOK || class != fast.Class || !bytes.Equal(subject, fast.Subject)) || !valid && headOK {
			t.Fatalf("%x: the head reader says %v %x (%t), the full one %v %x", v, class, subject, headOK, fast.Class, fast.Subject)
		}
		var strict envelope
		if err := UnmarshalRecord(bucketOutbox, u64key(7), v, &strict); err != nil {
			t.Fatalf("fast reader took %x, the strict decoder refuses it: %v", v, err)
		}
		if len(fast.Subject) == 0 && len(strict.Subject) == 0 {
			fast.Subject, strict.Subject = nil, nil
		}
		if len(fast.Sealed) == 0 && len(strict.Sealed) == 0 {
			fast.Sealed, strict.Sealed = nil, nil
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%x: fast %+v, strict %+v", v, fast, strict)
		}
	})
}

func TestParseEnvelopeTakesWhatEncodeWrites(t *testing.T) {
	tx := fuzzTx(t)
	e := Entry{Class: Telemetry, At: 1767225600000, Subject: []byte("subject"), Label: "analytics", Payload: []byte("payload")}
	v, err := tx.encode(7, e)
	if err != nil {
		t.Fatal(err)
	}
	env, ok := parseEnvelope(v)
	if !ok {
		t.Fatalf("the fast reader refuses an envelope encode wrote: %x", v)
	}
	if env.V != envelopeV1 || env.Class != e.Class || env.At != e.At || string(env.Subject) != "subject" || env.Label != e.Label {
		t.Fatalf("read %+v from %+v", env, e)
	}
	r, err := tx.decode(u64key(7), v, true)
	if err != nil || string(r.Payload) != "payload" || string(r.Subject) != "subject" {
		t.Fatalf("decode: %+v, %v", r, err)
	}
	// The record must not share the stored bytes.
	v[bytes.Index(v, []byte("subject"))] = 'X'
	if string(r.Subject) != "subject" {
		t.Fatal("the decoded subject points into the stored value")
	}
}
