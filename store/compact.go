package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CompactResult says what a compaction did.
type CompactResult struct {
	Before int64         `json:"before"` // file size before, bytes
	After  int64         `json:"after"`  // file size after, bytes
	Keys   uint64        `json:"keys"`   // records copied
	Took   time.Duration `json:"took"`
}

// compactTxBytes bounds one copy transaction, so compacting a large file
// does not hold every dirty page in memory at once.
const compactTxBytes = 32 << 20

// Compact rewrites the live records into a fresh file beside the store and
// renames it over the old one. Deleted and overwritten records leave no
// bytes behind: this is how an erasure leaves the disk (invariant 5).
//
//  1. Writers and readers wait while it runs (appenders queue and are served
//     after); on a small box expect about a second per 100 MB of live data.
//  2. progress, if not nil, is called with records copied and the total.
//  3. On any error before the rename, the old file stays in place, open and
//     untouched, and the partial copy is removed. Cancelling ctx is such an
//     error.
func (db *DB) Compact(ctx context.Context, progress func(done, total uint64)) (CompactResult, error) {
	if db.readOnly {
		return CompactResult{}, ErrReadOnly
	}
	start := time.Now()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bdb == nil {
		return CompactResult{}, ErrClosed
	}
	res := CompactResult{}
	res.Before, _ = db.FileSize()
	tmp := db.path + ".compact"
	os.Remove(tmp)
	keys, err := db.copyTo(ctx, tmp, progress)
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", db.path, err)
	}
	res.Keys = keys
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("compact %s: %w", db.path, err)
	}
	if err := db.swap(tmp); err != nil {
		return res, fmt.Errorf("compact %s: %w", db.path, err)
	}
	if fn := db.afterCompact.Load(); fn != nil {
		err := db.bdb.View(func(btx *bolt.Tx) error { (*fn)(&Tx{db: db, btx: btx}); return nil })
		if err != nil {
			return res, fmt.Errorf("compact %s: %w", db.path, err)
		}
	}
	res.After, _ = db.FileSize()
	res.Took = time.Since(start)
	db.log.Info("store compacted", "before", res.Before, "after", res.After, "records", res.Keys, "took", res.Took)
	return res, nil
}

// AfterCompact sets fn to be called after each compaction, in a read
// transaction on the new file, before any other transaction can begin:
// for a caller that keeps something tied to the file's transaction ids,
// which start again in the new file.
func (db *DB) AfterCompact(fn func(*Tx)) { db.afterCompact.Store(&fn) }

// copyTo writes every bucket, with its sequence, into a new file at dst.
// The copy is not fsynced per transaction; one sync at the end makes it
// durable before it can replace the original.
func (db *DB) copyTo(ctx context.Context, dst string, progress func(done, total uint64)) (uint64, error) {
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, err
	}
	var copied uint64
	err = db.bdb.View(func(src *bolt.Tx) error {
		total := countKeys(src)
		cp := &copier{ctx: ctx, dst: out, total: total, progress: progress}
		err := src.ForEach(func(name []byte, b *bolt.Bucket) error { return cp.bucket(name, b) })
		if err == nil {
			err = cp.commit()
		} else if cp.tx != nil {
			cp.tx.Rollback()
		}
		copied = cp.done
		return err
	})
	if err == nil {
		err = out.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaCompactDue), u64key(0))
		})
	}
	if err == nil {
		err = out.Sync()
	}
	return copied, errors.Join(err, out.Close())
}

func countKeys(src *bolt.Tx) uint64 {
	var n uint64
	src.ForEach(func(_ []byte, b *bolt.Bucket) error {
		n += uint64(b.Stats().KeyN)
		return nil
	})
	return n
}

type copier struct {
	ctx      context.Context
	dst      *bolt.DB
	tx       *bolt.Tx
	size     int
	done     uint64
	total    uint64
	progress func(done, total uint64)
}

func (c *copier) bucket(name []byte, src *bolt.Bucket) error {
	if err := c.begin(); err != nil {
		return err
	}
	b, err := c.tx.CreateBucket(name)
	if err != nil {
		return err
	}
	if err := b.SetSequence(src.Sequence()); err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("bucket %s: nested buckets are not part of the schema", name)
		}
		return c.put(name, k, v)
	})
}

func (c *copier) put(name, k, v []byte) error {
	if c.size > compactTxBytes {
		if err := c.commit(); err != nil {
			return err
		}
		if err := c.begin(); err != nil {
			return err
		}
	}
	b := c.tx.Bucket(name)
	b.FillPercent = 1.0
	if err := b.Put(k, v); err != nil {
		return err
	}
	c.size += len(k) + len(v)
	c.done++
	if c.done%4096 == 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if c.progress != nil {
			c.progress(c.done, c.total)
		}
	}
	return nil
}

func (c *copier) begin() error {
	if c.tx != nil {
		return nil
	}
	tx, err := c.dst.Begin(true)
	c.tx, c.size = tx, 0
	return err
}

func (c *copier) commit() error {
	if c.tx == nil {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		c.tx.Rollback()
		c.tx = nil
		return err
	}
	err := c.tx.Commit()
	c.tx = nil
	if err == nil && c.progress != nil {
		c.progress(c.done, c.total)
	}
	return err
}

// swap closes the current file, renames tmp over it, makes the rename
// durable, and reopens. If the rename fails the old file is reopened.
func (db *DB) swap(tmp string) error {
	if err := db.bdb.Close(); err != nil {
		return err
	}
	db.bdb = nil
	renameErr := os.Rename(tmp, db.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(db.path))
	} else {
		os.Remove(tmp)
	}
	bdb, err := bolt.Open(db.path, 0o600, boltOptions(db.opts, false))
	if err != nil {
		return errors.Join(renameErr, fmt.Errorf("reopen after compaction: %w", err))
	}
	db.bdb = bdb
	return errors.Join(renameErr, db.reloadCounters())
}

// syncDir makes a rename in dir durable. Windows cannot fsync a directory;
// there MoveFileEx, which os.Rename uses, is durable on its own.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
