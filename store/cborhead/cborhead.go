// Package cborhead reads and writes the head of a CBOR data item (RFC 8949,
// section 3): its major type and its argument. It is the one primitive
// under the hand-written readers and writers that take the shapes
// this module writes itself without the general decoder (the outbox's
// envelopes, the agent's profile records, the central's view of an event
// batch); each of them leaves anything unusual to the strict decoder.
//
// It never allocates and never reads past b.
package cborhead

import (
	"encoding/binary"
	"math"
)

// Read reads the head at the start of b. ok is false when b is empty, too
// short for its head, or starts with a head of indefinite length or a
// reserved additional information (28 to 31): nothing this module writes.
func Read(b []byte) (major byte, arg uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	major, info := b[0]>>5, b[0]&0x1f
	switch {
	case info < 24:
		return major, uint64(info), b[1:], true
	case info == 24 && len(b) >= 2:
		return major, uint64(b[1]), b[2:], true
	case info == 25 && len(b) >= 3:
		return major, uint64(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case info == 26 && len(b) >= 5:
		return major, uint64(binary.BigEndian.Uint32(b[1:])), b[5:], true
	case info == 27 && len(b) >= 9:
		return major, binary.BigEndian.Uint64(b[1:]), b[9:], true
	}
	return 0, 0, nil, false
}

// Append appends the shortest head of major type major (0 to 7) and
// argument n, as the deterministic encoder writes it.
func Append(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), n)
}
