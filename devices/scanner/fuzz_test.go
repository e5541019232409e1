package scanner

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzFrameReader feeds arbitrary bytes, split into chunks that arrive gap
// apart, under a config chosen by mode:
//
//	bits 0-1: terminator CR, LF, CRLF, CR
//	bit 2:    AIM identifiers on
//	bit 3:    prefix STX and suffix ETX
//	bit 4:    MaxFrame 8 instead of 64
//	bit 5:    debounce 100 ms instead of off
//
// Seeds are in testdata/fuzz/FuzzFrameReader.
func FuzzFrameReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, chunk uint8, gapMs uint16) {
		cfg := fuzzConfig(mode)
		size := int(chunk)%16 + 1
		gap := time.Duration(gapMs) * time.Millisecond

		// How the bytes were fragmented must not matter when they all
		// arrive at once.
		whole := fuzzFeed(t, cfg, [][]byte{data}, 0)
		pieces := fuzzFeed(t, cfg, chunks(data, size), 0)
		if !slices.Equal(whole, pieces) {
			t.Fatalf("fragmentation changed the result:\nwhole  %s\npieces %s", describe(whole), describe(pieces))
		}

		// Every byte belongs to exactly one frame, in order.
		frames := fuzzFeed(t, cfg, chunks(data, size), gap)
		off := 0
		for _, fr := range frames {
			if fr.RawLen < 1 || off+fr.RawLen > len(data) {
				t.Fatalf("%s with raw length %d at offset %d of %d", fr.Reason, fr.RawLen, off, len(data))
			}
			checkFuzzFrame(t, cfg, data[off:off+fr.RawLen], fr)
			off += fr.RawLen
		}
		if off != len(data) {
			t.Fatalf("frames account for %d bytes of %d", off, len(data))
		}
	})
}

func fuzzConfig(mode uint8) Config {
	cfg := Config{
		Terminator:       []Terminator{TerminatorCR, TerminatorLF, TerminatorCRLF, TerminatorCR}[mode&3],
		AIM:              mode&4 != 0,
		MaxFrame:         64,
		InterByteTimeout: 50 * time.Millisecond,
	}
	if mode&8 != 0 {
		cfg.Prefix, cfg.Suffix = "\x02", "\x03"
	}
	if mode&16 != 0 {
		cfg.MaxFrame = 8
	}
	if mode&32 != 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	return cfg
}

// fuzzFeed feeds each chunk gap after the previous one and flushes at the
// end, so that every byte is accounted for in some frame.
func fuzzFeed(t *testing.T, cfg Config, parts [][]byte, gap time.Duration) []Frame {
	r, err := NewFrameReader(cfg)
	if err != nil {
		t.Fatalf("NewFrameReader: %v", err)
	}
	now := time.Unix(1_700_000_000, 0)
	var out []Frame
	for _, p := range parts {
		out = append(out, r.Feed(now, p)...)
		if len(r.buf) > cfg.MaxFrame {
			t.Fatalf("reader buffers %d bytes, max frame %d", len(r.buf), cfg.MaxFrame)
		}
		now = now.Add(gap)
	}
	if f, ok := r.Flush(now); ok {
		out = append(out, f)
	}
	if r.pending() != 0 || len(r.buf) != 0 {
		t.Fatalf("reader holds %d bytes after Flush", r.pending())
	}
	return out
}

// checkFuzzFrame checks f against raw, the input bytes it took.
func checkFuzzFrame(t *testing.T, cfg Config, raw []byte, f Frame) {
	t.Helper()
	if f.Reason >= numReasons {
		t.Fatalf("unknown reason %d", f.Reason)
	}
	if !f.OK() {
		if f.Code != "" || f.Symbology != (Symbology{}) {
			t.Fatalf("reject %s carries code or symbology", f.Reason)
		}
		return
	}
	checkGoodCode(t, cfg, f.Code)
	if !bytes.HasSuffix(raw, terminatorBytes[cfg.Terminator]) || len(raw) > cfg.MaxFrame+len(terminatorBytes[cfg.Terminator]) {
		t.Fatalf("good frame from raw bytes %q", raw)
	}
	if !bytes.Contains(raw, []byte(f.Code)) {
		t.Fatalf("code %q is not in its frame %q", f.Code, raw)
	}
	if cfg.AIM != (f.Symbology.AIM != "") || (cfg.AIM && !strings.HasPrefix(f.Symbology.AIM, "]")) {
		t.Fatalf("symbology %+v with AIM %v", f.Symbology, cfg.AIM)
	}
}

func checkGoodCode(t *testing.T, cfg Config, code string) {
	t.Helper()
	if code == "" || len(code) > cfg.MaxFrame {
		t.Fatalf("good code of %d bytes, max frame %d", len(code), cfg.MaxFrame)
	}
	if !utf8.ValidString(code) {
		t.Fatalf("good code %q is not valid UTF-8", code)
	}
	if strings.ContainsFunc(code, unicode.IsControl) {
		t.Fatalf("good code %q holds a control character", code)
	}
}

var terminatorBytes = map[Terminator][]byte{TerminatorCR: []byte("\r"), TerminatorLF: []byte("\n"), TerminatorCRLF: []byte("\r\n")}

func chunks(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}
