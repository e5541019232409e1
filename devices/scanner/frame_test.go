package scanner

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// step is one arrival of bytes, at a time relative to the start of a case.
// With expire set, the step calls Expire instead of Feed.
type step struct {
	at     time.Duration
	data   string
	expire bool
}

// want is what a case expects of one frame; raw is checked when non-zero.
type want struct {
	code   string
	sym    string
	reason Reason
	raw    int
}

func good(code string) want { return want{code: code} }

func reject(r Reason) want { return want{reason: r} }

func at(d time.Duration, data string) step { return step{at: d, data: data} }

func TestFrameReader(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
		want  []want
	}{
		{name: "cr", steps: []step{at(0, "4006381333931\r")}, want: []want{{code: "4006381333931", raw: 14}}},
		{name: "lf", cfg: term(TerminatorLF), steps: []step{at(0, "ABC-123\n")}, want: []want{good("ABC-123")}},
		{name: "crlf", cfg: term(TerminatorCRLF), steps: []step{at(0, "ABC\r\nDEF\r\n")}, want: []want{{code: "ABC", raw: 5}, good("DEF")}},
		{name: "crlf lone cr is noise", cfg: term(TerminatorCRLF), steps: []step{at(0, "AB\rC\r\nOK\r\n")}, want: []want{reject(RejectNoise), good("OK")}},
		{name: "crlf double cr", cfg: term(TerminatorCRLF), steps: []step{at(0, "AB\r\r\nOK\r\n")}, want: []want{reject(RejectNoise), good("OK")}},
		{name: "crlf lone lf is noise", cfg: term(TerminatorCRLF), steps: []step{at(0, "A\nB\r\nOK\r\n")}, want: []want{reject(RejectNoise), good("OK")}},
		{name: "lf after cr in cr mode is noise", steps: []step{at(0, "A\r\nB\rC\r")}, want: []want{good("A"), reject(RejectNoise), good("C")}},
		{name: "space is printable", steps: []step{at(0, "AB CD\r")}, want: []want{good("AB CD")}},
		{name: "utf-8 text", steps: []step{at(0, "Café ☕\r")}, want: []want{good("Café ☕")}},
		{name: "prefix and suffix stripped", cfg: affix("\x02", "\x03"), steps: []step{at(0, "\x02123\x03\r")}, want: []want{{code: "123", raw: 6}}},
		{name: "absent prefix and suffix tolerated", cfg: affix("PRE", "SUF"), steps: []step{at(0, "123\r")}, want: []want{good("123")}},
		{name: "control prefix kept when suffix absent is noise", cfg: affix("\x02", "\x03"), steps: []step{at(0, "123\x04\r")}, want: []want{reject(RejectNoise)}},
		{name: "aim ean-13", cfg: aim, steps: []step{at(0, "]E04006381333931\r")}, want: []want{{code: "4006381333931", sym: "EAN-13", raw: 17}}},
		{name: "aim code 128", cfg: aim, steps: []step{at(0, "]C0ABC123\r")}, want: []want{{code: "ABC123", sym: "Code 128"}}},
		{name: "aim qr", cfg: aim, steps: []step{at(0, "]Q1https://x.example/l?id=7\r")}, want: []want{{code: "https://x.example/l?id=7", sym: "QR Code"}}},
		{name: "aim gs1 datamatrix", cfg: aim, steps: []step{at(0, "]d201034531200000111719112510ABCD1234\r")}, want: []want{{code: "01034531200000111719112510ABCD1234", sym: "GS1 DataMatrix"}}},
		{name: "aim unknown code char", cfg: aim, steps: []step{at(0, "]j0abc\r")}, want: []want{{code: "abc", sym: "unknown"}}},
		{name: "aim after prefix", cfg: both(aim, affix("#", "")), steps: []step{at(0, "#]E4ABC\r")}, want: []want{{code: "ABC", sym: "EAN-8"}}},
		{name: "aim missing", cfg: aim, steps: []step{at(0, "4006381333931\r")}, want: []want{reject(RejectMissingAIM)}},
		{name: "aim bad modifier", cfg: aim, steps: []step{at(0, "]E-123\r")}, want: []want{reject(RejectMissingAIM)}},
		{name: "aim only", cfg: aim, steps: []step{at(0, "]E0\r")}, want: []want{reject(RejectEmpty)}},
		{name: "aim garbage is noise", cfg: aim, steps: []step{at(0, "\xf3\x1a\x80\r")}, want: []want{reject(RejectNoise)}},
		{name: "noise then good", steps: []step{at(0, "\x00\x1b[2J\x07\r0123\r")}, want: []want{{reason: RejectNoise, raw: 7}, good("0123")}},
		{name: "invalid utf-8", steps: []step{at(0, "\xff\xfe\rOK\r")}, want: []want{reject(RejectNoise), good("OK")}},
		{name: "truncated utf-8", steps: []step{at(0, "caf\xc3\r")}, want: []want{reject(RejectNoise)}},
		{name: "c1 control", steps: []step{at(0, "A\u0085B\r")}, want: []want{reject(RejectNoise)}},
		{name: "del", steps: []step{at(0, "A\x7fB\r")}, want: []want{reject(RejectNoise)}},
		{name: "too long then good", cfg: maxFrame(8), steps: []step{at(0, "0123456789\rABC\r")}, want: []want{{reason: RejectTooLong, raw: 11}, good("ABC")}},
		{name: "exactly max frame", cfg: maxFrame(8), steps: []step{at(0, "01234567\r")}, want: []want{good("01234567")}},
		{name: "crlf at max frame", cfg: both(maxFrame(4), term(TerminatorCRLF)), steps: []step{at(0, "0123\r\n")}, want: []want{good("0123")}},
		{name: "empty", steps: []step{at(0, "\r")}, want: []want{{reason: RejectEmpty, raw: 1}}},
		{name: "empty after strip", cfg: affix("<", ">"), steps: []step{at(0, "<>\r")}, want: []want{reject(RejectEmpty)}},
		{name: "fragments within timeout", steps: []step{at(0, "01"), at(150*ms, "23"), at(300*ms, "45\r")}, want: []want{good("012345")}},
		{name: "half frame then good", steps: []step{at(0, "0123"), at(201*ms, "456\r")}, want: []want{{reason: RejectHalfFrame, raw: 4}, good("456")}},
		{name: "half frame on expire", steps: []step{at(0, "0123"), {at: 200 * ms, expire: true}, {at: 201 * ms, expire: true}, at(300*ms, "9\r")}, want: []want{reject(RejectHalfFrame), good("9")}},
		{name: "stalled noise", steps: []step{at(0, "\x00\x01"), {at: time.Second, expire: true}}, want: []want{reject(RejectNoise)}},
		{name: "stalled overflow", cfg: maxFrame(4), steps: []step{at(0, "0123456"), {at: time.Second, expire: true}}, want: []want{{reason: RejectTooLong, raw: 7}}},
		{name: "stalled crlf missing lf", cfg: term(TerminatorCRLF), steps: []step{at(0, "AB\r"), at(time.Second, "C\r\n")}, want: []want{reject(RejectHalfFrame), good("C")}},
		{name: "debounce within window", steps: []step{at(0, "A\r"), at(900*ms, "A\r")}, want: []want{good("A"), reject(RejectDuplicate)}},
		{name: "debounce after window", steps: []step{at(0, "A\r"), at(time.Second, "A\r")}, want: []want{good("A"), good("A")}},
		{name: "debounce window runs from delivery", steps: []step{at(0, "A\r"), at(600*ms, "A\r"), at(1200*ms, "A\r")}, want: []want{good("A"), reject(RejectDuplicate), good("A")}},
		{name: "debounce only repeats", steps: []step{at(0, "A\rB\rA\r")}, want: []want{good("A"), good("B"), good("A")}},
		{name: "debounce off", cfg: debounce(0), steps: []step{at(0, "A\rA\r")}, want: []want{good("A"), good("A")}},
	}
	for _, tt := range tests {
		for _, split := range []bool{false, true} {
			name := tt.name
			if split {
				name += "/byte by byte"
			}
			t.Run(name, func(t *testing.T) {
				cfg := Config{Debounce: time.Second}
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				got := runSteps(t, cfg, tt.steps, split)
				checkFrames(t, got, tt.want)
			})
		}
	}
}

