package store

import (
	"bytes"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"
)

// The outbox is kept in segments: the records whose sequence numbers share
// seq / OutboxSegment live in a bucket of their own, named "outbox/" and
// that number in 16 hex digits. A drain deletes a segment it has wholly
// sent and seen acked by dropping its bucket, which frees the segment's
// pages in one step. Deleting the same records key by key made bbolt
// rebuild each leaf as a node, search it for every key and rebalance the
// tree at commit: a sixth of the CPU of a drain, agent, broker and central
// together, for work that carries nothing.
//
// The telemetry index is cut in segments the same way (outbox_tel/...), so
// the records and their index entries go together.
//
// The "outbox" bucket keeps the sequence counter and the records written
// before segments (schema 2), as "outbox_tel" keeps their index entries.
// Their sequence numbers all come before any segment's, so they are read
// first and leave as they are acked; nothing is rewritten on upgrade.
const (
	segmentShift = 10
	// OutboxSegment is how many consecutive sequence numbers share a
	// segment, the first of them a multiple of it. A caller deleting
	// acknowledged records frees the most with the least work when its
	// ranges end where a segment does (see DeleteOutboxRange).
	OutboxSegment = 1 << segmentShift
)

func segmentOf(seq uint64) uint64 { return seq >> segmentShift }

// family is a set of buckets keyed by sequence number, split in segments:
// the records, and the telemetry index (seq -> size), which shedding walks
// and every delete of telemetry cuts as the records are cut.
type family struct {
	legacy string // the bucket of the entries from before segments
	prefix string // the segments' names: prefix and 16 hex digits
	slot   int    // of the transaction's cache (Tx.seg)
}

var (
	records  = family{legacy: bucketOutbox, prefix: bucketOutbox + "/", slot: 0}
	telIndex = family{legacy: bucketOutboxTel, prefix: bucketOutboxTel + "/", slot: 1}
)

// name is the bucket name of segment seg.
func (f family) name(seg uint64) []byte {
	name := make([]byte, len(f.prefix)+16)
	copy(name, f.prefix)
	hex.Encode(name[len(f.prefix):], u64key(seg))
	return name
}

// parse returns the segment a bucket name is the name of.
func (f family) parse(name []byte) (uint64, bool) {
	if len(name) != len(f.prefix)+16 || !bytes.HasPrefix(name, []byte(f.prefix)) {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], name[len(f.prefix):]); err != nil {
		return 0, false
	}
	return keyU64(b[:]), true
}

// isOutboxBucket reports whether records in the bucket name are outbox
// records (sealed under the outbox's name, whatever bucket holds them).
func isOutboxBucket(name []byte) bool {
	_, seg := records.parse(name)
	return seg || string(name) == bucketOutbox
}

// segment returns the bucket of f's segment seg, made if create is set;
// nil when it does not exist. The last one asked for is kept for the next
// call: appends and reads stay in one segment for a thousand records.
func (tx *Tx) segment(f family, seg uint64, create bool) (*bolt.Bucket, error) {
	cache := &tx.seg[f.slot]
	if cache.b != nil && cache.id == seg {
		return cache.b, nil
	}
	name := f.name(seg)
	b := tx.btx.Bucket(name)
	if b == nil && create {
		var err error
		if b, err = tx.btx.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	if b != nil {
		cache.id, cache.b = seg, b
	}
	return b, nil
}

// dropSegment deletes f's segment seg with whatever it still holds.
func (tx *Tx) dropSegment(f family, seg uint64) error {
	tx.seg[f.slot].b = nil
	return tx.btx.DeleteBucket(f.name(seg))
}

// get returns f's value for seq, or nil.
func (tx *Tx) get(f family, seq uint64) []byte {
	key := u64key(seq)
	if b, _ := tx.segment(f, segmentOf(seq), false); b != nil {
		if v := b.Get(key); v != nil {
			return v
		}
	}
	return tx.bucket(f.legacy).Get(key)
}

// outboxGet returns the stored value of record seq, or nil.
func (tx *Tx) outboxGet(seq uint64) []byte { return tx.get(records, seq) }

// parts calls fn, in sequence order, with each of f's buckets that may
// hold entries with seq >= from: the legacy bucket when it still holds
// such entries, then every segment from from's on. fn returns false to
// stop. fn must not create or delete buckets.
func (tx *Tx) parts(f family, from uint64, fn func(b *bolt.Bucket) (bool, error)) error {
	legacy := tx.bucket(f.legacy)
	if k, _ := legacy.Cursor().Seek(u64key(from)); k != nil {
		if more, err := fn(legacy); !more || err != nil {
			return err
		}
	}
	c := tx.btx.Cursor()
	for k, _ := c.Seek(f.name(segmentOf(from))); k != nil; k, _ = c.Next() {
		seg, ok := f.parse(k)
		if !ok {
			return nil // past the segments
		}
		b, _ := tx.segment(f, seg, false)
		if b == nil {
			continue
		}
		if more, err := fn(b); !more || err != nil {
			return err
		}
	}
	return nil
}

// first returns f's first entry, wherever it is.
func (tx *Tx) first(f family) (k, v []byte) {
	tx.parts(f, 0, func(b *bolt.Bucket) (bool, error) {
		k, v = b.Cursor().First()
		return k == nil, nil
	})
	return k, v
}

// outboxParts is parts of the records.
func (tx *Tx) outboxParts(from uint64, fn func(b *bolt.Bucket) (bool, error)) error {
	return tx.parts(records, from, fn)
}

// segmentsIn returns f's segments that exist between those of first and
// last, in order.
func (tx *Tx) segmentsIn(f family, first, last uint64) []uint64 {
	var segs []uint64
	c := tx.btx.Cursor()
	for k, _ := c.Seek(f.name(segmentOf(first))); k != nil; k, _ = c.Next() {
		seg, ok := f.parse(k)
		if !ok || seg > segmentOf(last) {
			break
		}
		segs = append(segs, seg)
	}
	return segs
}

// deleteRange removes f's entries from first to last, calling seen, when
// not nil, with each before it goes, and returns how many went. A segment
// the range holds every entry of, or that it leaves empty, goes whole: its
// bucket is dropped.
func (tx *Tx) deleteRange(f family, first, last uint64, seen func(k, v []byte)) (int, error) {
	n, err := deleteKeyRange(tx.bucket(f.legacy), first, last, seen)
	if err != nil {
		return 0, err
	}
	for _, seg := range tx.segmentsIn(f, first, last) {
		m, err := tx.deleteSegmentRange(f, seg, first, last, seen)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

func (tx *Tx) deleteSegmentRange(f family, seg, first, last uint64, seen func(k, v []byte)) (int, error) {
	b, err := tx.segment(f, seg, false)
	if err != nil || b == nil {
		return 0, err
	}
	c := b.Cursor()
	lo, _ := c.First()
	hi, _ := c.Last()
	if lo == nil || (keyU64(lo) >= first && keyU64(hi) <= last) {
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			if seen != nil {
				seen(k, v)
			}
			n++
			return nil
		})
		if err != nil {
			return 0, err
		}
		return n, tx.dropSegment(f, seg)
	}
	n, err := deleteKeyRange(b, first, last, seen)
	if err != nil {
		return n, err
	}
	if k, _ := b.Cursor().First(); k == nil {
		return n, tx.dropSegment(f, seg)
	}
	return n, nil
}
