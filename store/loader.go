package store

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Loader fills an empty bucket with many keys in any order, in bounded
// memory and mostly sequential writes: what a million-profile snapshot
// needs. Inserting random keys (hashes) straight into a large bbolt bucket
// touches nearly every page in every transaction: slow, and the pages of a
// transaction are held in memory until it commits. Instead, Add buffers
// entries; each full buffer is sorted and written to a scratch bucket as a
// run of blocks (64 KiB of entries each, one bbolt value, sealed as one);
// Finish merges the runs into the target bucket in key order, in
// transactions of bounded size, so every page of the target is written
// once and the scratch is read block by block.
//
//  1. The target bucket must be empty when Finish starts, and nobody else
//     may write it until Finish returns.
//  2. The blocks of a sealed loader are sealed in the scratch bucket, and
//     its values sealed again for their place in the target: nothing is in
//     the clear at rest, ever.
//  3. When two entries have the same key, Merge decides the value (nil
//     Merge: the later one wins); Final then sees each key once.
//  4. A Loader is not safe for concurrent use. A crash leaves only scratch
//     data, cleared by the next NewLoader of the same id.
type Loader struct {
	db      *DB
	id      byte
	target  string
	o       LoadOptions
	buf     []loadEntry
	bufSize int
	runs    []uint32 // blocks per run written
}

type loadEntry struct{ key, val []byte }

// Limits of a loader: the buffer of one run, a block of a run, and the
// size of one merge transaction. Variables only so tests can make runs
// small.
var (
	loadRunBytes   = 8 << 20
	loadBlockBytes = 64 << 10
	loadTxBytes    = 8 << 20
)

// LoadOptions shape a bulk load.
type LoadOptions struct {
	// Sealed values are encrypted at rest, bound to the target bucket and
	// key (read them with GetSealed).
	Sealed bool
	// Merge folds two values of one key, the older first. Nil: the later
	// value wins.
	Merge func(old, new []byte) ([]byte, error)
	// Final, if set, sees every key once, in key order, with its folded
	// value, inside the merge transaction tx; it returns the value to
	// store, or nil to leave the key out. It may write other buckets of
	// tx, and Buffer into other loaders (never Add: Add may commit).
	Final func(tx *Tx, key, val []byte) ([]byte, error)
	// Between, if set, runs between merge transactions, outside any: the
	// place to flush loaders Final buffered into.
	Between func() error
	// Pause, if set, ends a merge transaction early when it reports true
	// (after a key): Final has buffered enough into other loaders that
	// Between should flush them before memory grows further.
	Pause func() bool
}

// NewLoader starts a bulk load of the target bucket (one of the agent's
// buckets). id tells apart loaders running at the same time (0 to 255); it
// also clears what a loader of the same id left behind.
func (db *DB) NewLoader(id byte, target string, o LoadOptions) (*Loader, error) {
	l := &Loader{db: db, id: id, target: target, o: o}
	return l, l.clearScratch()
}

// Add buffers one entry, and writes the buffer out as a run when it is
// full. key and val are copied.
func (l *Loader) Add(key, val []byte) error {
	l.Buffer(key, val)
	return l.FlushIfFull()
}

// Buffer adds one entry without ever writing: safe inside a transaction.
// Call FlushIfFull outside one, soon, to keep memory bounded.
func (l *Loader) Buffer(key, val []byte) {
	l.buffer(bytes.Clone(key), bytes.Clone(val))
}

// buffer adds an entry whose key and value the loader may keep.
func (l *Loader) buffer(key, val []byte) {
	l.buf = append(l.buf, loadEntry{key: key, val: val})
	l.bufSize += len(key) + len(val) + 56
}

// BufferSealed is Buffer of a value sealed now, bound to the target bucket
// and key, for a loader whose other values are not sealed (Sealed seals
// them all). It reads as a sealed value of the target once loaded.
func (l *Loader) BufferSealed(key, val []byte) error {
	sealed, err := l.db.seal.seal(l.target, key, val)
	if err != nil {
		return err
	}
	l.buffer(bytes.Clone(key), sealed) // sealed is a fresh slice: no second copy
	return nil
}

// FlushIfFull writes the buffer out as a run if it has reached its bound.
func (l *Loader) FlushIfFull() error {
	if l.Full() {
		return l.flush()
	}
	return nil
}

