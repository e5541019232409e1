package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/veraison/go-cose"
)

// Signed messages.
//
// Signed(X) is a tagged COSE_Sign1 (RFC 9052) whose payload is the CBOR of
// X. The protected header holds alg EdDSA (-8) and kid, the signing key's
// KeyID as 8 raw bytes. The signature also covers, as COSE external AAD,
// the name of the topic the message is meant for, built from the receiver's
// own Scope (not from the topic it arrived on, which a bridge may rewrite):
// so a change signed for one store does not verify at another, and an Ack
// does not verify as a ChangeSet. PROTOCOL.md does not say this; it is the
// nearest sound variant of "signed by the central key", which alone would
// let anyone with publish rights replay one store's changes into another.

// KeyID returns the key id of pub as hex: the first 8 bytes of the SHA-256
// of the raw 32-byte key. Signers put those 8 bytes in the protected header
// as kid, so a Verifier holding several keys (during a rotation) picks the
// right one at once, and a configuration only lists key files.
func KeyID(pub ed25519.PublicKey) string { return hex.EncodeToString(kidOf(pub)) }

func kidOf(pub ed25519.PublicKey) []byte {
	sum := sha256.Sum256(pub)
	return sum[:8]
}

// Signer signs downlink messages with one Ed25519 key. It is safe for
// concurrent use.
type Signer struct {
	kid    []byte
	signer cose.Signer
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("new signer: %w: private key has %d bytes, want %d", ErrInvalid, len(key), ed25519.PrivateKeySize)
	}
	// A private key holds its public half; a corrupt one would sign
	// messages nobody can verify.
	if !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()), key) {
		return nil, fmt.Errorf("new signer: %w: public half does not match the seed", ErrInvalid)
	}
	s, err := cose.NewSigner(cose.AlgorithmEdDSA, key)
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return &Signer{kid: kidOf(key.Public().(ed25519.PublicKey)), signer: s}, nil
}

// KeyID returns the id of the Signer's key (see KeyID).
func (s *Signer) KeyID() string { return hex.EncodeToString(s.kid) }

// sign returns the tagged COSE_Sign1 of payload with aad as external data.
func (s *Signer) sign(aad string, payload []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("nil signer")
	}
	h := cose.Headers{Protected: cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA,
		cose.HeaderLabelKeyID:     s.kid,
	}}
	return cose.Sign1(rand.Reader, s.signer, h, payload, []byte(aad))
}

// Verifier checks downlink messages against the central's public keys. It
// is immutable and safe for concurrent use.
type Verifier struct {
	keys []trustedKey // sorted by kid, so keys are tried in a fixed order
}

type trustedKey struct {
	kid      []byte
	verifier cose.Verifier
}

// NewVerifier returns a Verifier trusting keys, at least one. Holding the
// old and the new key of a rotation at once is the intended use.
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("new verifier: %w: no keys", ErrInvalid)
	}
	v := &Verifier{}
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("new verifier: %w: key %d has %d bytes, want %d", ErrInvalid, i, len(k), ed25519.PublicKeySize)
		}
		cv, err := cose.NewVerifier(cose.AlgorithmEdDSA, k)
		if err != nil {
			return nil, fmt.Errorf("new verifier: key %d: %w", i, err)
		}
		if v.find(kidOf(k)) != nil {
			return nil, fmt.Errorf("new verifier: %w: key %d given twice", ErrInvalid, i)
		}
		v.keys = append(v.keys, trustedKey{kid: kidOf(k), verifier: cv})
	}
	slices.SortFunc(v.keys, func(a, b trustedKey) int { return bytes.Compare(a.kid, b.kid) })
	return v, nil
}

// KeyIDs returns the ids of the keys v trusts, for status output.
func (v *Verifier) KeyIDs() []string {
	if v == nil {
		return nil
	}
	ids := make([]string, len(v.keys))
	for i, k := range v.keys {
		ids[i] = hex.EncodeToString(k.kid)
	}
	return ids
}

func (v *Verifier) find(kid []byte) *trustedKey {
	for i := range v.keys {
		if bytes.Equal(v.keys[i].kid, kid) {
			return &v.keys[i]
		}
	}
	return nil
}

// sign1Prefix opens every tagged COSE_Sign1: tag 18, array of 4.
var sign1Prefix = []byte{0xd2, 0x84}

// open checks msg, a Signed message of at most limit bytes of payload, with
// aad as external data, and returns its payload. Every failure matches
// ErrBadSignature, except ErrTooLarge, which is checked before parsing.
func (v *Verifier) open(aad string, msg []byte, limit int) ([]byte, error) {
	if len(msg) > limit+MaxSignedOverhead {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(msg), limit+MaxSignedOverhead)
	}
	if v == nil || len(v.keys) == 0 {
		return nil, fmt.Errorf("%w: verifier holds no key", ErrUnknownKey)
	}
	if !bytes.HasPrefix(msg, sign1Prefix) {
		return nil, ErrUnsigned
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(msg); err != nil {
		return nil, fmt.Errorf("%w: %w: cose_sign1: %s", ErrBadSignature, ErrMalformed, describeCOSE(err))
	}
	if m.Payload == nil {
		return nil, fmt.Errorf("%w: detached payload", ErrBadSignature)
	}
	if len(m.Payload) > limit {
		return nil, fmt.Errorf("%w: payload of %d bytes, limit %d", ErrTooLarge, len(m.Payload), limit)
	}
	if err := checkHeaders(m.Headers.Protected); err != nil {
		return nil, err
	}
	if err := v.check(&m, []byte(aad)); err != nil {
		return nil, err
	}
	return m.Payload, nil
}

