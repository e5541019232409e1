package wire

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// The fuzz targets cover every decoder of outside input. Each asserts that
// nothing panics and that anything accepted (1) passes Validate, (2)
// re-encodes, since an encoder refusing what its decoder accepts would
// strand a message, and (3) re-encodes to bytes that decode again to the
// same bytes: the canonical form is a fixed point. Seeds live in
// testdata/fuzz/FuzzXxx; go test -run TestFuzzSeeds -update rewrites the
// generated ones.

// checkAccepted asserts the properties above for a value v a decoder
// accepted.
func checkAccepted[T validator](t *testing.T, v T, enc func(T) ([]byte, error), dec func([]byte) (T, error)) {
	t.Helper()
	if err := v.Validate(); err != nil {
		t.Fatalf("accepted a value that fails Validate: %v", err)
	}
	b1, err := enc(v)
	if err != nil {
		t.Fatalf("accepted a value the encoder refuses: %v", err)
	}
	v2, err := dec(b1)
	if err != nil {
		t.Fatalf("refused its own encoding: %v", err)
	}
	b2, err := enc(v2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("encoding is not a fixed point: %v", err)
	}
}

// seeds returns the generated seed inputs of each target.
func seeds(t testing.TB) map[string][][]byte {
	s := testSigner(t, "central")
	enc := func(c codec) []byte { return must[[]byte](t)(c.encode(c.valid())) }
	out := map[string][][]byte{}
	for _, c := range codecs() {
		b := enc(c)
		broken := [][]byte{b, b[:len(b)/2], indefinite(b), mutate(t, b, func(m map[string]any) { m["v"] = 2 })}
		switch v := c.valid().(type) {
		case Event:
			out["FuzzDecodeEvent"] = append(out["FuzzDecodeEvent"], broken...)
		case EventBatch:
			out["FuzzDecodeEventBatch"] = append(out["FuzzDecodeEventBatch"], broken...)
		case SyncRequest:
			out["FuzzDecodeSyncRequest"] = append(out["FuzzDecodeSyncRequest"], broken...)
		case AgentStatus:
			out["FuzzDecodeAgentStatus"] = append(out["FuzzDecodeAgentStatus"], broken...)
		case Ack:
			out["FuzzDecodeAck"] = append(out["FuzzDecodeAck"], broken...)
			signed := must[[]byte](t)(SignAck(s, testScope, v))
			out["FuzzVerifyAck"] = append(out["FuzzVerifyAck"], signed, b, signed[:len(signed)-1])
		case Change:
			out["FuzzDecodeChange"] = append(out["FuzzDecodeChange"], broken...)
			signed := must[[]byte](t)(SignChange(s, testScope, v))
			out["FuzzVerifyChange"] = append(out["FuzzVerifyChange"], signed, b)
		case ChangeSet:
			out["FuzzDecodeChangeSet"] = append(out["FuzzDecodeChangeSet"], broken...)
			signed := must[[]byte](t)(SignChangeSet(s, testScope, v))
			out["FuzzVerifyChangeSet"] = append(out["FuzzVerifyChangeSet"], signed, b)
		}
	}
	for k := TopicEvents; k <= TopicSyncReply; k++ {
		out["FuzzParseTopic"] = append(out["FuzzParseTopic"], []byte(must[string](t)(testScope.Topic(k))))
	}
	out["FuzzParseTopic"] = append(out["FuzzParseTopic"], []byte("cdp/v1/acme/down/s1/pos-1/changes"), []byte("cdp/v1/+/up/#"))
	return out
}

// TestFuzzSeeds writes the generated seeds into testdata/fuzz with -update
// and otherwise checks that each target has a committed corpus.
func TestFuzzSeeds(t *testing.T) {
	for target, inputs := range seeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if !*update {
			if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
				t.Errorf("%s has no committed seeds (run with -update)", target)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			lit := "[]byte(" + strconv.Quote(string(in)) + ")"
			if target == "FuzzParseTopic" {
				lit = "string(" + strconv.Quote(string(in)) + ")"
			}
			body := "go test fuzz v1\n" + lit + "\n"
			name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func addSeeds(f *testing.F, target string) {
	for _, in := range seeds(f)[target] {
		f.Add(in)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	addSeeds(f, "FuzzDecodeEvent")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data)
		if err == nil {
			checkAccepted(t, e, EncodeEvent, DecodeEvent)
		}
		// The in-place check takes only what DecodeEvent accepts.
		if id, ok := checkEvent(data); ok {
			if want, _ := parseUUID([]byte(e.MessageID)); err != nil || id != want {
				t.Fatalf("checkEvent took %x (id %x); DecodeEvent: %q, %v", data, id, e.MessageID, err)
			}
		}
	})
}