// Full reports whether the buffer has reached its bound: FlushIfFull
// would write it out.
func (l *Loader) Full() bool { return l.bufSize >= loadRunBytes }

// flush sorts the buffer (stably: of one key, the later entry stays
// later) and writes it as one run of blocks.
func (l *Loader) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	slices.SortStableFunc(l.buf, func(a, b loadEntry) int { return bytes.Compare(a.key, b.key) })
	run := uint32(len(l.runs))
	var blocks uint32
	err := l.db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketLoading)
		b.FillPercent = 1.0
		blk := make([]byte, 0, loadBlockBytes+1024)
		put := func() error {
			k := l.blockKey(run, blocks)
			v, err := l.sealScratch(k, blk)
			if err != nil {
				return err
			}
			blocks++
			if !l.o.Sealed {
				v = bytes.Clone(v) // bbolt keeps the slice until commit
			}
			blk = blk[:0]
			return b.Put(k, v)
		}
		for _, e := range l.buf {
			blk = binary.AppendUvarint(blk, uint64(len(e.key)))
			blk = append(blk, e.key...)
			blk = binary.AppendUvarint(blk, uint64(len(e.val)))
			blk = append(blk, e.val...)
			if len(blk) >= loadBlockBytes {
				if err := put(); err != nil {
					return err
				}
			}
		}
		if len(blk) > 0 {
			return put()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load %s: write run: %w", l.target, err)
	}
	l.runs = append(l.runs, blocks)
	clear(l.buf) // let the copies go
	l.buf, l.bufSize = l.buf[:0], 0
	return nil
}

// blockKey names block n of a run: id, run, n, so one loader's blocks sit
// together and in order.
func (l *Loader) blockKey(run, n uint32) []byte {
	k := make([]byte, 0, 9)
	k = append(k, l.id)
	k = binary.BigEndian.AppendUint32(k, run)
	return binary.BigEndian.AppendUint32(k, n)
}

func (l *Loader) sealScratch(k, v []byte) ([]byte, error) {
	if !l.o.Sealed {
		return v, nil
	}
	return l.db.seal.seal(bucketLoading, k, v)
}

// openScratch returns the plain block, always a copy of its own (it lives
// across transactions).
func (l *Loader) openScratch(k, v []byte) ([]byte, error) {
	if !l.o.Sealed {
		return bytes.Clone(v), nil
	}
	return l.db.seal.open(bucketLoading, k, v)
}

// Finish merges every run into the target bucket, in key order, and clears
// the scratch data. It returns the number of keys written.
func (l *Loader) Finish(ctx context.Context) (uint64, error) {
	if err := l.flush(); err != nil {
		return 0, err
	}
	m := &merger{l: l}
	for r, n := range l.runs {
		if n > 0 {
			m.readers = append(m.readers, &runReader{run: uint32(r), blocks: n})
		}
	}
	var n uint64
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		err := l.db.Update(func(tx *Tx) error {
			written, end, err := m.step(tx)
			n += written
			done = end
			return err
		})
		if err != nil {
			return n, fmt.Errorf("load %s: merge: %w", l.target, err)
		}
		if l.o.Between != nil {
			if err := l.o.Between(); err != nil {
				return n, fmt.Errorf("load %s: %w", l.target, err)
			}
		}
	}
	l.runs = nil
	return n, l.clearScratch()
}

// runReader walks one run, a block at a time; its block is a plain copy,
// so it carries over from one merge transaction to the next.
type runReader struct {
	run          uint32
	blocks, next uint32 // blocks in the run, the next to read
	block        []byte // the rest of the current block
	key, val     []byte // the current entry
}

// advance moves to the next entry, reading the next block when the
// current one is spent; it reports false at the end of the run.
func (r *runReader) advance(l *Loader, scratch *bolt.Bucket) (bool, error) {
	for len(r.block) == 0 {
		if r.next == r.blocks {
			return false, nil
		}
		k := l.blockKey(r.run, r.next)
		v := scratch.Get(k)
		if v == nil {
			return false, &CorruptError{Bucket: bucketLoading, Key: k, Err: errors.New("block of a run missing")}
		}
		plain, err := l.openScratch(k, v)
		if err != nil {
			return false, err
		}
		r.block, r.next = plain, r.next+1
	}
	var err error
	if r.key, r.block, err = field(r.block); err != nil {
		return false, err
	}
	if r.val, r.block, err = field(r.block); err != nil {
		return false, err
	}
	return true, nil
}

