package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// Errors callers branch on with errors.Is. Every error this package returns
// wraps one of them. Messages never contain identifier or attribute values:
// at most a field path such as "events[3].context.purpose".
var (
	// ErrTooLarge is returned when an input or a message exceeds its size
	// limit (see MaxEventSize and the other Max constants). The size is
	// checked before any parsing.
	ErrTooLarge = errors.New("message too large")

	// ErrMalformed is returned when an input is not well-formed CBOR, uses a
	// form this package refuses (indefinite lengths, tags, duplicate map
	// keys, non-text map keys), has a field of the wrong type, or lacks a
	// required field.
	ErrMalformed = errors.New("malformed message")

	// ErrBadVersion is returned when a message's "v" is missing or is not
	// ProtocolVersion.
	ErrBadVersion = errors.New("unsupported protocol version")

	// ErrInvalid is returned when a well-formed message breaks a rule of the
	// protocol: an id that does not match [A-Za-z0-9_-]{1,64}, a range with
	// first > last, an unknown status or basis, and so on. Use errors.As with
	// *FieldError to learn which field.
	ErrInvalid = errors.New("invalid message")

	// ErrUnknownKind is returned when a change names a kind this version of
	// the package does not know. It also matches ErrInvalid. A link that gets
	// it at cursor+1 cannot go on: the agent needs an upgrade.
	ErrUnknownKind = fmt.Errorf("%w: unknown change kind", ErrInvalid)

	// ErrBadSignature is returned when a downlink message is not authentic:
	// not a COSE_Sign1, a malformed COSE envelope, a detached payload, an
	// unsupported header, or a signature that no trusted key verifies.
	// ErrUnsigned, ErrBadAlgorithm and ErrUnknownKey also match it, so one
	// errors.Is check counts every authenticity failure.
	ErrBadSignature = errors.New("bad signature")

	// ErrUnsigned is returned when a downlink input is not a tagged
	// COSE_Sign1 at all (for example the bare CBOR of a change). It also
	// matches ErrBadSignature.
	ErrUnsigned = fmt.Errorf("%w: not a cose_sign1 message", ErrBadSignature)

	// ErrBadAlgorithm is returned when a COSE_Sign1 does not name EdDSA in
	// its protected header. It also matches ErrBadSignature.
	ErrBadAlgorithm = fmt.Errorf("%w: algorithm is not eddsa", ErrBadSignature)

	// ErrUnknownKey is returned when a COSE_Sign1 names, in its protected
	// header, a key id that the Verifier does not hold, or when a Verifier
	// holds no key. It also matches ErrBadSignature.
	ErrUnknownKey = fmt.Errorf("%w: unknown key id", ErrBadSignature)

	// ErrBadTopic is returned by ParseTopic and Scope.Topic when a topic
	// name or one of its segments does not follow the protocol.
	ErrBadTopic = errors.New("bad topic")
)

// FieldError reports which field of a message broke which rule. It never
// holds the field's value.
type FieldError struct {
	// Field is the path of the field in the message, for example
	// "changes[2].attrs[0].purpose". Map keys are never part of the path.
	Field string
	// Reason says what is wrong, in a few lowercase words.
	Reason string
	// Err is the sentinel the error matches: ErrMalformed, ErrBadVersion,
	// ErrInvalid or ErrUnknownKind.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	return e.Err.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is match the sentinel in Err.
func (e *FieldError) Unwrap() error { return e.Err }

// invalid returns a *FieldError matching ErrInvalid.
func invalid(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: ErrInvalid}
}

// within prefixes the path of a *FieldError in err with prefix, so a rule
// checked on an event reports "events[3].messageId". Any other error gets
// prefix in its text.
func within(prefix string, err error) error {
	if err == nil {
		return nil
	}
	fe, ok := err.(*FieldError)
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	out := *fe
	out.Field = join(prefix, fe.Field)
	return &out
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	default:
		return prefix + "." + field
	}
}

// errIdentShape is returned by Ident.UnmarshalCBOR.
var errIdentShape = errors.New("ident is not a 32-byte byte string")

// malformed wraps a decoding error from the cbor library into ErrMalformed.
// The library's own text is kept only for error types known not to carry
// input values: a duplicate map key error, for instance, prints the key,
// which may be anything a sender chose.
func malformed(err error) error {
	return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
}

func describe(err error) string {
	var (
		typeErr  *cbor.UnmarshalTypeError
		dupErr   *cbor.DupMapKeyError
		syntax   *cbor.SyntaxError
		semantic *cbor.SemanticError
		nested   *cbor.MaxNestedLevelError
		arrays   *cbor.MaxArrayElementsError
		maps     *cbor.MaxMapPairsError
		indef    *cbor.IndefiniteLengthError
		tags     *cbor.TagsMdError
		extra    *cbor.ExtraneousDataError
		unacc    *cbor.UnacceptableDataItemError
	)
	switch {
	case errors.Is(err, errIdentShape):
		return errIdentShape.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated cbor"
	case errors.As(err, &typeErr):
		return describeType(typeErr)
	case errors.As(err, &dupErr):
		return "duplicate map key"
	case errors.As(err, &unacc):
		return "cbor " + unacc.CBORType + " not accepted: " + unacc.Message
	case errors.As(err, &syntax), errors.As(err, &semantic), errors.As(err, &nested),
		errors.As(err, &arrays), errors.As(err, &maps), errors.As(err, &indef),
		errors.As(err, &tags), errors.As(err, &extra):
		return err.Error()
	default:
		return "invalid cbor"
	}
}

// describeType rebuilds the library's message without its optional detail,
// which can quote a number from the input.
func describeType(e *cbor.UnmarshalTypeError) string {
	if e.StructFieldName != "" {
		return "cannot decode cbor " + e.CBORType + " into field " + e.StructFieldName
	}
	return "cannot decode cbor " + e.CBORType + " into " + e.GoType
}
