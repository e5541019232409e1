package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

func TestSignVerify(t *testing.T) {
	s, v := testSigner(t, "central"), testVerifier(t, "central")
	t.Run("change", func(t *testing.T) {
		for _, c := range sampleChanges() {
			msg := must[[]byte](t)(SignChange(s, testScope, c))
			got := must[Change](t)(VerifyChange(v, testScope, msg))
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("got %#v, want %#v", got, c)
			}
		}
	})
	t.Run("change on another agent of the store", func(t *testing.T) {
		msg := must[[]byte](t)(SignChange(s, Scope{Tenant: "acme", Store: "s1"}, sampleChanges()[2]))
		other := testScope
		other.Agent = "kiosk-2"
		must[Change](t)(VerifyChange(v, other, msg))
	})
	t.Run("ack", func(t *testing.T) {
		msg := must[[]byte](t)(SignAck(s, testScope, sampleAck()))
		got := must[Ack](t)(VerifyAck(v, testScope, msg))
		if !reflect.DeepEqual(got, sampleAck()) {
			t.Fatalf("got %#v", got)
		}
	})
	t.Run("change set", func(t *testing.T) {
		for _, cs := range []ChangeSet{sampleRun(), sampleSnapshot()} {
			msg := must[[]byte](t)(SignChangeSet(s, testScope, cs))
			got := must[ChangeSet](t)(VerifyChangeSet(v, testScope, msg))
			if !reflect.DeepEqual(got, cs) {
				t.Fatalf("got %#v", got)
			}
		}
	})
}

// forge builds a COSE_Sign1 the way a careless or hostile sender might.
func forge(t *testing.T, signer cose.Signer, protected cose.ProtectedHeader, payload []byte, aad string) []byte {
	t.Helper()
	msg, err := cose.Sign1(rand.Reader, signer, cose.Headers{Protected: protected}, payload, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// forgeRaw is forge with a protected header go-cose would refuse to build.
func forgeRaw(t *testing.T, signer cose.Signer, protected map[int]any, payload []byte, aad string) []byte {
	t.Helper()
	raw, err := cbor.Marshal(must[[]byte](t)(cbor.Marshal(protected)))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cose.Sign1(rand.Reader, signer, cose.Headers{RawProtected: raw}, payload, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func coseSigner(t *testing.T, key ed25519.PrivateKey) cose.Signer {
	t.Helper()
	s, err := cose.NewSigner(cose.AlgorithmEdDSA, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRejects(t *testing.T) {
	s, v := testSigner(t, "central"), testVerifier(t, "central")
	change := sampleChanges()[2]
	payload := must[[]byte](t)(EncodeChange(change))
	aad := must[string](t)(testScope.Topic(TopicChanges))
	good := must[[]byte](t)(SignChange(s, testScope, change))
	central := testKey("central")
	kid := kidOf(central.Public().(ed25519.PublicKey))

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := cose.NewSigner(cose.AlgorithmES256, ecKey)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		msg  []byte
		at   Scope
		want []error
	}{
		{"unsigned cbor", payload, testScope, []error{ErrUnsigned, ErrBadSignature}},
		{"empty", nil, testScope, []error{ErrUnsigned}},
		{"untagged cose_sign1", good[1:], testScope, []error{ErrUnsigned}},
		{"truncated", good[:len(good)-3], testScope, []error{ErrBadSignature, ErrMalformed}},
		{"oversized", append([]byte{0xd2, 0x84}, make([]byte, MaxChangeSize+MaxSignedOverhead)...), testScope, []error{ErrTooLarge}},
		{"tampered payload", tamper(t, good, func(m *cose.Sign1Message) {
			m.Payload = must[[]byte](t)(EncodeChange(Change{Seq: 103, Body: &EraseChange{Profile: "p-999"}}))
		}), testScope, []error{ErrBadSignature}},
		{"tampered signature", tamper(t, good, func(m *cose.Sign1Message) { m.Signature[0] ^= 1 }), testScope, []error{ErrBadSignature}},
		{"detached payload", tamper(t, good, func(m *cose.Sign1Message) { m.Payload = nil }), testScope, []error{ErrBadSignature}},
		{"signed by an unknown key", must[[]byte](t)(SignChange(testSigner(t, "intruder"), testScope, change)), testScope, []error{ErrUnknownKey, ErrBadSignature}},
		{"unknown key without kid", forge(t, coseSigner(t, testKey("intruder")),
			cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA}, payload, aad), testScope, []error{ErrBadSignature}},
		{"unknown key claiming our kid", forge(t, coseSigner(t, testKey("intruder")),
			cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: kid}, payload, aad), testScope, []error{ErrBadSignature}},
		{"es256", forge(t, es256, cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256, cose.HeaderLabelKeyID: kid}, payload, aad),
			testScope, []error{ErrBadAlgorithm, ErrBadSignature}},
		{"no alg", forge(t, coseSigner(t, central), cose.ProtectedHeader{cose.HeaderLabelKeyID: kid}, payload, aad),
			testScope, []error{ErrBadAlgorithm}},
		{"crit header", forge(t, coseSigner(t, central), cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: kid, cose.HeaderLabelCritical: []any{cose.HeaderLabelKeyID},
		}, payload, aad), testScope, []error{ErrBadSignature}},
		{"kid as text", forgeRaw(t, coseSigner(t, central), map[int]any{1: -8, 4: "x"}, payload, aad), testScope, []error{ErrBadSignature}},
		{"no aad", forge(t, coseSigner(t, central), cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: kid}, payload, ""),
			testScope, []error{ErrBadSignature}},
		{"another store", good, Scope{Tenant: "acme", Store: "s2", Agent: "pos-1"}, []error{ErrBadSignature}},
		{"another tenant", good, Scope{Tenant: "other", Store: "s1", Agent: "pos-1"}, []error{ErrBadSignature}},
		{"bad scope", good, Scope{Tenant: "acme", Store: "s/1"}, []error{ErrBadTopic}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyChange(v, tc.at, tc.msg)
			wantErr(t, err, tc.want...)
		})
	}
}

