package scanner

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode"
	"unicode/utf8"
)

// Reason says why a frame was rejected. The zero value, Accepted, marks a
// good frame.
type Reason uint8

// Reasons. A frame with several faults gets the first that applies in this
// order, half_frame apart.
const (
	Accepted         Reason = iota // not a reject
	RejectTooLong                  // more than MaxFrame bytes before the terminator
	RejectNoise                    // control bytes or invalid UTF-8 in the code
	RejectEmpty                    // nothing left once prefix, suffix and AIM identifier are stripped
	RejectMissingAIM               // Config.AIM is on and the frame has no identifier
	RejectHalfFrame                // the line stalled longer than InterByteTimeout before the terminator
	RejectDuplicate                // the same code again within the debounce window
	numReasons
)

var reasonNames = [numReasons]string{
	Accepted:         "accepted",
	RejectTooLong:    "too_long",
	RejectNoise:      "noise",
	RejectEmpty:      "empty",
	RejectMissingAIM: "missing_aim",
	RejectHalfFrame:  "half_frame",
	RejectDuplicate:  "duplicate",
}

// String returns the name used in logs, metrics and Stats: "noise",
// "too_long", "half_frame", ...
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// MarshalText makes a Reason a readable JSON map key in Stats.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Frame is what a FrameReader made of the bytes up to one terminator, or of
// a partial frame it gave up on.
type Frame struct {
	// Code is the scanned text, stripped of prefix, suffix and AIM
	// identifier; empty for a reject. It may be personal data (a loyalty
	// number): never log it.
	Code string
	// Symbology is set when Config.AIM is on.
	Symbology Symbology
	// RawLen is the number of bytes this frame took from the line,
	// terminator included.
	RawLen int
	// At is when its last byte arrived, or when a stalled partial frame was
	// given up.
	At time.Time
	// Reason is Accepted for a good frame.
	Reason Reason
}

// OK reports whether f is a good frame.
func (f Frame) OK() bool { return f.Reason == Accepted }

// String describes f without its code.
func (f Frame) String() string {
	return fmt.Sprintf("frame{reason=%s symbology=%q code_len=%d raw_len=%d}", f.Reason, f.Symbology, len(f.Code), f.RawLen)
}

// LogValue keeps the code out of logs.
func (f Frame) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("reason", f.Reason.String()),
		slog.String("symbology", f.Symbology.Name),
		slog.Int("code_len", len(f.Code)),
		slog.Int("raw_len", f.RawLen),
	)
}

// FrameReader cuts a byte stream into frames. It owns no port and reads no
// clock: the caller hands it bytes in whatever fragments they arrived, with
// the time they arrived, so that it can be tested and fuzzed on its own.
//
// Resynchronisation: whatever is wrong with a frame, the reader forgets it at
// the next terminator (or when the line stalls), so noise never leaks into
// the frame after it.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	cfg Config

	buf       []byte    // bytes of the current frame, at most cfg.MaxFrame
	consumed  int       // bytes taken since the last frame ended, including those dropped past MaxFrame
	overflow  bool      // the current frame passed MaxFrame; its bytes are dropped until the terminator
	pendingCR bool      // CRLF mode: a CR arrived and the next byte decides whether it ends the frame
	lastByte  time.Time // arrival of the newest byte of the current frame

	lastCode string    // the last code delivered, for debouncing; held in memory only
	lastAt   time.Time // when lastCode was delivered
}

// NewFrameReader returns a reader for the framing fields of cfg (Terminator,
// Prefix, Suffix, AIM, MaxFrame, InterByteTimeout, Debounce), with zero
// fields defaulted. It fails when one of them is invalid.
func NewFrameReader(cfg Config) (*FrameReader, error) {
	cfg = cfg.withDefaults()
	if err := errors.Join(cfg.framingErrors()...); err != nil {
		return nil, err
	}
	return &FrameReader{cfg: cfg, buf: make([]byte, 0, cfg.MaxFrame)}, nil
}

// Feed takes the bytes p that arrived at now and returns the frames they
// complete, in order. A partial frame left from an earlier call that stalled
// longer than InterByteTimeout before now is returned first as a reject.
// Feed does not retain p.
func (r *FrameReader) Feed(now time.Time, p []byte) []Frame {
	var out []Frame
	if f, ok := r.Expire(now); ok {
		out = append(out, f)
	}
	for _, b := range p {
		if f, ok := r.feedByte(now, b); ok {
			out = append(out, f)
		}
	}
	return out
}

