// Package logring keeps the daemon's most recent log lines in memory, for
// support bundles (`storectl bundle`, GET /v1/logs): a fixed number of
// lines, each bounded in length, the oldest overwritten first.
//
// A Ring is an io.Writer: the daemon tees its slog output into it. The log
// holds no personal data by design (invariant 10); the ring masks, as a
// second line of defence, anything in a line that looks like an
// identifier: an e-mail address, a run of 8 or more digits (a loyalty card
// or phone number), a "+" followed by digits. A masked line says what was
// there, never the value ("<email>", "<12 digits>").
//
// It must never keep more than its bound in memory, block its writer, or
// hand out a line that was not masked. Its tests protect the bound, the
// order of lines, and the masking of seeded e-mail addresses, card and
// phone numbers.
package logring

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Bounds of a Ring.
const (
	// DefaultLines is how many lines the daemon keeps: about an hour of a
	// busy store at info level.
	DefaultLines = 2000
	// MaxLineBytes bounds one line; the rest is cut and marked.
	MaxLineBytes = 2048
)

// Ring is a fixed-size buffer of recent log lines. It is safe for
// concurrent use; the zero value is not usable, call New.
type Ring struct {
	mu      sync.Mutex // guards every field below
	lines   []string   // circular; next is where the next line goes
	next    int
	full    bool
	partial []byte // a line written without its newline yet
	dropped uint64 // lines overwritten since start
}

// New returns a Ring that keeps the n most recent lines (DefaultLines when
// n <= 0).
func New(n int) *Ring {
	if n <= 0 {
		n = DefaultLines
	}
	return &Ring{lines: make([]string, n)}
}

// Write adds the complete lines in p; a trailing part without a newline
// waits for the rest. It never fails and never blocks on anything but the
// ring's own lock.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			r.partial = appendBounded(r.partial, rest)
			break
		}
		line := appendBounded(r.partial, rest[:i])
		r.partial = r.partial[:0]
		r.add(line)
		rest = rest[i+1:]
	}
	return len(p), nil
}

// appendBounded appends p to b up to one byte past MaxLineBytes, which
// marks the line as cut.
func appendBounded(b, p []byte) []byte {
	if room := MaxLineBytes + 1 - len(b); room < len(p) {
		p = p[:max(room, 0)]
	}
	return append(b, p...)
}

func (r *Ring) add(line []byte) {
	cut := len(line) > MaxLineBytes
	if cut {
		line = line[:MaxLineBytes]
	}
	s := Mask(string(line))
	if cut {
		s += " <cut>"
	}
	if r.full {
		r.dropped++
	}
	r.lines[r.next] = s
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// Lines returns the n most recent lines, oldest first (all of them when n
// <= 0 or more than the ring holds), and how many older lines were
// overwritten since start.
func (r *Ring) Lines(n int) (lines []string, dropped uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all, r.dropped
}

var (
	emailLike = regexp.MustCompile(`[^\s"'<>()\[\],;:=]+@[^\s"'<>()\[\],;:]+\.[A-Za-z]{2,}`)
	// A "+" and digits (with the separators people type), or 8 or more
	// digits, maybe grouped by single spaces, anywhere: phone and card
	// numbers, also inside a longer token.
	// Dates and times in log lines ("2006-01-02T15:04:05") have no such
	// runs.
	phoneLike  = regexp.MustCompile(`\+[0-9][0-9 ().-]{6,}[0-9]`)
	digitsLike = regexp.MustCompile(`[0-9](?:[0-9]| [0-9]){7,}`)
)

// Mask replaces whatever in s looks like an identifier with a note of what
// it was: "<email>", "<phone>", "<n digits>". Digits grouped by single
// spaces count as one run, as a cashier types a card number.
func Mask(s string) string {
	s = emailLike.ReplaceAllString(s, "<email>")
	s = phoneLike.ReplaceAllString(s, "<phone>")
	return digitsLike.ReplaceAllStringFunc(s, func(m string) string {
		return "<" + strconv.Itoa(len(m)-strings.Count(m, " ")) + " digits>"
	})
}
