package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure Open. The zero value of every field but Key is usable.
type Options struct {
	// Key is the 32-byte AES-256-GCM key that seals personal data at rest.
	// Required. Load it with LoadKeyFile.
	Key []byte

	// LockTimeout bounds the wait for the file lock. bbolt waits forever when
	// its timeout is zero, which would hang a second daemon or a CLI behind a
	// stuck process; we never want that. Default 2s for Open; OpenReadOnly
	// uses 100ms unless set, because a CLI should ask the daemon instead.
	LockTimeout time.Duration

	// InitialMmapSize is the address space mapped at open. bbolt remaps when
	// the file outgrows the mapping, and a remap waits for every open read
	// transaction; mapping ahead keeps identify reads from stalling behind
	// the outbox's growth. Default 128 MiB; keep it modest on 32-bit ARM.
	InitialMmapSize int

	// MaxFileBytes caps the database file; writes that would grow it further
	// fail. Zero means no cap beyond the outbox bounds.
	MaxFileBytes int

	// Outbox bounds the outbox.
	Outbox OutboxLimits

	// AuditMax is how many audit entries are kept; the oldest are pruned.
	// Default 100000.
	AuditMax uint64

	// Logger receives the store's few log lines (open, migrate, compact).
	// Default: discard.
	Logger *slog.Logger

	// Now is the clock for record times (outbox At, audit, compaction due).
	// Default time.Now; tests that move time give theirs.
	Now func() time.Time
}

// OutboxLimits bound the outbox by count and by bytes (key plus stored
// value). Telemetry may fill only up to Max minus Reserved; the reserved
// room is for critical records alone.
type OutboxLimits struct {
	MaxRecords      uint64 // default 1,000,000
	MaxBytes        uint64 // default 512 MiB
	ReservedRecords uint64 // default MaxRecords/10
	ReservedBytes   uint64 // default MaxBytes/10
	MaxEntryBytes   int    // largest payload accepted; default 64 KiB
}

func (o *Options) withDefaults(readOnly bool) Options {
	out := *o
	if out.LockTimeout <= 0 {
		out.LockTimeout = 2 * time.Second
		if readOnly {
			out.LockTimeout = 100 * time.Millisecond
		}
	}
	if out.InitialMmapSize <= 0 {
		out.InitialMmapSize = 128 << 20
	}
	if out.AuditMax == 0 {
		out.AuditMax = 100_000
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	out.Outbox = out.Outbox.withDefaults()
	return out
}

func (l OutboxLimits) withDefaults() OutboxLimits {
	if l.MaxRecords == 0 {
		l.MaxRecords = 1_000_000
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = 512 << 20
	}
	if l.ReservedRecords == 0 {
		l.ReservedRecords = l.MaxRecords / 10
	}
	if l.ReservedBytes == 0 {
		l.ReservedBytes = l.MaxBytes / 10
	}
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = 64 << 10
	}
	return l
}

// Validate reports the first limit that cannot work.
func (l OutboxLimits) Validate() error {
	switch {
	case l.ReservedRecords >= l.MaxRecords:
		return fmt.Errorf("outbox: reserved records %d must be below max records %d", l.ReservedRecords, l.MaxRecords)
	case l.ReservedBytes >= l.MaxBytes:
		return fmt.Errorf("outbox: reserved bytes %d must be below max bytes %d", l.ReservedBytes, l.MaxBytes)
	case uint64(l.MaxEntryBytes) > l.ReservedBytes:
		return fmt.Errorf("outbox: max entry bytes %d must fit in the reserved bytes %d", l.MaxEntryBytes, l.ReservedBytes)
	}
	return nil
}

// DB is an open store. Its methods are safe for concurrent use.
type DB struct {
	path     string
	opts     Options
	seal     *sealer
	log      *slog.Logger
	readOnly bool

	// mu guards bdb. Every transaction holds it shared; Compact and Close
	// hold it exclusively while they swap or close the file.
	mu  sync.RWMutex
	bdb *bolt.DB

	counters     atomic.Pointer[committedCounters] // the newest committed outbox counters
	afterCompact atomic.Pointer[func(*Tx)]         // see AfterCompact
	appended     chan struct{}                     // signalled after a commit that appended to the outbox

	appendc   chan *appendReq // to the committer; unbuffered, see Append
	closing   chan struct{}   // closed by Close to stop the committer
	committed chan struct{}   // closed when the committer has returned
	closeOnce sync.Once
}

// Open opens or creates the store at path for writing, migrating an older
// schema forward. Only one process may hold it open for writing.
func Open(path string, opts Options) (*DB, error) {
	return open(path, opts, false)
}

// OpenReadOnly opens the store for reading only, under bbolt's shared lock.
// It fails with ErrLocked when a daemon has the file open: ask the daemon.
func OpenReadOnly(path string, opts Options) (*DB, error) {
	return open(path, opts, true)
}

