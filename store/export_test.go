package store

import bolt "go.etcd.io/bbolt"

// SetMigrationsForTest appends test-only schema steps after the real ones
// and returns a function that restores the list.
func SetMigrationsForTest(extra ...func(tx *Tx) error) (restore func()) {
	saved := migrations
	next := latest()
	for i, fn := range extra {
		fn := fn
		migrations = append(migrations[:len(migrations):len(migrations)], migration{
			to:   next + uint64(i) + 1,
			name: "test step",
			fn:   func(btx *bolt.Tx) error { return fn(&Tx{btx: btx, writable: true}) },
		})
	}
	return func() { migrations = saved }
}

// LatestSchema is the schema version the current migration list leads to.
func LatestSchema() uint64 { return latest() }

// SetLoadLimitsForTest shrinks a Loader's run buffer and merge transaction
// so a small test makes many runs; it returns a function that restores them.
func SetLoadLimitsForTest(run, tx int) (restore func()) {
	r, b, t := loadRunBytes, loadBlockBytes, loadTxBytes
	loadRunBytes, loadBlockBytes, loadTxBytes = run, max(run/4, 64), tx
	return func() { loadRunBytes, loadBlockBytes, loadTxBytes = r, b, t }
}

// ScratchEntries counts what bulk loaders left in their scratch bucket.
func ScratchEntries(db *DB) (n int, err error) {
	err = db.View(func(tx *Tx) error {
		n = tx.bucket(bucketLoading).Stats().KeyN
		return nil
	})
	return n, err
}

// OutboxSegmentsForTest lists the outbox's segments, in order.
func (db *DB) OutboxSegmentsForTest() []uint64 {
	var segs []uint64
	db.View(func(tx *Tx) error { segs = tx.segmentsIn(records, 0, ^uint64(0)); return nil })
	return segs
}

// TelSegmentsForTest lists the telemetry index's segments, in order.
func (db *DB) TelSegmentsForTest() []uint64 {
	var segs []uint64
	db.View(func(tx *Tx) error { segs = tx.segmentsIn(telIndex, 0, ^uint64(0)); return nil })
	return segs
}
