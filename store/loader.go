package store

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
)

// Loader fills an empty bucket with many keys in any order, in bounded
// memory and mostly sequential writes: what a million-profile snapshot
// needs. Inserting random keys (hashes) straight into a large bbolt bucket
// touches nearly every page in every transaction: slow, and the pages of a
// transaction are held in memory until it commits. Instead, Add buffers
// entries, sorts them and appends each full buffer as a sorted run to a
// scratch bucket; Finish merges the runs into the target bucket in key
// order, in transactions of bounded size, so every page is written once.
//
//  1. The target bucket must be empty when Finish starts, and nobody else
//     may write it until Finish returns.
//  2. Values of a sealed loader are sealed in the scratch bucket too, then
//     re-sealed for their place in the target: nothing is in the clear, ever.
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
	runs    uint32
	seq     uint64 // entries added, for "later wins"
}

type loadEntry struct {
	key, val []byte
	seq      uint64
}

// Limits of a loader: the buffer of one run, and the size of one merge
// transaction. Variables only so tests can make runs small.
var (
	loadRunBytes = 16 << 20
	loadTxBytes  = 16 << 20
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
	l.seq++
	l.buf = append(l.buf, loadEntry{key: bytes.Clone(key), val: bytes.Clone(val), seq: l.seq})
	l.bufSize += len(key) + len(val) + 48
}

// FlushIfFull writes the buffer out as a run if it has reached its bound.
func (l *Loader) FlushIfFull() error {
	if l.bufSize >= loadRunBytes {
		return l.flush()
	}
	return nil
}

// Options are the options the loader was made with.
func (l *Loader) Options() LoadOptions { return l.o }

// Added is the number of entries added so far.
func (l *Loader) Added() uint64 { return l.seq }

// flush sorts the buffer and appends it as one run.
func (l *Loader) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	slices.SortStableFunc(l.buf, func(a, b loadEntry) int { return bytes.Compare(a.key, b.key) })
	run := l.runs
	err := l.db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketLoading)
		b.FillPercent = 1.0
		for _, e := range l.buf {
			k := l.scratchKey(run, e.key, e.seq)
			v, err := l.sealScratch(k, e.val)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load %s: write run: %w", l.target, err)
	}
	l.runs++
	l.buf, l.bufSize = l.buf[:0], 0
	return nil
}

// scratchKey orders a run's entries: id, run, key, then the order added
// (so "later wins" survives the sort).
func (l *Loader) scratchKey(run uint32, key []byte, seq uint64) []byte {
	k := make([]byte, 0, 1+4+2+len(key)+8)
	k = append(k, l.id)
	k = binary.BigEndian.AppendUint32(k, run)
	k = binary.BigEndian.AppendUint16(k, uint16(len(key)))
	k = append(k, key...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func parseScratch(k []byte) (key []byte, seq uint64) {
	n := int(binary.BigEndian.Uint16(k[5:7]))
	return k[7 : 7+n], binary.BigEndian.Uint64(k[7+n:])
}

func (l *Loader) sealScratch(k, v []byte) ([]byte, error) {
	if !l.o.Sealed {
		return v, nil
	}
	return l.db.seal.seal(bucketLoading, k, v)
}

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
	m := &merger{l: l, pos: make([][]byte, l.runs)}
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
	return n, l.clearScratch()
}

// merger is a k-way merge of the runs, resumed transaction by transaction
// from the last scratch key it consumed in each run.
type merger struct {
	l   *Loader
	pos [][]byte // per run: the last scratch key consumed, nil before the first
}

type head struct {
	run       int
	k, v      []byte // scratch key and value, valid in the transaction
	key       []byte
	seq       uint64
	exhausted bool
}

type heads []*head

func (h heads) Len() int { return len(h) }
func (h heads) Less(i, j int) bool {
	if c := bytes.Compare(h[i].key, h[j].key); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h heads) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heads) Push(x any)   { *h = append(*h, x.(*head)) }
func (h *heads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
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
	curs := make([]*cursorRun, len(m.pos))
	h := &heads{}
	for r := range m.pos {
		curs[r] = &cursorRun{c: scratch.Cursor(), prefix: runPrefix(m.l.id, uint32(r))}
		if hd := curs[r].first(r, m.pos[r]); hd != nil {
			heap.Push(h, hd)
		}
	}
	var written uint64
	size := 0
	for h.Len() > 0 && size < loadTxBytes {
		key := bytes.Clone((*h)[0].key)
		var val []byte
		// Every entry with this key, oldest first, folded into one value.
		for h.Len() > 0 && bytes.Equal((*h)[0].key, key) {
			hd := heap.Pop(h).(*head)
			v, err := m.l.openScratch(hd.k, hd.v)
			if err != nil {
				return written, false, err
			}
			if val == nil || m.l.o.Merge == nil {
				val = v
			} else if val, err = m.l.o.Merge(val, v); err != nil {
				return written, false, err
			}
			m.pos[hd.run] = bytes.Clone(hd.k)
			if next := curs[hd.run].next(hd.run); next != nil {
				heap.Push(h, next)
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
		if err := m.put(tx, target.Put, key, val); err != nil {
			return written, false, err
		}
		written++
		size += len(key) + len(val)
	}
	return written, h.Len() == 0, nil
}

func (m *merger) put(tx *Tx, put func(k, v []byte) error, key, val []byte) error {
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
	return put(key, val)
}

func runPrefix(id byte, run uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{id}, run)
}

// cursorRun walks one run of the scratch bucket.
type cursorRun struct {
	c interface {
		Seek([]byte) ([]byte, []byte)
		Next() ([]byte, []byte)
	}
	prefix []byte
}

func (cr *cursorRun) first(run int, after []byte) *head {
	if after == nil {
		k, v := cr.c.Seek(cr.prefix)
		return cr.head(run, k, v)
	}
	k, v := cr.c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, v = cr.c.Next()
	}
	return cr.head(run, k, v)
}

func (cr *cursorRun) next(run int) *head {
	k, v := cr.c.Next()
	return cr.head(run, k, v)
}

func (cr *cursorRun) head(run int, k, v []byte) *head {
	if k == nil || !bytes.HasPrefix(k, cr.prefix) {
		return nil
	}
	key, seq := parseScratch(k)
	return &head{run: run, k: k, v: v, key: key, seq: seq}
}

// clearScratch deletes this loader's scratch entries, in bounded
// transactions.
func (l *Loader) clearScratch() error {
	for more := true; more; {
		err := l.db.Update(func(tx *Tx) error {
			c := tx.bucket(bucketLoading).Cursor()
			var keys [][]byte
			for k, _ := c.Seek([]byte{l.id}); k != nil && k[0] == l.id && len(keys) < 100_000; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			more = len(keys) == 100_000
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