func runSteps(t *testing.T, cfg Config, steps []step, split bool) []Frame {
	t.Helper()
	r, err := NewFrameReader(cfg)
	if err != nil {
		t.Fatalf("NewFrameReader: %v", err)
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var got []Frame
	for _, s := range steps {
		now := t0.Add(s.at)
		switch {
		case s.expire:
			if f, ok := r.Expire(now); ok {
				got = append(got, f)
			}
		case split:
			for i := range len(s.data) {
				got = append(got, r.Feed(now, []byte{s.data[i]})...)
			}
		default:
			got = append(got, r.Feed(now, []byte(s.data))...)
		}
	}
	return got
}

func checkFrames(t *testing.T, got []Frame, want []want) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames %v, want %d", len(got), describe(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Reason != w.reason || g.Code != w.code || g.Symbology.Name != w.sym {
			t.Errorf("frame %d: got reason %s code %q symbology %q, want %s %q %q", i, g.Reason, g.Code, g.Symbology.Name, w.reason, w.code, w.sym)
		}
		if w.raw != 0 && g.RawLen != w.raw {
			t.Errorf("frame %d: raw length %d, want %d", i, g.RawLen, w.raw)
		}
	}
}

func describe(fs []Frame) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "[%s %q] ", f.Reason, f.Code)
	}
	return b.String()
}