// tamper decodes a signed message, lets f change it, and encodes it again
// with the old signature.
func tamper(t *testing.T, msg []byte, f func(m *cose.Sign1Message)) []byte {
	t.Helper()
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		t.Fatal(err)
	}
	m.Signature = bytes.Clone(m.Signature)
	f(&m)
	out, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyKeepsMessagesApart(t *testing.T) {
	s, v := testSigner(t, "central"), testVerifier(t, "central")
	ack := must[[]byte](t)(SignAck(s, testScope, sampleAck()))
	set := must[[]byte](t)(SignChangeSet(s, testScope, sampleRun()))
	change := must[[]byte](t)(SignChange(s, testScope, sampleChanges()[0]))

	_, err := VerifyChange(v, testScope, ack)
	wantErr(t, err, ErrBadSignature)
	_, err = VerifyChangeSet(v, testScope, ack)
	wantErr(t, err, ErrBadSignature)
	_, err = VerifyAck(v, testScope, set)
	wantErr(t, err, ErrBadSignature)
	_, err = VerifyAck(v, testScope, change)
	wantErr(t, err, ErrBadSignature)

	// An ack for one agent does not verify at another agent of the store.
	other := testScope
	other.Agent = "pos-2"
	_, err = VerifyAck(v, other, ack)
	wantErr(t, err, ErrBadSignature)
}

