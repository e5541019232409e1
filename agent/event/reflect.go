package event

import "reflect"

// reflectMapStringAny makes nested maps decode as map[string]any, as JSON
// would, rather than map[any]any.
func reflectMapStringAny() reflect.Type { return reflect.TypeOf(map[string]any(nil)) }
