package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction handed to the functions given to DB.Update and
// DB.View. It is valid only inside that function.
type Tx struct {
	db       *DB
	btx      *bolt.Tx
	writable bool

	counters *outboxCounters // loaded on first outbox write, saved by finish
	appended bool            // the outbox grew in this transaction
	seg      [2]struct {     // the segment of each family last opened (see Tx.segment)
		id uint64
		b  *bolt.Bucket
	}

	handles [3]Bucket // room for the first handles, so a short read allocates none
	nh      int
}

// finish saves what the transaction changed in memory before bbolt commits.
func (tx *Tx) finish() error {
	if tx.counters == nil {
		return nil
	}
	return saveCounters(tx.btx, tx.counters)
}

// ID is the id of the state of the file the transaction sees; a writable
// transaction's is the id of the state it commits. Ids grow with every
// commit to the same file (a compaction starts a new file).
func (tx *Tx) ID() uint64 { return uint64(tx.btx.ID()) }

func (tx *Tx) bucket(name string) *bolt.Bucket { return tx.btx.Bucket([]byte(name)) }

// Bucket returns a handle on one of the agent's buckets (BucketProfiles and
// the others). A name outside the schema yields a handle whose methods fail
// with ErrUnknownBucket.
func (tx *Tx) Bucket(name string) *Bucket {
	if tx.nh < len(tx.handles) {
		h := &tx.handles[tx.nh]
		tx.nh++
		*h = Bucket{tx: tx, name: name, b: tx.bucket(name)}
		return h
	}
	return &Bucket{tx: tx, name: name, b: tx.bucket(name)}
}

// Bucket is a key/value bucket with optional sealing of values.
type Bucket struct {
	tx   *Tx
	name string
	b    *bolt.Bucket
}

func (b *Bucket) check(write bool) error {
	if b.b == nil {
		return fmt.Errorf("bucket %s: %w", b.name, ErrUnknownBucket)
	}
	if write && !b.tx.writable {
		return ErrReadOnly
	}
	return nil
}

// Get returns a copy of the value stored at key, or nil.
func (b *Bucket) Get(key []byte) ([]byte, error) {
	if err := b.check(false); err != nil {
		return nil, err
	}
	return bytes.Clone(b.b.Get(key)), nil
}

// Peek returns the value at key without copying it, or nil: the bytes are
// bbolt's and valid only until the transaction ends. Never keep or modify
// them; Get is the safe default.
func (b *Bucket) Peek(key []byte) ([]byte, error) {
	if err := b.check(false); err != nil {
		return nil, err
	}
	return b.b.Get(key), nil
}

// Put stores val at key in the clear. Never use it for personal data.
func (b *Bucket) Put(key, val []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	return b.b.Put(key, val)
}

// PutSealed encrypts val bound to this bucket and key, and stores it.
func (b *Bucket) PutSealed(key, val []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	sealed, err := b.tx.db.seal.seal(b.name, key, val)
	if err != nil {
		return err
	}
	return b.b.Put(key, sealed)
}

// GetSealed opens the sealed value at key. It returns nil, nil when the key
// is absent and a *CorruptError when the seal does not open.
func (b *Bucket) GetSealed(key []byte) ([]byte, error) { return b.GetSealedTo(nil, key) }

// GetSealedTo is GetSealed appending the opened value to dst, so that a
// caller reading many values can reuse one buffer. It returns nil, nil when
// the key is absent.
func (b *Bucket) GetSealedTo(dst, key []byte) ([]byte, error) {
	if err := b.check(false); err != nil {
		return nil, err
	}
	v := b.b.Get(key)
	if v == nil {
		return nil, nil
	}
	return b.tx.db.seal.openTo(dst, b.name, key, v)
}

// Open opens a sealed value read from this bucket by ForEach.
func (b *Bucket) Open(key, sealed []byte) ([]byte, error) {
	return b.tx.db.seal.open(b.name, key, sealed)
}

// OpenTo is Open appending the plain value to dst: for a value read with
// Peek on a hot path, opened into a buffer the caller reuses.
func (b *Bucket) OpenTo(dst, key, sealed []byte) ([]byte, error) {
	return b.tx.db.seal.openTo(dst, b.name, key, sealed)
}

