package event

import (
	"errors"
	"fmt"
	"math"
)

// Limits on free-form values (properties, traits): the wire's, so an event
// the agent accepts is one the central accepts and the uplink can read back.
const (
	MaxValueDepth = 10   // nesting of maps and arrays inside a property
	MaxItems      = 4096 // members of one map or array
)

// ErrBadValue is returned by Encode for a property or trait the wire cannot
// carry: too deep, too wide, not a JSON-like value, or not a finite number.
var ErrBadValue = errors.New("property value cannot travel")

// CheckValues reports whether properties and traits can travel, before
// anything is built from them.
func CheckValues(properties, traits map[string]any) error {
	return errors.Join(checkValues("properties", properties), checkValues("traits", traits))
}

// checkValues checks every value of m.
func checkValues(field string, m map[string]any) error {
	if len(m) > MaxItems {
		return fmt.Errorf("%s: over %d members: %w", field, MaxItems, ErrBadValue)
	}
	for _, v := range m {
		if err := checkValue(v, 1); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	return nil
}

func checkValue(v any, depth int) error {
	if depth > MaxValueDepth {
		return fmt.Errorf("nested over %d levels: %w", MaxValueDepth, ErrBadValue)
	}
	switch x := v.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, []byte:
		return nil
	case float32:
		return finite(float64(x))
	case float64:
		return finite(x)
	case []any:
		if len(x) > MaxItems {
			return fmt.Errorf("array over %d items: %w", MaxItems, ErrBadValue)
		}
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if len(x) > MaxItems {
			return fmt.Errorf("object over %d members: %w", MaxItems, ErrBadValue)
		}
		for _, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("a %T: %w", v, ErrBadValue)
}

func finite(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("not a finite number: %w", ErrBadValue)
	}
	return nil
}
