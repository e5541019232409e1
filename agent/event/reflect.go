package event

import "reflect"

// mapStringAny makes nested maps decode as map[string]any, as JSON would,
// rather than map[any]any.
var mapStringAny = reflect.TypeOf(map[string]any(nil))
