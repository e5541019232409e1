package wire

import (
	"math"
	"reflect"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// ValidID reports whether s may be a tenant, store, agent, device or
// profile id, a purpose or an attribute name: [A-Za-z0-9_-]{1,64}. Such a
// string is safe in an MQTT topic, a log field and a metric label.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// maxEventNameLen bounds an event name such as "Order Completed".
const maxEventNameLen = 256

// validEventName reports whether s may name a track event: 1 to 256 bytes of
// UTF-8 without control characters. Segment event names contain spaces, so
// the id rule is too narrow for them.
func validEventName(s string) bool {
	if len(s) == 0 || len(s) > maxEventNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// checkValue reports why v, a free-form value (a property, a trait, an
// attribute value), could not travel as JSON after a plain CBOR-to-JSON
// step, or "" when it can. It accepts what the decoder produces (nil, bool,
// int64, float64, string, []byte, []any, map[string]any) and the Go values
// a producer is likely to hold (any integer or float kind, slices, maps with
// string keys), so an encoder can refuse what its peer would refuse.
func checkValue(v any, depth int) string {
	switch x := v.(type) {
	case nil, bool, string, []byte, int, int8, int16, int32, int64:
		return ""
	case cbor.SimpleValue:
		// Its kind is uint8, but JSON has no form for it.
		return "unsupported value type"
	case float64:
		return checkFloat(x)
	case map[string]any:
		if depth >= MaxValueNesting {
			return "nested too deep"
		}
		for _, e := range x {
			if r := checkValue(e, depth+1); r != "" {
				return r
			}
		}
		return ""
	case []any:
		if depth >= MaxValueNesting {
			return "nested too deep"
		}
		for _, e := range x {
			if r := checkValue(e, depth+1); r != "" {
				return r
			}
		}
		return ""
	}
	return checkReflect(reflect.ValueOf(v), depth)
}

// checkReflect handles the kinds the type switch in checkValue does not
// name. Structs, pointers, channels and the like are refused: their CBOR
// form depends on struct tags this package cannot see.
func checkReflect(rv reflect.Value, depth int) string {
	switch rv.Kind() {
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return ""
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() > math.MaxInt64 {
			return "integer out of range"
		}
		return ""
	case reflect.Float32, reflect.Float64:
		return checkFloat(rv.Float())
	case reflect.Slice, reflect.Array:
		return checkElems(rv, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return "map key is not text"
		}
		return checkElems(rv, depth)
	}
	return "unsupported value type"
}

func checkElems(rv reflect.Value, depth int) string {
	if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return "" // a byte string
	}
	if depth >= MaxValueNesting {
		return "nested too deep"
	}
	if rv.Kind() == reflect.Map {
		for it := rv.MapRange(); it.Next(); {
			if r := checkValue(it.Value().Interface(), depth+1); r != "" {
				return r
			}
		}
		return ""
	}
	for i := range rv.Len() {
		if r := checkValue(rv.Index(i).Interface(), depth+1); r != "" {
			return r
		}
	}
	return ""
}

// checkFloat refuses NaN and infinities: JSON has no form for them and the
// decoder rejects them.
func checkFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "number is not finite"
	}
	return ""
}

// checkMap checks a map of free-form values such as event properties. The
// map itself is one level of nesting.
func checkMap(field string, m map[string]any) error {
	for _, v := range m {
		if r := checkValue(v, 1); r != "" {
			return invalid(field, r)
		}
	}
	return nil
}