// Expire gives up the partial frame when no byte arrived for longer than
// InterByteTimeout before now. Feed does this itself, also when p is empty;
// Expire is for a caller that has no bytes to feed.
func (r *FrameReader) Expire(now time.Time) (Frame, bool) {
	if r.consumed == 0 || now.Sub(r.lastByte) <= r.cfg.InterByteTimeout {
		return Frame{}, false
	}
	return r.Flush(now)
}

// Flush gives up the partial frame, if any, at once: for when the line
// drops. The reject is too_long or noise when the partial frame was already
// known to be bad, half_frame otherwise.
func (r *FrameReader) Flush(now time.Time) (Frame, bool) {
	if r.consumed == 0 {
		return Frame{}, false
	}
	reason := RejectHalfFrame
	if r.overflow {
		reason = RejectTooLong
	} else if body, _ := bytes.CutPrefix(r.buf, []byte(r.cfg.Prefix)); !printable(body) {
		reason = RejectNoise
	}
	f := Frame{RawLen: r.consumed, At: now, Reason: reason}
	r.reset()
	return f, true
}

// pending is the number of bytes taken for the current, unfinished frame.
func (r *FrameReader) pending() int { return r.consumed }

func (r *FrameReader) reset() {
	r.buf = r.buf[:0]
	r.consumed = 0
	r.overflow = false
	r.pendingCR = false
}

func (r *FrameReader) feedByte(now time.Time, b byte) (Frame, bool) {
	r.consumed++
	r.lastByte = now
	switch r.cfg.Terminator {
	case TerminatorCR:
		if b == '\r' {
			return r.finish(now), true
		}
	case TerminatorLF:
		if b == '\n' {
			return r.finish(now), true
		}
	case TerminatorCRLF:
		return r.feedCRLF(now, b)
	}
	r.appendByte(b)
	return Frame{}, false
}

// feedCRLF holds a CR back until the next byte shows whether it ends the
// frame. A CR not followed by LF stays in the frame, which then fails as
// noise.
func (r *FrameReader) feedCRLF(now time.Time, b byte) (Frame, bool) {
	if r.pendingCR {
		r.pendingCR = false
		if b == '\n' {
			return r.finish(now), true
		}
		r.appendByte('\r')
	}
	if b == '\r' {
		r.pendingCR = true
		return Frame{}, false
	}
	r.appendByte(b)
	return Frame{}, false
}

func (r *FrameReader) appendByte(b byte) {
	if len(r.buf) >= r.cfg.MaxFrame {
		r.overflow = true
		return
	}
	r.buf = append(r.buf, b)
}

// finish ends the current frame at its terminator.
func (r *FrameReader) finish(now time.Time) Frame {
	f := Frame{RawLen: r.consumed, At: now, Reason: RejectTooLong}
	if !r.overflow {
		f.Code, f.Symbology, f.Reason = r.decode(r.buf)
	}
	if f.OK() && r.duplicate(f.Code, now) {
		f.Code, f.Symbology, f.Reason = "", Symbology{}, RejectDuplicate
	}
	if f.OK() {
		r.lastCode, r.lastAt = f.Code, now
	}
	r.reset()
	return f
}

// decode strips prefix and suffix (each only when present), checks that what
// is left is printable text, then splits off the AIM identifier. Noise is
// checked before the identifier so that garbage from a wrong baud rate shows
// as noise, not as missing_aim.
func (r *FrameReader) decode(raw []byte) (string, Symbology, Reason) {
	body, _ := bytes.CutPrefix(raw, []byte(r.cfg.Prefix))
	body, _ = bytes.CutSuffix(body, []byte(r.cfg.Suffix))
	if !printable(body) {
		return "", Symbology{}, RejectNoise
	}
	if len(body) == 0 {
		return "", Symbology{}, RejectEmpty
	}
	var sym Symbology
	if r.cfg.AIM {
		var ok bool
		if sym, body, ok = parseAIM(body); !ok {
			return "", Symbology{}, RejectMissingAIM
		}
		if len(body) == 0 {
			return "", Symbology{}, RejectEmpty
		}
	}
	return string(body), sym, Accepted
}

// duplicate reports whether code repeats the last delivered code within the
// debounce window. The window runs from the last delivery, so a code held
// under a presentation scanner is delivered again once per window.
func (r *FrameReader) duplicate(code string, now time.Time) bool {
	return r.cfg.Debounce > 0 && code == r.lastCode && now.Sub(r.lastAt) < r.cfg.Debounce
}

// printable reports whether b is valid UTF-8 holding only printable
// characters (ASCII space included): no C0 or C1 controls, no DEL, no format
// characters.
func printable(b []byte) bool {
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		if c == utf8.RuneError && size <= 1 {
			return false
		}
		if !unicode.IsPrint(c) {
			return false
		}
		b = b[size:]
	}
	return true
}