// field splits a length-prefixed field off b.
func field(b []byte) (f, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, &CorruptError{Bucket: bucketLoading, Err: errors.New("block of a run cut short")}
	}
	end := w + int(n)
	return b[w:end:end], b[end:], nil // capped: a Merge that appends must not run into the next entry
}

// merger is a k-way merge of the runs: a heap of readers ordered by their
// current key, then by run (the earlier run was added earlier).
type merger struct {
	l       *Loader
	readers []*runReader // as a heap, once started
	started bool
}

func (m *merger) less(i, j int) bool {
	a, b := m.readers[i], m.readers[j]
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.run < b.run
}

func (m *merger) Len() int           { return len(m.readers) }
func (m *merger) Less(i, j int) bool { return m.less(i, j) }
func (m *merger) Swap(i, j int)      { m.readers[i], m.readers[j] = m.readers[j], m.readers[i] }
func (m *merger) Push(x any)         { m.readers = append(m.readers, x.(*runReader)) }
func (m *merger) Pop() any {
	x := m.readers[len(m.readers)-1]
	m.readers = m.readers[:len(m.readers)-1]
	return x
}

// step writes up to loadTxBytes of merged entries in tx. It reports how
// many keys it wrote and whether the merge is complete.
func (m *merger) step(tx *Tx) (uint64, bool, error) {
	scratch := tx.bucket(bucketLoading)
	target := tx.bucket(m.l.target)
	if target == nil {
		return 0, true, fmt.Errorf("bucket %s: %w", m.l.target, ErrUnknownBucket)
	}
	target.FillPercent = 1.0
	if !m.started {
		m.started = true
		live := m.readers[:0]
		for _, r := range m.readers {
			ok, err := r.advance(m.l, scratch)
			if err != nil {
				return 0, false, err
			}
			if ok {
				live = append(live, r)
			}
		}
		m.readers = live
		heap.Init(m)
	}
	var written uint64
	size := 0
	for len(m.readers) > 0 && size < loadTxBytes && !m.paused(written) {
		key := m.readers[0].key
		var val []byte
		// Every entry with this key, oldest first, folded into one value.
		for len(m.readers) > 0 && bytes.Equal(m.readers[0].key, key) {
			r := m.readers[0]
			v := r.val
			if val == nil || m.l.o.Merge == nil {
				val = v
			} else {
				var err error
				if val, err = m.l.o.Merge(val, v); err != nil {
					return written, false, err
				}
			}
			ok, err := r.advance(m.l, scratch)
			if err != nil {
				return written, false, err
			}
			if ok {
				heap.Fix(m, 0)
			} else {
				heap.Pop(m)
			}
		}
		if m.l.o.Final != nil {
			var err error
			if val, err = m.l.o.Final(tx, key, val); err != nil {
				return written, false, err
			}
			if val == nil {
				continue
			}
		}
		if err := m.put(tx, target, key, val); err != nil {
			return written, false, err
		}
		written++
		size += len(key) + len(val)
	}
	return written, len(m.readers) == 0, nil
}

// paused reports whether Pause ends the transaction, once it has made
// progress: a transaction always writes at least one key.
func (m *merger) paused(written uint64) bool {
	return written > 0 && m.l.o.Pause != nil && m.l.o.Pause()
}

func (m *merger) put(tx *Tx, b *bolt.Bucket, key, val []byte) error {
	if m.l.o.Sealed {
		sealed, err := tx.db.seal.seal(m.l.target, key, val)
		if err != nil {
			return err
		}
		val = sealed
	}
	if val == nil {
		val = []byte{}
	}
	return b.Put(key, val)
}

// clearScratch deletes this loader's scratch blocks, in bounded
// transactions.
func (l *Loader) clearScratch() error {
	for more := true; more; {
		err := l.db.Update(func(tx *Tx) error {
			c := tx.bucket(bucketLoading).Cursor()
			var keys [][]byte
			for k, _ := c.Seek([]byte{l.id}); k != nil && k[0] == l.id && len(keys) < 10_000; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			more = len(keys) == 10_000
			b := tx.bucket(bucketLoading)
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load %s: clear scratch: %w", l.target, err)
		}
	}
	return nil
}