// checkHeaders requires alg EdDSA in the protected header and refuses a
// crit header: RFC 9052 says a receiver must reject a message whose
// critical headers it does not understand, and we understand none.
func checkHeaders(h cose.ProtectedHeader) error {
	alg, err := h.Algorithm()
	if err != nil || alg != cose.AlgorithmEdDSA {
		return ErrBadAlgorithm
	}
	if _, ok := h[cose.HeaderLabelCritical]; ok {
		return fmt.Errorf("%w: critical header not supported", ErrBadSignature)
	}
	return nil
}

// check verifies m with the key its kid names, or, without a kid, with each
// key in turn. An unknown kid is refused without trying the keys: a central
// that names its key must name one we hold.
func (v *Verifier) check(m *cose.Sign1Message, aad []byte) error {
	kidValue, hasKid := m.Headers.Protected[cose.HeaderLabelKeyID]
	if hasKid {
		kid, ok := kidValue.([]byte)
		if !ok {
			return fmt.Errorf("%w: kid is not a byte string", ErrBadSignature)
		}
		k := v.find(kid)
		if k == nil {
			return ErrUnknownKey
		}
		if err := m.Verify(aad, k.verifier); err != nil {
			return fmt.Errorf("%w: signature does not verify with key %x", ErrBadSignature, kid)
		}
		return nil
	}
	for _, k := range v.keys {
		if m.Verify(aad, k.verifier) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: signature verifies with no trusted key", ErrBadSignature)
}

// describeCOSE keeps go-cose's message only when the cbor library did not
// produce the error; those messages are about header structure.
func describeCOSE(err error) string {
	if s := describe(err); s != "invalid cbor" {
		return s
	}
	return err.Error()
}

// signMessage encodes nothing itself: payload is already the validated
// CBOR of a message for topic kind k in scope to.
func signMessage(s *Signer, to Scope, k TopicKind, payload []byte) ([]byte, error) {
	aad, err := to.Topic(k)
	if err != nil {
		return nil, err
	}
	return s.sign(aad, payload)
}

// verifyMessage opens msg for topic kind k in scope at and decodes its
// payload.
func verifyMessage[T any](v *Verifier, at Scope, k TopicKind, msg []byte, limit int, decode func([]byte) (T, error)) (T, error) {
	var zero T
	aad, err := at.Topic(k)
	if err != nil {
		return zero, err
	}
	payload, err := v.open(aad, msg, limit)
	if err != nil {
		return zero, err
	}
	return decode(payload)
}

// SignChange returns Signed(c) for the change stream of the store in to
// (TopicChanges; to.Agent is not used).
func SignChange(s *Signer, to Scope, c Change) ([]byte, error) {
	payload, err := EncodeChange(c)
	if err != nil {
		return nil, fmt.Errorf("sign change: %w", err)
	}
	msg, err := signMessage(s, to, TopicChanges, payload)
	if err != nil {
		return nil, fmt.Errorf("sign change: %w", err)
	}
	return msg, nil
}

// VerifyChange checks msg, received on the change stream of the store in
// at, and returns the change it carries. The signature is checked before
// the payload is decoded; a failure matches ErrTooLarge, ErrBadSignature (a
// message to drop and count) or, for an authentic but invalid change,
// ErrMalformed, ErrBadVersion or ErrInvalid (a bug at the central).
func VerifyChange(v *Verifier, at Scope, msg []byte) (Change, error) {
	c, err := verifyMessage(v, at, TopicChanges, msg, MaxChangeSize, decodeChange)
	if err != nil {
		return Change{}, fmt.Errorf("verify change: %w", err)
	}
	return c, nil
}

// SignAck returns Signed(a) for the acks topic of the agent in to.
func SignAck(s *Signer, to Scope, a Ack) ([]byte, error) {
	if a.Agent != to.Agent {
		return nil, fmt.Errorf("sign ack: %w", invalid("agent", "does not match the scope"))
	}
	payload, err := EncodeAck(a)
	if err != nil {
		return nil, fmt.Errorf("sign ack: %w", err)
	}
	msg, err := signMessage(s, to, TopicAcks, payload)
	if err != nil {
		return nil, fmt.Errorf("sign ack: %w", err)
	}
	return msg, nil
}

// VerifyAck checks msg, received on the acks topic of the agent in at, and
// returns the ack it carries, whose Agent is at.Agent. Errors are as for
// VerifyChange.
func VerifyAck(v *Verifier, at Scope, msg []byte) (Ack, error) {
	a, err := verifyMessage(v, at, TopicAcks, msg, MaxAckSize, decodeAck)
	if err == nil && a.Agent != at.Agent {
		err = invalid("agent", "does not match the scope")
	}
	if err != nil {
		return Ack{}, fmt.Errorf("verify ack: %w", err)
	}
	return a, nil
}

// SignChangeSet returns Signed(cs) for the sync reply topic of the agent in
// to.
func SignChangeSet(s *Signer, to Scope, cs ChangeSet) ([]byte, error) {
	payload, err := EncodeChangeSet(cs)
	if err != nil {
		return nil, fmt.Errorf("sign change set: %w", err)
	}
	msg, err := signMessage(s, to, TopicSyncReply, payload)
	if err != nil {
		return nil, fmt.Errorf("sign change set: %w", err)
	}
	return msg, nil
}

// VerifyChangeSet checks msg, received on the sync reply topic of the
// agent in at, and returns the change set it carries. Errors are as for
// VerifyChange.
func VerifyChangeSet(v *Verifier, at Scope, msg []byte) (ChangeSet, error) {
	cs, err := verifyMessage(v, at, TopicSyncReply, msg, MaxChangeSetSize, decodeChangeSet)
	if err != nil {
		return ChangeSet{}, fmt.Errorf("verify change set: %w", err)
	}
	return cs, nil
}