func open(path string, opts Options, readOnly bool) (*DB, error) {
	o := opts.withDefaults(readOnly)
	if err := o.Outbox.Validate(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s, err := newSealer(o.Key)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	bdb, err := bolt.Open(path, 0o600, boltOptions(o, readOnly))
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w (is storeagent running? a technician's CLI asks the daemon instead)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{path: path, opts: o, seal: s, log: o.Logger.With("component", "store"), readOnly: readOnly, bdb: bdb, appended: make(chan struct{}, 1)}
	if err := db.prepare(); err != nil {
		bdb.Close()
		return nil, err
	}
	if !readOnly {
		db.startCommitter()
	}
	return db, nil
}

// boltOptions chooses how bbolt opens the file, deliberately:
//   - Timeout: never wait forever for the lock (see Options.LockTimeout).
//   - FreelistTypeMap: the hashmap freelist allocates in O(1); the array one
//     degrades badly as the outbox churns and fragments the free pages.
//   - NoFreelistSync: the freelist is not written on every commit, so each
//     group commit writes fewer pages. The cost is a scan of the file at open
//     to rebuild it, which we accept (it is what etcd does).
//   - InitialMmapSize: see Options.InitialMmapSize.
//   - NoSync and NoGrowSync stay false: durability is the point.
func boltOptions(o Options, readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:         o.LockTimeout,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: o.InitialMmapSize,
		MaxSize:         o.MaxFileBytes,
		ReadOnly:        readOnly,
	}
}

// prepare checks or migrates the schema and loads the outbox counters.
func (db *DB) prepare() error {
	if db.readOnly {
		if err := checkSchemaReadOnly(db.bdb, db.path); err != nil {
			return err
		}
	} else if err := migrate(db.bdb, db.path, db.log); err != nil {
		return err
	}
	err := db.reloadCounters()
	if IsCorrupt(err) && !db.readOnly {
		db.log.Warn("outbox counters damaged; recounting", "err", err)
		return db.Update(func(tx *Tx) error { return tx.recount() })
	}
	return err
}

// Path is the file's path.
func (db *DB) Path() string { return db.path }

// ReadOnly reports whether the DB was opened with OpenReadOnly.
func (db *DB) ReadOnly() bool { return db.readOnly }

// Close stops accepting appends, commits those already queued, and closes
// the file, releasing its lock. It is safe to call more than once.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		if db.closing != nil {
			close(db.closing)
			<-db.committed
		}
		db.mu.Lock()
		defer db.mu.Unlock()
		if db.bdb != nil {
			err = db.bdb.Close()
			db.bdb = nil
		}
	})
	return err
}

// Update runs fn in one write transaction and commits it, fsynced, when fn
// returns nil. If fn returns an error nothing it wrote is kept.
func (db *DB) Update(fn func(*Tx) error) error {
	if db.readOnly {
		return ErrReadOnly
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bdb == nil {
		return ErrClosed
	}
	var tx *Tx
	var txid uint64 // read inside: bbolt forgets it at commit
	err := db.bdb.Update(func(btx *bolt.Tx) error {
		tx = &Tx{db: db, btx: btx, writable: true}
		txid = tx.ID()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.finish()
	})
	if err == nil && tx.counters != nil {
		db.publishCounters(txid, tx.counters)
	}
	if err == nil && tx.appended {
		select {
		case db.appended <- struct{}{}:
		default: // one signal pending is enough: the reader drains everything
		}
	}
	return err
}

// Appended signals after a commit that appended to the outbox. The signal
// is level-triggered and coalesced: one pending signal stands for any
// number of commits, so a reader drains everything queued when it fires.
// There is one channel: one reader (the uplink) should use it.
func (db *DB) Appended() <-chan struct{} { return db.appended }

// View runs fn in a read transaction. Keep it short (see Caveats).
func (db *DB) View(fn func(*Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bdb == nil {
		return ErrClosed
	}
	return db.bdb.View(func(btx *bolt.Tx) error {
		return fn(&Tx{db: db, btx: btx})
	})
}

// Check runs bbolt's consistency check over the whole file and returns every
// problem it finds, joined. It reads the file in one long read transaction;
// run it from the CLI or at start, not on a hot path.
func (db *DB) Check() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bdb == nil {
		return ErrClosed
	}
	return db.bdb.View(func(btx *bolt.Tx) error {
		var errs []error
		for err := range btx.Check() {
			errs = append(errs, err)
			if len(errs) >= 20 {
				errs = append(errs, errors.New("more problems not listed"))
				break
			}
		}
		return errors.Join(errs...)
	})
}

// FileSize is the size of the database file in bytes.
func (db *DB) FileSize() (int64, error) {
	fi, err := os.Stat(db.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (db *DB) nowMs() int64 { return db.opts.Now().UnixMilli() }

// committedCounters are the outbox counters as a commit left them.
type committedCounters struct {
	txid uint64 // the transaction that committed them
	c    *outboxCounters
}

// publishCounters makes c, committed by transaction txid, what
// QueuedRecords reads, unless a later commit's are there already: two
// writers return from their commits in either order, and the counters of
// the earlier one must not overwrite those of the later (a drain's delete
// returning after an append would show an outbox empty that is not).
func (db *DB) publishCounters(txid uint64, c *outboxCounters) {
	next := &committedCounters{txid: txid, c: c}
	for {
		cur := db.counters.Load()
		if cur != nil && cur.txid > txid {
			return
		}
		if db.counters.CompareAndSwap(cur, next) {
			return
		}
	}
}

// reloadCounters reads the counters the file holds, as at open and after a
// compaction (whose new file numbers its transactions afresh).
func (db *DB) reloadCounters() error {
	return db.bdb.View(func(btx *bolt.Tx) error {
		c, err := loadCounters(btx)
		if err != nil {
			return err
		}
		db.counters.Store(&committedCounters{txid: uint64(btx.ID()), c: c})
		return nil
	})
}
