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
