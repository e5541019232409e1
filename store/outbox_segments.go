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
// The "outbox" bucket keeps the sequence counter, and the records written
// before segments (schema 2). Their sequence numbers all come before any
// segment's, so they are read first and leave as they are acked; nothing is
// rewritten on upgrade.
const (
	segmentShift = 10
	// OutboxSegment is how many consecutive sequence numbers share a
	// segment, the first of them a multiple of it. A caller deleting
	// acknowledged records frees the most with the least work when its
	// ranges end where a segment does (see DeleteOutboxRange).
	OutboxSegment = 1 << segmentShift
	segmentPrefix = bucketOutbox + "/"
)

func segmentOf(seq uint64) uint64 { return seq >> segmentShift }

// segmentName is the bucket name of segment seg.
func segmentName(seg uint64) []byte {
	name := make([]byte, len(segmentPrefix)+16)
	copy(name, segmentPrefix)
	hex.Encode(name[len(segmentPrefix):], u64key(seg))
	return name
}

// parseSegment returns the segment a bucket name is the name of.
func parseSegment(name []byte) (uint64, bool) {
	if len(name) != len(segmentPrefix)+16 || !bytes.HasPrefix(name, []byte(segmentPrefix)) {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], name[len(segmentPrefix):]); err != nil {
		return 0, false
	}
	return keyU64(b[:]), true
}

// isOutboxBucket reports whether records in the bucket name are outbox
// records (sealed under the outbox's name, whatever bucket holds them).
func isOutboxBucket(name []byte) bool {
	_, seg := parseSegment(name)
	return seg || string(name) == bucketOutbox
}

// segment returns the bucket of segment seg, made if create is set; nil
// when it does not exist. The last one asked for is kept for the next call:
// appends and reads stay in one segment for a thousand records.
func (tx *Tx) segment(seg uint64, create bool) (*bolt.Bucket, error) {
	if tx.seg.b != nil && tx.seg.id == seg {
		return tx.seg.b, nil
	}
	name := segmentName(seg)
	b := tx.btx.Bucket(name)
	if b == nil && create {
		var err error
		if b, err = tx.btx.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	if b != nil {
		tx.seg.id, tx.seg.b = seg, b
	}
	return b, nil
}

// dropSegment deletes segment seg's bucket with whatever it still holds.
func (tx *Tx) dropSegment(seg uint64) error {
	tx.seg.b = nil
	return tx.btx.DeleteBucket(segmentName(seg))
}

// outboxGet returns the stored value of record seq, or nil.
func (tx *Tx) outboxGet(seq uint64) []byte {
	key := u64key(seq)
	if b, _ := tx.segment(segmentOf(seq), false); b != nil {
		if v := b.Get(key); v != nil {
			return v
		}
	}
	return tx.bucket(bucketOutbox).Get(key)
}

// legacySegment stands for the "outbox" bucket in outboxParts: before every
// segment.
const legacySegment = ^uint64(0)

// outboxParts calls fn, in sequence order, with each bucket that may hold
// records with seq >= from: the "outbox" bucket when it still holds such
// records, then every segment from from's on. fn returns false to stop.
// fn must not create or delete buckets.
func (tx *Tx) outboxParts(from uint64, fn func(seg uint64, b *bolt.Bucket) (bool, error)) error {
	legacy := tx.bucket(bucketOutbox)
	if k, _ := legacy.Cursor().Seek(u64key(from)); k != nil {
		if more, err := fn(legacySegment, legacy); !more || err != nil {
			return err
		}
	}
	c := tx.btx.Cursor()
	for k, _ := c.Seek(segmentName(segmentOf(from))); k != nil; k, _ = c.Next() {
		seg, ok := parseSegment(k)
		if !ok {
			return nil // past the segments
		}
		b, _ := tx.segment(seg, false)
		if b == nil {
			continue
		}
		if more, err := fn(seg, b); !more || err != nil {
			return err
		}
	}
	return nil
}

// segmentsIn returns the segments that exist between those of first and
// last, in order.
func (tx *Tx) segmentsIn(first, last uint64) []uint64 {
	var segs []uint64
	c := tx.btx.Cursor()
	for k, _ := c.Seek(segmentName(segmentOf(first))); k != nil; k, _ = c.Next() {
		seg, ok := parseSegment(k)
		if !ok || seg > segmentOf(last) {
			break
		}
		segs = append(segs, seg)
	}
	return segs
}

// deleteSegmentRange removes the records from first to last from segment
// seg, calling seen with each before it goes. A segment left with no
// record (or holding none but those) goes whole: its bucket is dropped.
func (tx *Tx) deleteSegmentRange(seg, first, last uint64, seen func(k, v []byte)) (int, error) {
	b, err := tx.segment(seg, false)
	if err != nil || b == nil {
		return 0, err
	}
	c := b.Cursor()
	lo, _ := c.First()
	hi, _ := c.Last()
	if lo == nil || (keyU64(lo) >= first && keyU64(hi) <= last) {
		n := 0
		err := b.ForEach(func(k, v []byte) error {
			seen(k, v)
			n++
			return nil
		})
		if err != nil {
			return 0, err
		}
		return n, tx.dropSegment(seg)
	}
	n, err := deleteKeyRange(b, first, last, seen)
	if err != nil {
		return n, err
	}
	if k, _ := b.Cursor().First(); k == nil {
		return n, tx.dropSegment(seg)
	}
	return n, nil
}
