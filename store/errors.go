package store

import (
	"errors"
	"fmt"
)

var (
	// ErrOutboxFull is returned by Append when the outbox is at its bounds and
	// no telemetry is left to shed to make room for the new record. Nothing
	// already stored is touched. The caller reports it (HTTP 503, a counted
	// rejection) and may retry once the link drains the outbox.
	ErrOutboxFull = errors.New("outbox full")

	// ErrRecordTooLarge is returned when an entry exceeds
	// OutboxLimits.MaxEntryBytes, or a subject or label exceeds 255 bytes.
	ErrRecordTooLarge = errors.New("record too large")

	// ErrNewerSchema is returned by Open when the file was written by a newer
	// version of the agent than this one. The file is left untouched.
	ErrNewerSchema = errors.New("store written by a newer schema")

	// ErrOlderSchema is returned by OpenReadOnly when the file needs a
	// migration that only a writable open (the daemon) may run.
	ErrOlderSchema = errors.New("store needs a migration")

	// ErrLocked is returned when another process holds the file's lock past
	// Options.LockTimeout: a running daemon for OpenReadOnly, a second daemon
	// or a CLI in the middle of a read for Open.
	ErrLocked = errors.New("store is locked by another process")

	// ErrReadOnly is returned by writes on a DB opened with OpenReadOnly.
	ErrReadOnly = errors.New("store opened read-only")

	// ErrClosed is returned by calls on a closed DB.
	ErrClosed = errors.New("store closed")

	// ErrCorrupt is returned (wrapped in a *CorruptError) when a stored record
	// does not decode or its seal does not open.
	ErrCorrupt = errors.New("corrupt record")

	// ErrKeyFileMode is returned (wrapped in a *KeyFileError) by LoadKeyFile
	// when the key file can be read by anyone but its owner.
	ErrKeyFileMode = errors.New("key file permissions too open")

	// ErrBadKey is returned when a key file does not hold a 32-byte key.
	ErrBadKey = errors.New("key must be 32 bytes")

	// ErrUnknownBucket is returned by Bucket methods when the named bucket is
	// not part of the schema.
	ErrUnknownBucket = errors.New("unknown bucket")
)

// CorruptError says which record failed to decode. It never holds the
// record's content.
type CorruptError struct {
	Bucket string
	Key    []byte
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt record in bucket %s key %x: %v", e.Bucket, e.Key, e.Err)
}

// Unwrap lets errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// IsCorrupt reports whether err says a stored record is corrupt.
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }

// KeyFileError says what is wrong with a key file and how to fix it.
type KeyFileError struct {
	Path string
	Err  error
	Hint string
}

func (e *KeyFileError) Error() string {
	msg := fmt.Sprintf("key file %s: %v", e.Path, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// SchemaError says which schema a file has and which this build knows.
type SchemaError struct {
	Path string
	Have uint64 // the file's schema version
	Want uint64 // this build's schema version
	Err  error  // ErrNewerSchema or ErrOlderSchema
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("open store %s: %v: file has schema %d, this build has %d", e.Path, e.Err, e.Have, e.Want)
}

func (e *SchemaError) Unwrap() error { return e.Err }
