package logring

import (
	"regexp"
	"testing"
)

var (
	leftEmail  = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}`)
	leftDigits = regexp.MustCompile(`[0-9]{8,}`)
)

// FuzzMask checks that whatever a log line holds, Mask leaves no plain
// e-mail address and no run of 8 digits in it, and never panics.
func FuzzMask(f *testing.F) {
	for _, s := range []string{
		`msg=x user=ada.lovelace@example.com`, `code=79927398713`, `code="4111 1111 1111 1111"`,
		`phone=+44 7700 900123`, `time=2024-05-01T10:00:00.123+02:00 level=INFO`, `a@b@c.com 123456789`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		out := Mask(line)
		if m := leftEmail.FindString(out); m != "" {
			t.Fatalf("Mask(%q) = %q leaves %q", line, out, m)
		}
		if m := leftDigits.FindString(out); m != "" {
			t.Fatalf("Mask(%q) = %q leaves %q", line, out, m)
		}
	})
}