func FuzzDecodeEventBatch(f *testing.F) {
	addSeeds(f, "FuzzDecodeEventBatch")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeEventBatch(data)
		if err == nil {
			checkAccepted(t, b, EncodeEventBatch, DecodeEventBatch)
		}
		checkSameAsIDs(t, data, b, err)
	})
}

func FuzzDecodeSyncRequest(f *testing.F) {
	addSeeds(f, "FuzzDecodeSyncRequest")
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeSyncRequest(data); err == nil {
			checkAccepted(t, r, EncodeSyncRequest, DecodeSyncRequest)
		}
	})
}

func FuzzDecodeAgentStatus(f *testing.F) {
	addSeeds(f, "FuzzDecodeAgentStatus")
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := DecodeAgentStatus(data); err == nil {
			checkAccepted(t, s, EncodeAgentStatus, DecodeAgentStatus)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	addSeeds(f, "FuzzDecodeAck")
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := decodeAck(data); err == nil {
			checkAccepted(t, a, EncodeAck, decodeAck)
		}
	})
}

func FuzzDecodeChange(f *testing.F) {
	addSeeds(f, "FuzzDecodeChange")
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := decodeChange(data); err == nil {
			checkAccepted(t, c, EncodeChange, decodeChange)
		}
	})
}

func FuzzDecodeChangeSet(f *testing.F) {
	addSeeds(f, "FuzzDecodeChangeSet")
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := decodeChangeSet(data); err == nil {
			checkAccepted(t, s, EncodeChangeSet, decodeChangeSet)
		}
	})
}

// The verify targets also re-sign what they accepted and verify it again.
// Mutations rarely keep a valid signature, so the decode targets above are
// what explores the payload decoders; these explore the COSE envelope.

func FuzzVerifyChange(f *testing.F) {
	addSeeds(f, "FuzzVerifyChange")
	s, v := testSigner(f, "central"), testVerifier(f, "central")
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := VerifyChange(v, testScope, msg)
		if err != nil {
			return
		}
		checkAccepted(t, c, EncodeChange, decodeChange)
		resigned := must[[]byte](t)(SignChange(s, testScope, c))
		must[Change](t)(VerifyChange(v, testScope, resigned))
	})
}

func FuzzVerifyAck(f *testing.F) {
	addSeeds(f, "FuzzVerifyAck")
	s, v := testSigner(f, "central"), testVerifier(f, "central")
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := VerifyAck(v, testScope, msg)
		if err != nil {
			return
		}
		checkAccepted(t, a, EncodeAck, decodeAck)
		resigned := must[[]byte](t)(SignAck(s, testScope, a))
		must[Ack](t)(VerifyAck(v, testScope, resigned))
	})
}

func FuzzVerifyChangeSet(f *testing.F) {
	addSeeds(f, "FuzzVerifyChangeSet")
	s, v := testSigner(f, "central"), testVerifier(f, "central")
	f.Fuzz(func(t *testing.T, msg []byte) {
		cs, err := VerifyChangeSet(v, testScope, msg)
		if err != nil {
			return
		}
		checkAccepted(t, cs, EncodeChangeSet, decodeChangeSet)
		resigned := must[[]byte](t)(SignChangeSet(s, testScope, cs))
		must[ChangeSet](t)(VerifyChangeSet(v, testScope, resigned))
	})
}

// FuzzParseTopic asserts that an accepted name is exactly the name its
// kind and scope build: parsing and building are inverse.
func FuzzParseTopic(f *testing.F) {
	for _, in := range seeds(f)["FuzzParseTopic"] {
		f.Add(string(in))
	}
	f.Fuzz(func(t *testing.T, name string) {
		k, s, err := ParseTopic(name)
		if err != nil {
			return
		}
		built, err := s.Topic(k)
		if err != nil || built != name {
			t.Fatalf("ParseTopic(%q) = %v %+v, which builds %q (%v)", name, k, s, built, err)
		}
	})
}

// checkSameAsIDs asserts that DecodeEventBatchIDs gives data the verdict
// DecodeEventBatch gave it (b, err): the same error, or the same header
// and messageIds.
func checkSameAsIDs(t *testing.T, data []byte, b EventBatch, err error) {
	t.Helper()
	h, ids, err2 := DecodeEventBatchIDs(data)
	if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
		t.Fatalf("DecodeEventBatch: %v; DecodeEventBatchIDs: %v", err, err2)
	}
	if err != nil {
		return
	}
	events := b.Events
	b.Events = nil
	if !reflect.DeepEqual(h, b) || len(ids) != len(events) {
		t.Fatalf("header %+v with %d ids, want %+v with %d", h, len(ids), b, len(events))
	}
	for i, e := range events {
		if want, _ := parseUUID([]byte(e.MessageID)); ids[i] != want {
			t.Fatalf("events[%d]: id %x, want %s", i, ids[i], e.MessageID)
		}
	}
}