func term(x Terminator) func(*Config) { return func(c *Config) { c.Terminator = x } }

func affix(prefix, suffix string) func(*Config) {
	return func(c *Config) { c.Prefix, c.Suffix = prefix, suffix }
}

func aim(c *Config) { c.AIM = true }

func maxFrame(n int) func(*Config) { return func(c *Config) { c.MaxFrame = n } }

func debounce(d time.Duration) func(*Config) { return func(c *Config) { c.Debounce = d } }

func both(a, b func(*Config)) func(*Config) {
	return func(c *Config) { a(c); b(c) }
}

func TestFrameReaderRejectsBadFraming(t *testing.T) {
	_, err := NewFrameReader(Config{Terminator: "NUL"})
	if err == nil || !strings.Contains(err.Error(), "terminator") {
		t.Fatalf("NewFrameReader with terminator NUL: got %v, want an error naming terminator", err)
	}
}

func TestFrameKeepsCodeOutOfText(t *testing.T) {
	f := Frame{Code: "4006381333931", RawLen: 14}
	s := Scan{Port: "front", Code: "4006381333931"}
	for _, text := range []string{f.String(), fmt.Sprint(f), fmt.Sprintf("%+v", f), f.LogValue().String(), s.String(), fmt.Sprint(s), s.LogValue().String()} {
		if strings.Contains(text, "4006381333931") {
			t.Errorf("%q holds the code", text)
		}
	}
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		Accepted: "accepted", RejectNoise: "noise", RejectTooLong: "too_long", RejectHalfFrame: "half_frame",
		RejectMissingAIM: "missing_aim", RejectEmpty: "empty", RejectDuplicate: "duplicate", Reason(99): "reason(99)",
	}
	for r, w := range want {
		if r.String() != w {
			t.Errorf("Reason(%d).String() = %q, want %q", uint8(r), r.String(), w)
		}
	}
}
