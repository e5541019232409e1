package cborhead

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestReadAgreesWithEncoder: for every width of argument the encoder
// writes, Read returns the major type, the argument and the rest, and
// Append writes the same head back; every
// truncation of a head, and the heads this module never writes, are
// refused.
func TestReadAgreesWithEncoder(t *testing.T) {
	values := []any{uint64(0), uint64(23), uint64(24), uint64(255), uint64(256), uint64(65535), uint64(65536),
		uint64(1 << 32), uint64(1<<64 - 1), int64(-1), int64(-1000), "", "text", []byte{1, 2, 3},
		[]int{1, 2}, map[string]int{"a": 1}, bytes.Repeat([]byte{7}, 300)}
	for _, v := range values {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		major, arg, rest, ok := Read(b)
		if !ok {
			t.Fatalf("%v (%x): refused", v, b)
		}
		if want := b[0] >> 5; major != want {
			t.Fatalf("%v: major %d, want %d", v, major, want)
		}
		headLen := len(b) - len(rest)
		if headLen < 1 || headLen > 9 || !bytes.Equal(rest, b[headLen:]) {
			t.Fatalf("%v: rest after %d bytes of head", v, headLen)
		}
		if got := Append(nil, major, arg); !bytes.Equal(got, b[:headLen]) {
			t.Fatalf("%v: Append wrote %x, the encoder %x", v, got, b[:headLen])
		}
		switch x := v.(type) {
		case uint64:
			if arg != x {
				t.Fatalf("%v: arg %d", v, arg)
			}
		case int64:
			if arg != uint64(-1-x) {
				t.Fatalf("%v: arg %d", v, arg)
			}
		case string:
			if arg != uint64(len(x)) {
				t.Fatalf("%q: arg %d", x, arg)
			}
		case []byte:
			if arg != uint64(len(x)) {
				t.Fatalf("bytes: arg %d, want %d", arg, len(x))
			}
		}
		for cut := range headLen {
			if _, _, _, ok := Read(b[:cut]); ok {
				t.Fatalf("%v: a head cut to %d of %d bytes was read", v, cut, headLen)
			}
		}
	}
	for _, b := range [][]byte{{0x1c}, {0x5f, 0x41, 0x00, 0xff}, {0x9f, 0xff}, {0xbf, 0xff}, {0xff}} {
		if _, _, _, ok := Read(b); ok {
			t.Fatalf("%x: a reserved or indefinite head was read", b)
		}
	}
}
