package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/storeagent/storeagent/store/cborhead"

	bolt "go.etcd.io/bbolt"
)

// Class is an outbox record's priority class.
type Class uint8

const (
	// Critical records (purchases, consent changes, rights requests) are
	// never shed and may use the reserved room.
	Critical Class = 1
	// Telemetry records (sightings, page views) are shed oldest-first when
	// the outbox is full.
	Telemetry Class = 2
)

func (c Class) String() string {
	switch c {
	case Critical:
		return "critical"
	case Telemetry:
		return "telemetry"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// maxTag bounds subjects and labels: they are index keys, not payload.
const maxTag = 255

// Entry is what a caller appends to the outbox.
type Entry struct {
	Class Class
	// At is when the event happened, ms since the epoch. Zero means now.
	At int64
	// Subject links the entry to a data subject (an opaque keyed tag the
	// caller chooses, never a clear identifier) so that an erasure or a
	// withdrawal can find the subject's queued entries. Nil for none.
	Subject []byte
	// Label is an opaque tag the caller filters on (package agent puts the
	// purpose there). The store never interprets it.
	Label string
	// Payload is sealed at rest.
	Payload []byte
}

// Record is an entry as stored, with its sequence number.
type Record struct {
	Seq uint64
	Entry
}

// envelope is the stored form of an entry. Integer keys keep it small: it
// is written once per event.
type envelope struct {
	V       uint8  `cbor:"0,keyasint"`
	Class   Class  `cbor:"1,keyasint"`
	At      int64  `cbor:"2,keyasint"`
	Subject []byte `cbor:"3,keyasint,omitempty"`
	Label   string `cbor:"4,keyasint,omitempty"`
	Sealed  []byte `cbor:"5,keyasint"`
}

const envelopeV1 = 1

// outboxCounters are the outbox's totals, kept in the meta bucket and updated
// in the same transaction as every change, so they survive crashes exactly.
type outboxCounters struct {
	V         uint8  `cbor:"0,keyasint"`
	CritRecs  uint64 `cbor:"1,keyasint"`
	CritBytes uint64 `cbor:"2,keyasint"`
	TelRecs   uint64 `cbor:"3,keyasint"`
	TelBytes  uint64 `cbor:"4,keyasint"`
	Shed      uint64 `cbor:"5,keyasint"` // telemetry records shed to make room
	Rejected  uint64 `cbor:"6,keyasint"` // appends refused with ErrOutboxFull
}

const metaCounters = "store.outbox_counters"

func loadCounters(btx *bolt.Tx) (*outboxCounters, error) {
	c := &outboxCounters{V: 1}
	v := btx.Bucket([]byte(bucketMeta)).Get([]byte(metaCounters))
	if v == nil {
		return c, nil
	}
	if err := UnmarshalRecord(bucketMeta, []byte(metaCounters), v, c); err != nil {
		return nil, err
	}
	return c, nil
}

func saveCounters(btx *bolt.Tx, c *outboxCounters) error {
	b, err := MarshalRecord(c)
	if err != nil {
		return err
	}
	return btx.Bucket([]byte(bucketMeta)).Put([]byte(metaCounters), b)
}

// outboxCounters returns the transaction's working copy of the counters.
func (tx *Tx) outboxCounters() (*outboxCounters, error) {
	if tx.counters == nil {
		c, err := loadCounters(tx.btx)
		if err != nil {
			return nil, err
		}
		tx.counters = c
	}
	return tx.counters, nil
}

func (c *outboxCounters) add(class Class, size uint64, sign int) {
	recs, byts := &c.TelRecs, &c.TelBytes
	if class == Critical {
		recs, byts = &c.CritRecs, &c.CritBytes
	}
	if sign > 0 {
		*recs++
		*byts += size
		return
	}
	*recs = sat(*recs, 1)
	*byts = sat(*byts, size)
}

func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func (e *Entry) validate(max int) error {
	switch {
	case e.Class != Critical && e.Class != Telemetry:
		return fmt.Errorf("outbox entry: unknown class %d", e.Class)
	case len(e.Payload) > max:
		return fmt.Errorf("outbox entry of %d bytes, limit %d: %w", len(e.Payload), max, ErrRecordTooLarge)
	case len(e.Subject) > maxTag || len(e.Label) > maxTag:
		return fmt.Errorf("outbox entry subject or label over %d bytes: %w", maxTag, ErrRecordTooLarge)
	}
	return nil
}

// encode seals the payload under the record's key and returns the stored
// value.
func (tx *Tx) encode(seq uint64, e Entry) ([]byte, error) {
	sealed, err := tx.db.seal.seal(bucketOutbox, u64key(seq), e.Payload)
	if err != nil {
		return nil, err
	}
	return MarshalRecord(envelope{V: envelopeV1, Class: e.Class, At: e.At, Subject: e.Subject, Label: e.Label, Sealed: sealed})
}

func (tx *Tx) decode(k, v []byte, open bool) (Record, error) {
	env, err := readEnvelope(k, v)
	if err != nil {
		return Record{}, err
	}
	r := record(k, env)
	if open {
		p, err := tx.db.seal.open(bucketOutbox, k, env.Sealed)
		if err != nil {
			return Record{}, err
		}
		r.Payload = p
	}
	return r, nil
}

// openAppend is decode, for the envelope env of key k, with the payload
// opened onto the end of buf. It returns the record, whose Payload is the
// tail of the returned buffer (its capacity ends with it: appending to it
// never writes into a later payload), and the buffer.
func (tx *Tx) openAppend(buf, k []byte, env envelope) (Record, []byte, error) {
	r := record(k, env)
	// Grow as append does (the sealer would grow it to the exact size, a
	// copy of the whole buffer for each record past its capacity).
	buf = slices.Grow(buf, len(env.Sealed))
	start := len(buf)
	out, err := tx.db.seal.openTo(buf, bucketOutbox, k, env.Sealed)
	if err != nil {
		return Record{}, buf, err
	}
	r.Payload = out[start:len(out):len(out)]
	return r, out, nil
}

// record is the record of key k and envelope env, without its payload.
func record(k []byte, env envelope) Record {
	r := Record{Seq: keyU64(k), Entry: Entry{Class: env.Class, At: env.At, Label: env.Label}}
	if len(env.Subject) > 0 {
		// It may point into the page: the record outlives the transaction.
		r.Subject = bytes.Clone(env.Subject)
	}
	return r
}

// readEnvelope decodes the stored value v of key k and checks its version
// and class. Its Subject and Sealed may point into v: they are valid only
// as long as v is (the transaction), and must not be written to.
func readEnvelope(k, v []byte) (envelope, error) {
	env, ok := parseEnvelope(v)
	if !ok {
		// Anything the fast reader does not take, the strict decoder
		// judges: it accepts the same records, and names the damage.
		var err error
		if env, err = strictEnvelope(k, v); err != nil {
			return envelope{}, err
		}
	}
	if env.V != envelopeV1 || (env.Class != Critical && env.Class != Telemetry) {
		return envelope{}, &CorruptError{Bucket: bucketOutbox, Key: k, Err: fmt.Errorf("envelope v%d class %d", env.V, env.Class)}
	}
	return env, nil
}

// strictEnvelope decodes v with the general decoder. It is apart from
// readEnvelope so that only this path pays for the envelope escaping to the
// heap (inlined, it would take the caller's envelope with it).
//
//go:noinline
func strictEnvelope(k, v []byte) (envelope, error) {
	var env envelope
	err := UnmarshalRecord(bucketOutbox, k, v, &env)
	return env, err
}

// parseEnvelope reads an envelope as encode writes it (a map of its integer
// keys in ascending order, each once), in place, without the reflection
// and the copies of the general decoder: a drain reads and deletes every
// record once, and that decode was a fifth of its CPU. It reports false
// for anything else, well-formed or not, for the strict decoder to judge;
// what it accepts, that decoder accepts with the same values
// (FuzzParseEnvelope holds it to that).
func parseEnvelope(v []byte) (envelope, bool) { return scanEnvelope(v, false) }

// envelopeHead reads what a delete needs of an envelope, its class and
// subject, and stops before the label and the sealed payload: a drain
// deletes every record it sent, and the full read was a tenth of the
// deletes. It reports false for what readEnvelope would refuse or has to
// judge; what parseEnvelope takes, it takes with the same class and
// subject.
func envelopeHead(v []byte) (Class, []byte, bool) {
	env, ok := scanEnvelope(v, true)
	return env.Class, env.Subject, ok && env.V == envelopeV1 && (env.Class == Critical || env.Class == Telemetry)
}

// scanEnvelope is parseEnvelope; with head set it stops at the label
// (key 4) or the sealed payload (key 5), and leaves them and what follows
// unread.
func scanEnvelope(v []byte, head bool) (env envelope, ok bool) {
	major, n, v, ok := cborhead.Read(v)
	if !ok || major != 5 || n > 6 {
		return envelope{}, false
	}
	last := -1
	for range n {
		var key uint64
		if major, key, v, ok = cborhead.Read(v); !ok || major != 0 || int(key) <= last || key > 5 {
			return envelope{}, false
		}
		if head && key >= 4 {
			return env, true
		}
		last = int(key)
		var val uint64
		if major, val, v, ok = cborhead.Read(v); !ok {
			return envelope{}, false
		}
		switch {
		case key == 0 && major == 0 && val <= 0xff:
			env.V = uint8(val)
		case key == 1 && major == 0 && val <= 0xff:
			env.Class = Class(val)
		case key == 2 && (major == 0 || major == 1) && val <= math.MaxInt64:
			env.At = int64(val)
			if major == 1 {
				env.At = -1 - int64(val)
			}
		case (key == 3 || key == 5) && major == 2 && val <= uint64(len(v)):
			if key == 3 {
				env.Subject = v[:val:val]
			} else {
				env.Sealed = v[:val:val]
			}
			v = v[val:]
		case key == 4 && major == 3 && val <= uint64(len(v)) && utf8.Valid(v[:val]):
			env.Label = string(v[:val])
			v = v[val:]
		default:
			return envelope{}, false
		}
	}
	return env, head || len(v) == 0
}

// storedSize is what a record costs against the byte bound.
func storedSize(val []byte) uint64 { return uint64(8 + len(val)) }

// AppendOutbox appends e in this transaction and returns its sequence
// number. It is durable when the transaction commits. Use it where the
// append must be atomic with other writes (a receipt for an applied change);
// otherwise DB.Append shares commits with other appenders and is faster.
func (tx *Tx) AppendOutbox(e Entry) (uint64, error) {
	if !tx.writable {
		return 0, ErrReadOnly
	}
	if err := e.validate(tx.db.opts.Outbox.MaxEntryBytes); err != nil {
		return 0, err
	}
	if e.At == 0 {
		e.At = tx.db.nowMs()
	}
	ob := tx.bucket(bucketOutbox)
	// Sequences are assigned before admission so the sealed value can be
	// bound to its key; a refused append leaves a harmless hole.
	seq, err := ob.NextSequence()
	if err != nil {
		return 0, err
	}
	val, err := tx.encode(seq, e)
	if err != nil {
		return 0, err
	}
	size := storedSize(val)
	if err := tx.admit(e.Class, size); err != nil {
		return 0, err
	}
	return seq, tx.putOutbox(seq, e, val, size)
}

func (tx *Tx) putOutbox(seq uint64, e Entry, val []byte, size uint64) error {
	ob, err := tx.segment(records, segmentOf(seq), true)
	if err != nil {
		return err
	}
	ob.FillPercent = 1.0 // keys only ever grow: pack pages full
	key := u64key(seq)
	if err := ob.Put(key, val); err != nil {
		return err
	}
	if e.Class == Telemetry {
		tb, err := tx.segment(telIndex, segmentOf(seq), true)
		if err != nil {
			return err
		}
		tb.FillPercent = 1.0
		if err := tb.Put(key, binary.AppendUvarint(nil, size)); err != nil {
			return err
		}
	}
	if len(e.Subject) > 0 {
		if err := tx.bucket(bucketOutboxSubj).Put(subjKey(e.Subject, seq), nil); err != nil {
			return err
		}
	}
	c, err := tx.outboxCounters()
	if err != nil {
		return err
	}
	c.add(e.Class, size, +1)
	tx.appended = true
	return nil
}

func subjKey(subject []byte, seq uint64) []byte {
	k := make([]byte, 0, 1+len(subject)+8)
	k = append(k, byte(len(subject)))
	k = append(k, subject...)
	return append(k, u64key(seq)...)
}

// admit makes room for a record of class and size, shedding the oldest
// telemetry if that is enough, or fails with ErrOutboxFull having shed
// nothing.
func (tx *Tx) admit(class Class, size uint64) error {
	c, err := tx.outboxCounters()
	if err != nil {
		return err
	}
	lim := tx.db.opts.Outbox
	maxRecs, maxBytes := lim.MaxRecords, lim.MaxBytes
	if class == Telemetry {
		maxRecs, maxBytes = maxRecs-lim.ReservedRecords, maxBytes-lim.ReservedBytes
	}
	recs, byts := c.CritRecs+c.TelRecs+1, c.CritBytes+c.TelBytes+size
	if recs <= maxRecs && byts <= maxBytes {
		return nil
	}
	// Would shedding every telemetry record be enough? If not, refuse now.
	if c.CritRecs+1 > maxRecs || c.CritBytes+size > maxBytes {
		c.Rejected++
		return fmt.Errorf("append %s record: %w", class, ErrOutboxFull)
	}
	return tx.shed(sat(recs, maxRecs), sat(byts, maxBytes))
}

// shed deletes the oldest telemetry until at least recs records and byts
// bytes are free.
func (tx *Tx) shed(recs, byts uint64) error {
	c, _ := tx.outboxCounters()
	var seqs []uint64
	tx.parts(telIndex, 0, func(b *bolt.Bucket) (bool, error) {
		cur := b.Cursor()
		for k, v := cur.First(); k != nil && (recs > 0 || byts > 0); k, v = cur.Next() {
			size, _ := binary.Uvarint(v)
			seqs = append(seqs, keyU64(k))
			recs = sat(recs, 1)
			byts = sat(byts, size)
		}
		return recs > 0 || byts > 0, nil
	})
	for _, seq := range seqs {
		if _, err := tx.deleteOutbox(seq); err != nil {
			return err
		}
		c.Shed++
	}
	return nil
}

// deleteOutbox removes one record and its index entries, as a range of
// one. It reports whether the record existed.
func (tx *Tx) deleteOutbox(seq uint64) (bool, error) {
	n, err := tx.deleteOutboxRange(seq, seq)
	return n == 1, err
}

// DeleteOutbox removes the record seq, if present, with its index entries.
func (tx *Tx) DeleteOutbox(seq uint64) error {
	if !tx.writable {
		return ErrReadOnly
	}
	_, err := tx.deleteOutbox(seq)
	return err
}

// OutboxRecord returns the record seq, opened, and whether it exists.
func (tx *Tx) OutboxRecord(seq uint64) (Record, bool, error) {
	v := tx.outboxGet(seq)
	if v == nil {
		return Record{}, false, nil
	}
	r, err := tx.decode(u64key(seq), v, true)
	return r, err == nil, err
}

// ReplaceOutbox rewrites the record seq in place: same sequence number and
// class, new subject, label and payload. Use it to strip identity from a
// queued event. It fails if the record does not exist.
func (tx *Tx) ReplaceOutbox(seq uint64, e Entry) error {
	if !tx.writable {
		return ErrReadOnly
	}
	old, ok, err := tx.OutboxRecord(seq)
	if err != nil || !ok {
		return errors.Join(err, fmt.Errorf("replace outbox record %d: not found", seq))
	}
	e.Class = old.Class
	if err := e.validate(tx.db.opts.Outbox.MaxEntryBytes); err != nil {
		return err
	}
	if e.At == 0 {
		e.At = old.At
	}
	if _, err := tx.deleteOutbox(seq); err != nil {
		return err
	}
	val, err := tx.encode(seq, e)
	if err != nil {
		return err
	}
	return tx.putOutbox(seq, e, val, storedSize(val))
}

// OutboxBySubject returns, in sequence order, the sequence numbers of the
// queued records linked to subject.
func (tx *Tx) OutboxBySubject(subject []byte) ([]uint64, error) {
	if len(subject) == 0 || len(subject) > maxTag {
		return nil, nil
	}
	prefix := subjKey(subject, 0)[:1+len(subject)]
	var seqs []uint64
	c := tx.bucket(bucketOutboxSubj).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			seqs = append(seqs, keyU64(k[len(prefix):]))
		}
	}
	return seqs, nil
}

// recount rebuilds the outbox counters from the records themselves, for a
// file whose counters were damaged. Shed and rejected totals restart at 0.
func (tx *Tx) recount() error {
	c := &outboxCounters{V: 1}
	err := tx.outboxParts(0, func(b *bolt.Bucket) (bool, error) {
		return true, b.ForEach(func(k, v []byte) error {
			if r, err := tx.decode(k, v, false); err == nil {
				c.add(r.Class, storedSize(v), +1)
			}
			return nil
		})
	})
	tx.counters = c
	return err
}
