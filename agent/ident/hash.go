package ident

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"sync"
)

// MinKeyLen is the shortest tenant key NewHasher accepts, in bytes.
const MinKeyLen = 32

// ErrShortKey is returned by NewHasher when the tenant key is shorter than
// MinKeyLen bytes.
var ErrShortKey = errors.New("tenant key shorter than 32 bytes")

// Hasher computes the keyed hashes of identifiers under one tenant key. It
// is safe for concurrent use; Sum and Derive do not allocate once warm.
//
// Printing or logging a Hasher never shows its key.
type Hasher struct {
	key  []byte    // the tenant key, a private copy
	pool sync.Pool // of *macState keyed with key
}

// macState is one keyed HMAC with scratch space, so that a hash costs no
// allocation: the bytes handed to the hash.Hash interface live here, on the
// heap already, rather than escaping from the caller's stack.
type macState struct {
	mac hash.Hash
	buf []byte
	out [sha256.Size]byte
}

// maxPooledBuf bounds the scratch buffer kept in the pool, so that one long
// Derive label does not pin memory.
const maxPooledBuf = 1024

// NewHasher returns a Hasher for tenantKey, which it copies. The key must be
// at least MinKeyLen bytes (ErrShortKey).
func NewHasher(tenantKey []byte) (*Hasher, error) {
	if len(tenantKey) < MinKeyLen {
		return nil, ErrShortKey
	}
	h := &Hasher{key: append([]byte(nil), tenantKey...)}
	h.pool.New = func() any {
		return &macState{mac: hmac.New(sha256.New, h.key), buf: make([]byte, 0, 128)}
	}
	return h, nil
}

// Sum returns HMAC-SHA256(tenant key, kind ":" value) of id: the bytes the
// central CDP lists in a profile's idents (PROTOCOL.md, "Identifiers").
//
// Sum does not validate id: pass only an ID that Rules.Normalize or
// Rules.ParseScan returned, or the hash will match nothing the central
// computed.
func (h *Hasher) Sum(id ID) [sha256.Size]byte {
	st := h.pool.Get().(*macState)
	st.buf = append(append(append(st.buf[:0], id.Kind...), ':'), id.Value...)
	out := st.sum(nil)
	h.put(st)
	return out
}

// Derive returns HMAC-SHA256(tenant key, label ":" data): a keyed tag for
// something other than an identifier, such as the key of a provisional
// profile in the store. Tags of different labels are independent, and none
// can equal the hash of an identifier.
//
// label is a constant of the caller: it must be non-empty, hold none of ':'
// and control characters, and not be a Kind's name, else Derive panics,
// because such a label would let a tag collide with another label's tag or
// with Sum of an identifier.
func (h *Hasher) Derive(label string, data []byte) [sha256.Size]byte {
	if label == "" || Kind(label).known() || hasColonOrControl(label) {
		panic("ident: Derive label must be non-empty, hold no ':' and not be a kind")
	}
	st := h.pool.Get().(*macState)
	st.buf = append(append(st.buf[:0], label...), ':')
	out := st.sum(data)
	h.put(st)
	return out
}

func hasColonOrControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' || s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// sum returns the HMAC of st.buf followed by data.
func (st *macState) sum(data []byte) [sha256.Size]byte {
	st.mac.Reset()
	st.mac.Write(st.buf)
	if len(data) > 0 {
		st.mac.Write(data)
	}
	st.mac.Sum(st.out[:0])
	return st.out
}

func (h *Hasher) put(st *macState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = make([]byte, 0, 128)
	}
	h.pool.Put(st)
}

// String hides the key.
func (h *Hasher) String() string { return "ident.Hasher{key:<redacted>}" }

// Format makes every fmt verb print String, so the key never shows.
func (h *Hasher) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), h.String())
}

// LogValue implements slog.LogValuer without the key.
func (h *Hasher) LogValue() slog.Value { return slog.StringValue(h.String()) }
