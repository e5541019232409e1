package logring

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestMask(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"e-mail", `msg=x user=ada.lovelace@example.com ok`, `msg=x user=<email> ok`},
		{"quoted e-mail", `msg="mail Grace.Hopper@Example.org"`, `msg="mail <email>"`},
		{"card", `code=79927398713`, `code=<11 digits>`},
		{"grouped card", `code="4111 1111 1111 1111"`, `code="<16 digits>"`},
		{"phone", `phone=+44 7700 900123 end`, `phone=<phone> end`},
		{"timestamp kept", `time=2024-05-01T10:00:00.123+02:00 level=INFO`, `time=2024-05-01T10:00:00.123+02:00 level=INFO`},
		{"short numbers kept", `records=1234567 seq=42 took=1.5ms`, `records=1234567 seq=42 took=1.5ms`},
		{"uuid kept", `id=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b`, `id=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Mask(tc.in); got != tc.want {
				t.Fatalf("Mask(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRingKeepsTheNewestLines(t *testing.T) {
	r := New(3)
	for i := range 5 {
		fmt.Fprintf(r, "line %d\n", i)
	}
	got, dropped := r.Lines(0)
	if strings.Join(got, "|") != "line 2|line 3|line 4" || dropped != 2 {
		t.Fatalf("lines %q dropped %d", got, dropped)
	}
	if got, _ := r.Lines(2); strings.Join(got, "|") != "line 3|line 4" {
		t.Fatalf("last 2: %q", got)
	}
}

func TestRingJoinsPartialWrites(t *testing.T) {
	r := New(10)
	r.Write([]byte("first half "))
	r.Write([]byte("second half\nnext"))
	r.Write([]byte(" line\n"))
	got, _ := r.Lines(0)
	if strings.Join(got, "|") != "first half second half|next line" {
		t.Fatalf("lines %q", got)
	}
}

func TestRingBoundsLines(t *testing.T) {
	r := New(2)
	long := strings.Repeat("x", 3*MaxLineBytes)
	r.Write([]byte(long[:MaxLineBytes]))
	r.Write([]byte(long[MaxLineBytes:] + "\n"))
	got, _ := r.Lines(0)
	if len(got) != 1 || !strings.HasSuffix(got[0], " <cut>") || len(got[0]) != MaxLineBytes+len(" <cut>") {
		t.Fatalf("long line kept as %d bytes", len(got[0]))
	}
}

// A card number split across two writes is still masked: lines are
// masked whole.
func TestRingMasksWholeLines(t *testing.T) {
	r := New(4)
	r.Write([]byte("scan code=7992739"))
	r.Write([]byte("8713 mail=ada@example.com\n"))
	got, _ := r.Lines(0)
	if len(got) != 1 || strings.Contains(got[0], "79927398713") || strings.Contains(got[0], "ada@") {
		t.Fatalf("not masked: %q", got)
	}
}

func TestRingConcurrentWriters(t *testing.T) {
	r := New(100)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(r, "writer %d line %d\n", w, i)
			}
		})
	}
	wg.Wait()
	got, dropped := r.Lines(0)
	if len(got) != 100 || dropped != 300 {
		t.Fatalf("%d lines, %d dropped", len(got), dropped)
	}
}
