package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. The first group is the store's own; the second belongs to
// package agent, which gives the records their meaning.
const (
	bucketMeta       = "meta"
	bucketOutbox     = "outbox"      // seq -> outbox envelope
	bucketOutboxTel  = "outbox_tel"  // seq -> uvarint(size): telemetry, for shedding oldest-first
	bucketOutboxSubj = "outbox_subj" // len(subject) subject seq -> empty: the records of one subject
	bucketAudit      = "audit"       // seq -> audit entry
	bucketQuarantine = "quarantine"  // bucket 0x00 key -> value moved aside as corrupt
	bucketLoading    = "loading"     // scratch runs of a bulk Loader

	BucketPending = "pending" // events held until a customer's consent is decided
	BucketRights  = "rights"  // rights requests, without PII
	BucketState   = "state"   // the agent's small records (the policy)

	// The profile cache comes in two generations (see CacheBucket), so a
	// snapshot can be built beside the live cache and switched in one
	// transaction.
	BucketProfiles = "profiles" // profile key -> sealed profile record, or where it is (agent's homeTag)
	BucketIdents   = "idents"   // keyed hash of an identifier -> profile key, or the sealed record it is home to
	BucketExpiry   = "expiry"   // expiry time, profile key -> empty
)

// CacheBucket names generation gen (0 or 1, taken mod 2) of a cache bucket.
// The names of the agent's three are made once: Identify asks for two on
// every scan.
func CacheBucket(base string, gen uint64) string {
	if names, ok := cacheBuckets[base]; ok {
		return names[gen%2]
	}
	return fmt.Sprintf("%s.%d", base, gen%2)
}

var cacheBuckets = map[string][2]string{
	BucketProfiles: {BucketProfiles + ".0", BucketProfiles + ".1"},
	BucketIdents:   {BucketIdents + ".0", BucketIdents + ".1"},
	BucketExpiry:   {BucketExpiry + ".0", BucketExpiry + ".1"},
}

// SchemaVersion is the schema this build writes.
const SchemaVersion = 3

const metaSchema = "store.schema"

// migration moves a file from schema to-1 to schema to. Each runs in its own
// write transaction together with the version bump, so a crash leaves the
// file at one version or the next, never between.
type migration struct {
	to   uint64
	name string
	fn   func(*bolt.Tx) error
}

// migrations is the ordered list of every schema step. Append, never edit a
// released step: files in the field have already run it.
var migrations = []migration{
	{to: 1, name: "create buckets", fn: createBuckets(
		bucketMeta, bucketOutbox, bucketOutboxTel, bucketOutboxSubj, bucketAudit, bucketQuarantine,
		BucketPending, BucketRights, BucketState,
		CacheBucket(BucketProfiles, 0), CacheBucket(BucketIdents, 0), CacheBucket(BucketExpiry, 0),
		CacheBucket(BucketProfiles, 1), CacheBucket(BucketIdents, 1), CacheBucket(BucketExpiry, 1),
	)},
	{to: 2, name: "create the bulk loader's scratch bucket", fn: createBuckets(bucketLoading)},
	// New outbox records go into segment buckets (outbox_segments.go); the
	// records already in "outbox" stay there and are read first. Nothing
	// moves, but a build that knows no segments must not open the file:
	// it would take a queue of segments for an empty outbox.
	{to: 3, name: "outbox in segments", fn: func(*bolt.Tx) error { return nil }},
}

func createBuckets(names ...string) func(*bolt.Tx) error {
	return func(btx *bolt.Tx) error {
		for _, n := range names {
			if _, err := btx.CreateBucketIfNotExists([]byte(n)); err != nil {
				return fmt.Errorf("create bucket %s: %w", n, err)
			}
		}
		return nil
	}
}

// latest is the version the migration list leads to.
func latest() uint64 { return migrations[len(migrations)-1].to }

func schemaOf(btx *bolt.Tx) uint64 {
	b := btx.Bucket([]byte(bucketMeta))
	if b == nil {
		return 0
	}
	v := b.Get([]byte(metaSchema))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func setSchema(btx *bolt.Tx, v uint64) error {
	b, err := btx.CreateBucketIfNotExists([]byte(bucketMeta))
	if err != nil {
		return err
	}
	return b.Put([]byte(metaSchema), u64key(v))
}

func migrate(bdb *bolt.DB, path string, log *slog.Logger) error {
	var have uint64
	if err := bdb.View(func(btx *bolt.Tx) error { have = schemaOf(btx); return nil }); err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if have > latest() {
		return &SchemaError{Path: path, Have: have, Want: latest(), Err: ErrNewerSchema}
	}
	for _, m := range migrations {
		if m.to <= have {
			continue
		}
		err := bdb.Update(func(btx *bolt.Tx) error {
			if err := m.fn(btx); err != nil {
				return err
			}
			return setSchema(btx, m.to)
		})
		if err != nil {
			return fmt.Errorf("open store %s: migrate to schema %d (%s): %w", path, m.to, m.name, err)
		}
		log.Info("store migrated", "component", "store", "schema", m.to, "step", m.name)
	}
	return nil
}

func checkSchemaReadOnly(bdb *bolt.DB, path string) error {
	var have uint64
	if err := bdb.View(func(btx *bolt.Tx) error { have = schemaOf(btx); return nil }); err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	switch {
	case have > latest():
		return &SchemaError{Path: path, Have: have, Want: latest(), Err: ErrNewerSchema}
	case have < latest():
		return &SchemaError{Path: path, Have: have, Want: latest(), Err: ErrOlderSchema}
	}
	return nil
}

func u64key(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func keyU64(k []byte) uint64 { return binary.BigEndian.Uint64(k) }