func TestVerifyAuthenticButInvalid(t *testing.T) {
	s, v := testSigner(t, "central"), testVerifier(t, "central")
	bad := mutate(t, must[[]byte](t)(EncodeChange(sampleChanges()[2])), func(m map[string]any) { m["kind"] = "segment" })
	msg := must[[]byte](t)(signMessage(s, testScope, TopicChanges, bad))
	_, err := VerifyChange(v, testScope, msg)
	wantErr(t, err, ErrUnknownKind)
	if errorsIs(err, ErrBadSignature) {
		t.Fatal("an authentic message must not count as a bad signature")
	}

	// An ack naming another agent than its topic: signed, but wrong.
	wrong := sampleAck()
	wrong.Agent = "pos-2"
	msg = must[[]byte](t)(signMessage(s, testScope, TopicAcks, must[[]byte](t)(EncodeAck(wrong))))
	_, err = VerifyAck(v, testScope, msg)
	wantErr(t, err, ErrInvalid)
	_, err = SignAck(s, testScope, wrong)
	wantErr(t, err, ErrInvalid)

	// A signed payload over its limit is refused before decoding.
	msg = must[[]byte](t)(signMessage(s, testScope, TopicChanges, make([]byte, MaxChangeSize+1)))
	_, err = VerifyChange(v, testScope, msg)
	wantErr(t, err, ErrTooLarge)
}

func TestKeyRotation(t *testing.T) {
	oldS, newS := testSigner(t, "central-2025"), testSigner(t, "central-2026")
	both := testVerifier(t, "central-2025", "central-2026")
	onlyNew := testVerifier(t, "central-2026")
	c := sampleChanges()[3]
	fromOld := must[[]byte](t)(SignChange(oldS, testScope, c))
	fromNew := must[[]byte](t)(SignChange(newS, testScope, c))

	must[Change](t)(VerifyChange(both, testScope, fromOld))
	must[Change](t)(VerifyChange(both, testScope, fromNew))
	must[Change](t)(VerifyChange(onlyNew, testScope, fromNew))
	_, err := VerifyChange(onlyNew, testScope, fromOld)
	wantErr(t, err, ErrUnknownKey)

	// Without kid, every key is tried.
	payload := must[[]byte](t)(EncodeChange(c))
	aad := must[string](t)(testScope.Topic(TopicChanges))
	noKid := forge(t, coseSigner(t, testKey("central-2026")), cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA}, payload, aad)
	must[Change](t)(VerifyChange(both, testScope, noKid))

	want := []string{KeyID(testKey("central-2025").Public().(ed25519.PublicKey)), KeyID(testKey("central-2026").Public().(ed25519.PublicKey))}
	got := both.KeyIDs()
	if len(got) != 2 || !(got[0] == want[0] && got[1] == want[1] || got[0] == want[1] && got[1] == want[0]) {
		t.Fatalf("KeyIDs() = %v, want %v in some order", got, want)
	}
	if oldS.KeyID() != want[0] {
		t.Fatalf("signer KeyID %s, want %s", oldS.KeyID(), want[0])
	}
}

func TestKeyConstruction(t *testing.T) {
	pub := testKey("a").Public().(ed25519.PublicKey)
	_, err := NewVerifier()
	wantErr(t, err, ErrInvalid)
	_, err = NewVerifier(pub[:31])
	wantErr(t, err, ErrInvalid)
	_, err = NewVerifier(pub, pub)
	wantErr(t, err, ErrInvalid)

	_, err = NewSigner(testKey("a")[:40])
	wantErr(t, err, ErrInvalid)
	corrupt := bytes.Clone(testKey("a"))
	corrupt[40] ^= 1
	_, err = NewSigner(corrupt)
	wantErr(t, err, ErrInvalid)

	_, err = VerifyChange(nil, testScope, must[[]byte](t)(SignChange(testSigner(t, "a"), testScope, sampleChanges()[2])))
	wantErr(t, err, ErrUnknownKey)
	_, err = SignChange(nil, testScope, sampleChanges()[2])
	if err == nil {
		t.Fatal("nil signer signed")
	}
}

func TestVerifyConcurrently(t *testing.T) {
	s, v := testSigner(t, "central"), testVerifier(t, "central", "other")
	msg := must[[]byte](t)(SignChangeSet(s, testScope, sampleRun()))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := VerifyChangeSet(v, testScope, msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSignatureIsDeterministic(t *testing.T) {
	s := testSigner(t, "central")
	a := must[[]byte](t)(SignAck(s, testScope, sampleAck()))
	b := must[[]byte](t)(SignAck(s, testScope, sampleAck()))
	if !bytes.Equal(a, b) {
		t.Fatal("signing the same ack twice gave different bytes")
	}
}