// Delete removes key. Deleting an absent key is not an error.
func (b *Bucket) Delete(key []byte) error {
	if err := b.check(true); err != nil {
		return err
	}
	return b.b.Delete(key)
}

// ForEach calls fn for every key starting with prefix, in key order, until fn
// returns an error. k and v are valid only during the call. fn must not
// write to this bucket; collect keys and write after.
func (b *Bucket) ForEach(prefix []byte, fn func(k, v []byte) error) error {
	if err := b.check(false); err != nil {
		return err
	}
	c := b.b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Range calls fn for every key k with after < k < before, in key order,
// until fn returns an error or stop is true; a nil bound is open. k and v
// are valid only during the call, and fn must not write to this bucket.
func (b *Bucket) Range(after, before []byte, fn func(k, v []byte) (stop bool, err error)) error {
	if err := b.check(false); err != nil {
		return err
	}
	c := b.b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	for ; k != nil && (before == nil || bytes.Compare(k, before) < 0); k, v = c.Next() {
		if stop, err := fn(k, v); stop || err != nil {
			return err
		}
	}
	return nil
}

// NextSequence returns the bucket's next unique sequence number; it never
// goes back, even after deletes.
func (b *Bucket) NextSequence() (uint64, error) {
	if err := b.check(true); err != nil {
		return 0, err
	}
	return b.b.NextSequence()
}

// ClearBucket empties the named bucket (one of the agent's) in this
// transaction: bbolt frees its pages at once, whatever its size.
func (tx *Tx) ClearBucket(name string) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if tx.bucket(name) == nil {
		return fmt.Errorf("bucket %s: %w", name, ErrUnknownBucket)
	}
	if err := tx.btx.DeleteBucket([]byte(name)); err != nil {
		return err
	}
	_, err := tx.btx.CreateBucket([]byte(name))
	return err
}

// MetaUint reads a small counter or cursor. Absent reads as zero.
func (tx *Tx) MetaUint(name string) uint64 {
	v := tx.bucket(bucketMeta).Get([]byte(name))
	if len(v) != 8 {
		return 0
	}
	return keyU64(v)
}

// SetMetaUint stores a small counter or cursor. Names starting with "store."
// are the store's own.
func (tx *Tx) SetMetaUint(name string, v uint64) error {
	if !tx.writable {
		return ErrReadOnly
	}
	return tx.bucket(bucketMeta).Put([]byte(name), u64key(v))
}

const metaCompactDue = "store.compact_due_ms"

// MarkForCompaction records that personal data was deleted in this
// transaction, so its bytes must leave the file by a compaction. The first
// mark since the last compaction sets the time the deletion happened.
func (tx *Tx) MarkForCompaction() error {
	if tx.MetaUint(metaCompactDue) != 0 {
		return nil
	}
	return tx.SetMetaUint(metaCompactDue, uint64(tx.db.nowMs()))
}

// CompactionDue returns when personal data was first deleted since the last
// compaction, in ms since the epoch, or zero when there is nothing to purge.
func (db *DB) CompactionDue() (int64, error) {
	var due uint64
	err := db.View(func(tx *Tx) error { due = tx.MetaUint(metaCompactDue); return nil })
	return int64(due), err
}

// Dump calls fn for every record of every bucket, sealed values opened (a
// value that does not open is passed as stored; an outbox record is passed
// as its subject followed by its opened payload). It reads the whole file in
// one transaction: for tests that prove what is gone, and for support
// tools, never for a hot path. fn must not keep k or v.
func (db *DB) Dump(fn func(bucket string, k, v []byte) error) error {
	return db.View(func(tx *Tx) error {
		return tx.btx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if isOutboxBucket(name) {
					if r, err := tx.decode(k, v, true); err == nil {
						v = append(r.Subject, r.Payload...)
					}
				} else if plain, err := db.seal.open(string(name), k, v); err == nil {
					v = plain
				}
				return fn(string(name), k, v)
			})
		})
	})
}
