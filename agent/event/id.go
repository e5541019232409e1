package event

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// IDs generates UUIDv7s (RFC 9562): messageIds and anonymous ids: a 48-bit Unix time in
// milliseconds, the version and variant bits, and 74 random bits. Within one
// millisecond, or when the clock steps back, it increments the random bits
// of the previous id instead (RFC 9562 section 6.2, method 2), so the ids of
// one generator sort in the order they were made. The zero value is ready to
// use and safe for concurrent use.
type IDs struct {
	now func() time.Time // nil means time.Now; tests set it

	mu      sync.Mutex // guards started, last and lastMs
	started bool
	last    [16]byte
	lastMs  int64
}

var defaultIDs IDs

// NewID returns a new UUIDv7 in lowercase canonical text, from a generator
// shared by the process: every messageId and every anonymous id, on the
// agent and on the reference central alike.
func NewID() string { return defaultIDs.Next() }

// Next returns a new UUIDv7 in lowercase canonical text.
func (g *IDs) Next() string {
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	ms := max(now().UnixMilli(), 0)

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started && ms <= g.lastMs && increment(&g.last) {
		return FormatID(g.last)
	}
	if g.started {
		ms = max(ms, g.lastMs+1)
	}
	g.started, g.lastMs = true, ms
	g.last = fresh(g.lastMs)
	return FormatID(g.last)
}

// fresh returns a UUIDv7 for ms with new random bits. The top random bit is
// cleared so that many increments fit before the counter overflows.
func fresh(ms int64) [16]byte {
	var u [16]byte
	rand.Read(u[6:]) // never fails since Go 1.24
	putMillis(&u, ms)
	u[6] = 0x70 | u[6]&0x07 // version 7, top bit of rand_a cleared
	u[8] = 0x80 | u[8]&0x3f // variant 10
	return u
}

func putMillis(u *[16]byte, ms int64) {
	for i := range 6 {
		u[i] = byte(ms >> (8 * (5 - i)))
	}
}

// increment adds one to the 74 random bits of u (rand_a and rand_b),
// skipping the version and variant bits. It reports false on overflow.
func increment(u *[16]byte) bool {
	for i := 15; i >= 9; i-- {
		u[i]++
		if u[i] != 0 {
			return true
		}
	}
	if low := u[8] & 0x3f; low < 0x3f {
		u[8] = 0x80 | (low + 1)
		return true
	}
	u[8] = 0x80
	if u[7]++; u[7] != 0 {
		return true
	}
	if low := u[6] & 0x0f; low < 0x0f {
		u[6] = 0x70 | (low + 1)
		return true
	}
	return false
}

// FormatID writes a UUID's 16 bytes as lowercase canonical text.
func FormatID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ValidID reports whether s is a UUIDv7 in lowercase canonical text
// (8-4-4-4-12 hex digits, version 7, variant 10), the only messageId the
// wire accepts (a POS bringing its own id for an idempotent retry must make
// a v7). Uppercase is refused: the central deduplicates on the text, and
// two spellings of one id would both pass.
func ValidID(s string) bool {
	return ValidUUID(s) && s[14] == '7' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b')
}

// ValidUUID reports whether s is a UUID of any version in lowercase
// canonical text (8-4-4-4-12 hex digits).
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// IDTime returns the Unix time in milliseconds held by a valid id, and
// false for an invalid one.
func IDTime(s string) (int64, bool) {
	if !ValidID(s) {
		return 0, false
	}
	var b [6]byte
	if _, err := hex.Decode(b[:4], []byte(s[0:8])); err != nil {
		return 0, false
	}
	if _, err := hex.Decode(b[4:], []byte(s[9:13])); err != nil {
		return 0, false
	}
	var ms int64
	for _, x := range b {
		ms = ms<<8 | int64(x)
	}
	return ms, true
}

// ParseID turns an id into its 16 bytes (the inverse of FormatID). It
// checks only the shape (dashes, hex), not what ValidID checks: callers
// parse ids the wire has already validated.
func ParseID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	var hexText [32]byte
	n := copy(hexText[:], s[0:8])
	n += copy(hexText[n:], s[9:13])
	n += copy(hexText[n:], s[14:18])
	n += copy(hexText[n:], s[19:23])
	copy(hexText[n:], s[24:36])
	if _, err := hex.Decode(u[:], hexText[:]); err != nil {
		return u, false
	}
	return u, true
}
