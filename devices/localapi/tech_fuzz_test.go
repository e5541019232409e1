package localapi

import "testing"

// FuzzDecodeLookup holds POST /v1/lookup to the promises of the other
// decoders (see fuzz_test.go): no panic, refusals that echo nothing, and
// an accepted body with only its fields, one identifier and a purpose.
func FuzzDecodeLookup(f *testing.F) {
	f.Add([]byte(`{"scan":"79927398713","purpose":"loyalty"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeLookup(body)
		if err != nil {
			checkRefusal(t, body, maxBody, err)
			return
		}
		checkFields(t, body, "scan", "kind", "value", "purpose")
		checkIdent(t, r.Scan, r.Kind, r.Value)
		if !purposeName.MatchString(r.Purpose) {
			t.Fatalf("accepted purpose %q", r.Purpose)
		}
	})
}
