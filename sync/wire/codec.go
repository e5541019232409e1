package wire

import (
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// ProtocolVersion is the value of "v" in every message of protocol v1. The
// package owns it: encoders write it and decoders reject anything else, so
// the Go types carry no version field.
const ProtocolVersion = 1

// Size limits, in bytes of encoded CBOR. Decoders check them before parsing.
const (
	// MaxEventSize bounds one encoded Event (the limit Segment and
	// RudderStack apply to a JSON event).
	MaxEventSize = 32 << 10
	// MaxEventBatchSize bounds one encoded EventBatch.
	MaxEventBatchSize = 256 << 10
	// MaxEventBatchOverhead bounds what an EventBatch adds to the encoded
	// events it carries. A batch whose events' encodings sum to at most
	// MaxEventBatchSize-MaxEventBatchOverhead always fits.
	MaxEventBatchOverhead = 512
	// MaxChangeSize bounds one encoded Change, alone or inside a ChangeSet.
	MaxChangeSize = 64 << 10
	// MaxChangeSetSize bounds one encoded ChangeSet. PROTOCOL.md sets no
	// bound; 4 MiB keeps a snapshot chunk well under common broker limits
	// while holding thousands of profiles.
	MaxChangeSetSize = 4 << 20
	// MaxChangeSetOverhead bounds what a ChangeSet adds to the encoded
	// changes it carries, for a central that packs snapshot chunks.
	MaxChangeSetOverhead = 512
	// MaxAckSize bounds one encoded Ack: thousands of ranges.
	MaxAckSize = 64 << 10
	// MaxSyncRequestSize bounds one encoded SyncRequest.
	MaxSyncRequestSize = 4 << 10
	// MaxAgentStatusSize bounds one encoded AgentStatus.
	MaxAgentStatusSize = 4 << 10
	// MaxSignedOverhead bounds what a COSE_Sign1 envelope adds to its
	// payload: our headers take under 100 bytes; the rest is room for a
	// central's extra unprotected headers.
	MaxSignedOverhead = 1 << 10
)

// Structural limits applied while decoding, on top of the size limits.
const (
	// MaxItems bounds the elements of any array and the pairs of any map,
	// so a ChangeSet holds at most MaxItems changes and an EventBatch at
	// most MaxItems events.
	MaxItems = 1 << 16
	// MaxNesting bounds how deep arrays and maps nest in a whole message.
	MaxNesting = 16
	// MaxValueNesting bounds how deep free-form values (event properties
	// and traits, attribute values) nest, so that any accepted value still
	// fits MaxNesting once it sits inside a batch or a change set.
	MaxValueNesting = 10
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = encOptions().EncMode(); err != nil {
		panic(fmt.Sprintf("wire: cbor encoding options: %v", err))
	}
	if decMode, err = decOptions().DecMode(); err != nil {
		panic(fmt.Sprintf("wire: cbor decoding options: %v", err))
	}
}

// encOptions is Core Deterministic Encoding, so the same message always has
// the same bytes (signatures and golden files depend on it), plus two
// choices: a nil slice or map goes out as an empty one, never as null, and
// tags are never written because no decoder here accepts them.
func encOptions() cbor.EncOptions {
	o := cbor.CoreDetEncOptions()
	o.NilContainers = cbor.NilContainerAsEmpty
	o.TagsMd = cbor.TagsForbidden
	return o
}

// decOptions decode untrusted input. Unknown map keys are tolerated, so a
// later v1 minor may add fields, but everything that could make two readers
// see different messages is refused: duplicate keys, indefinite lengths,
// tags, invalid UTF-8, case-insensitive field matching. Free-form values
// decode as JSON would hold them: text-keyed maps, int64, finite float64.
func decOptions() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   MaxNesting,
		MaxArrayElements:  MaxItems,
		MaxMapPairs:       MaxItems,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		DefaultMapType:    reflect.TypeFor[map[string]any](),
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
	}
}

// encode marshals v with the deterministic mode and checks the result
// against limit.
func encode(what string, v any, limit int) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("encode %s: %w: %d bytes, limit %d", what, ErrTooLarge, len(b), limit)
	}
	return b, nil
}

// decodeInto unmarshals data into dst with the strict mode.
func decodeInto(data []byte, dst any) error {
	if err := decMode.Unmarshal(data, dst); err != nil {
		return malformed(err)
	}
	return nil
}

// rawField holds the encoded value of one map entry without copying it. It
// is only valid while the input it points into is.
type rawField []byte

// UnmarshalCBOR implements cbor.Unmarshaler.
func (f *rawField) UnmarshalCBOR(data []byte) error {
	*f = data
	return nil
}

func (f rawField) isNull() bool {
	// 0xf6 is null and 0xf7 undefined: both mean "absent" here.
	return len(f) == 1 && (f[0] == 0xf6 || f[0] == 0xf7)
}

// fields maps the top-level keys of a message to their encoded values. The
// decoders read it first, to check the version and the presence of required
// keys, which struct decoding alone cannot tell from zero values (a missing
// "more" would read as false and end a snapshot early).
type fields map[string]rawField

// readFields checks data against limit and reads its top-level map. A map
// key that is not text, or appears twice, makes it malformed.
func readFields(data []byte, limit int) (fields, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), limit)
	}
	if len(data) == 0 || data[0]>>5 != 5 { // major type 5: map
		return nil, fmt.Errorf("%w: not a cbor map", ErrMalformed)
	}
	var f fields
	if err := decodeInto(data, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// checkVersion requires "v" to be present and ProtocolVersion.
func (f fields) checkVersion() error {
	raw, ok := f["v"]
	if !ok || raw.isNull() {
		return &FieldError{Field: "v", Reason: "missing", Err: ErrBadVersion}
	}
	var v uint64
	if err := decodeInto(raw, &v); err != nil {
		return &FieldError{Field: "v", Reason: "not an unsigned integer", Err: ErrBadVersion}
	}
	if v != ProtocolVersion {
		return &FieldError{Field: "v", Reason: fmt.Sprintf("version %d, want %d", v, ProtocolVersion), Err: ErrBadVersion}
	}
	return nil
}

// require reports the first of keys that is absent or null.
func (f fields) require(keys []string) error {
	for _, k := range keys {
		if raw, ok := f[k]; !ok || raw.isNull() {
			return &FieldError{Field: k, Reason: "missing", Err: ErrMalformed}
		}
	}
	return nil
}

// decodeMessage is the path of every top-level decoder: size, then shape,
// then version, then required keys, then the typed decode into dst.
// Validation of the decoded value is left to the caller.
func decodeMessage(data []byte, limit int, required []string, dst any) (fields, error) {
	f, err := readFields(data, limit)
	if err != nil {
		return nil, err
	}
	if contains(required, "v") {
		if err := f.checkVersion(); err != nil {
			return nil, err
		}
	}
	if err := f.require(required); err != nil {
		return nil, err
	}
	if err := decodeInto(data, dst); err != nil {
		return nil, err
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
