package store

import (
	"bytes"
	"reflect"
	"testing"
)

// The decoders of stored records face whatever is on disk: a damaged page,
// a file from another program. Each must refuse bad bytes with an error,
// never a panic, and what it accepts must survive a round trip. Seeds live
// in testdata/fuzz.

func fuzzTx(t testing.TB) *Tx {
	s, err := newSealer(bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return &Tx{db: &DB{seal: s}}
}

func FuzzDecodeEnvelope(f *testing.F) {
	tx := fuzzTx(f)
	f.Fuzz(func(t *testing.T, v []byte) {
		key := u64key(42)
		r, err := tx.decode(key, v, true)
		if err != nil {
			if !IsCorrupt(err) {
				t.Fatalf("decode error is not a CorruptError: %v", err)
			}
			return
		}
		if r.Class != Critical && r.Class != Telemetry || r.Seq != 42 {
			t.Fatalf("accepted record %+v", r)
		}
		// What was accepted re-encodes and decodes to the same record.
		again, err := tx.encode(42, r.Entry)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := tx.decode(key, again, true)
		if err != nil || !reflect.DeepEqual(normal(r), normal(r2)) {
			t.Fatalf("round trip: %+v != %+v (%v)", r, r2, err)
		}
	})
}

// normal makes empty and nil slices compare equal.
func normal(r Record) Record {
	if len(r.Subject) == 0 {
		r.Subject = nil
	}
	if len(r.Payload) == 0 {
		r.Payload = nil
	}
	return r
}

func FuzzDecodeCounters(f *testing.F) {
	f.Fuzz(func(t *testing.T, v []byte) {
		var c outboxCounters
		if err := UnmarshalRecord(bucketMeta, []byte(metaCounters), v, &c); err != nil {
			return
		}
		b, err := MarshalRecord(&c)
		if err != nil {
			t.Fatal(err)
		}
		var c2 outboxCounters
		if err := UnmarshalRecord(bucketMeta, nil, b, &c2); err != nil || c != c2 {
			t.Fatalf("round trip %+v != %+v (%v)", c, c2, err)
		}
	})
}

func FuzzDecodeAuditEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, v []byte) {
		var e AuditEntry
		if err := UnmarshalRecord(bucketAudit, nil, v, &e); err != nil {
			return
		}
		b, err := MarshalRecord(&e)
		if err != nil {
			t.Fatal(err)
		}
		var e2 AuditEntry
		if err := UnmarshalRecord(bucketAudit, nil, b, &e2); err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip %+v != %+v (%v)", e, e2, err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := parseKey(raw)
		if err == nil && len(k) != KeySize {
			t.Fatalf("accepted a key of %d bytes", len(k))
		}
	})
}

func FuzzOpenSealed(f *testing.F) {
	tx := fuzzTx(f)
	f.Fuzz(func(t *testing.T, sealed []byte) {
		// Random bytes must never open: GCM's tag makes a forgery a 2^-128 event.
		if _, err := tx.db.seal.open("profiles", []byte("k"), sealed); err == nil {
			t.Fatal("forged sealed value opened")
		}
	})
}
