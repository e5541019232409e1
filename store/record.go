package store

import (
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// Records are CBOR. Encoding is Core Deterministic (sorted keys, shortest
// forms) so the same record always has the same bytes; decoding is strict
// because a record that does not match its type is corruption, not a newer
// writer (a newer writer changes the schema version, which Open refuses).
var (
	recEnc cbor.EncMode
	recDec cbor.DecMode
)

func init() {
	var err error
	recEnc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	recDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 16,
		MaxMapPairs:       1 << 16,
		// Free-form values (attribute values) decode as JSON would have them.
		DefaultMapType: reflect.TypeOf(map[string]any(nil)),
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// MarshalRecord encodes v with the store's deterministic CBOR options. A
// record type should carry its own version field (e.g. `cbor:"0,keyasint"`).
func MarshalRecord(v any) ([]byte, error) {
	b, err := recEnc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// UnmarshalRecord decodes a stored record strictly: unknown fields, duplicate
// keys, indefinite lengths and trailing bytes are errors. bucket and key name
// the record in the returned *CorruptError.
func UnmarshalRecord(bucket string, key, data []byte, v any) error {
	if err := recDec.Unmarshal(data, v); err != nil {
		return &CorruptError{Bucket: bucket, Key: key, Err: err}
	}
	return nil
}
