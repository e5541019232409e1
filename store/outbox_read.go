package store

import bolt "go.etcd.io/bbolt"

// ReadOutbox returns, in sequence order, the records with seq >= from: at
// most maxRecords of them and, past the first, no more than maxBytes of
// payload. It reads in one short transaction, so memory stays bounded by the
// page asked for however large the backlog.
//
// When a record does not decode, ReadOutbox returns the records before it
// and a *CorruptError naming it; QuarantineOutbox moves it aside so the
// drain can go on.
func (db *DB) ReadOutbox(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	var out []Record
	err := db.View(func(tx *Tx) error {
		size := 0
		// The page's payloads share one buffer: one allocation for the
		// page rather than one for each record. A record past the byte
		// bound is measured before it is opened, so the buffer need not
		// grow for it.
		var buf []byte
		overhead := tx.db.seal.aead.NonceSize() + tx.db.seal.aead.Overhead()
		return tx.outboxParts(from, func(b *bolt.Bucket) (bool, error) {
			c := b.Cursor()
			for k, v := c.Seek(u64key(from)); k != nil; k, v = c.Next() {
				if len(out) >= maxRecords {
					return false, nil
				}
				env, err := readEnvelope(k, v)
				if err != nil {
					return false, err
				}
				if len(out) > 0 && size+len(env.Sealed)-overhead > maxBytes {
					return false, nil
				}
				if buf == nil {
					buf = make([]byte, 0, min(maxBytes, maxRecords*len(v))+len(v))
				}
				var r Record
				if r, buf, err = tx.openAppend(buf, k, env); err != nil {
					return false, err
				}
				size += len(r.Payload)
				if out == nil {
					out = make([]Record, 0, min(maxRecords, 1024))
				}
				out = append(out, r)
			}
			return true, nil
		})
	})
	return out, err
}

// DeleteOutboxRange removes every record with first <= seq <= last, in one
// fsynced transaction, and returns how many there were. Absent sequence
// numbers (shed telemetry, an earlier delete) are skipped.
func (db *DB) DeleteOutboxRange(first, last uint64) (int, error) {
	n := 0
	err := db.Update(func(tx *Tx) error {
		var err error
		n, err = tx.DeleteOutboxRange(first, last)
		return err
	})
	return n, err
}

// DeleteOutboxRange is DB.DeleteOutboxRange inside a transaction, for a
// caller that must move a cursor in the same commit.
func (tx *Tx) DeleteOutboxRange(first, last uint64) (int, error) {
	if !tx.writable {
		return 0, ErrReadOnly
	}
	return tx.deleteOutboxRange(first, last)
}

// deleteOutboxRange removes the records from first to last with their
// index entries; every delete of the outbox goes through it. A segment the
// range holds all of goes whole (see OutboxSegment). A record whose
// envelope no longer decodes is removed all the same (its counters are left
// as they were: they cannot be known).
func (tx *Tx) deleteOutboxRange(first, last uint64) (int, error) {
	if first > last {
		return 0, nil
	}
	c, err := tx.outboxCounters()
	if err != nil {
		return 0, err
	}
	var subjects [][]byte
	seen := func(k, v []byte) {
		class, subject, ok := envelopeHead(v)
		if !ok {
			env, err := readEnvelope(k, v)
			if err != nil {
				return // removed all the same; its counters cannot be known
			}
			class, subject = env.Class, env.Subject
		}
		c.add(class, storedSize(v), -1)
		if len(subject) > 0 {
			subjects = append(subjects, subjKey(subject, keyU64(k)))
		}
	}
	n, err := tx.deleteRange(records, first, last, seen)
	if err != nil {
		return 0, err
	}
	if _, err := tx.deleteRange(telIndex, first, last, nil); err != nil {
		return 0, err
	}
	sb := tx.bucket(bucketOutboxSubj)
	for _, k := range subjects {
		if err := sb.Delete(k); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// deleteKeyRange deletes the keys of b from first to last (sequence
// numbers), calling seen, when not nil, with each key and value before it
// goes, and returns how many there were. One cursor walks the range
// instead of a search from the root for each key.
//
// The walk goes from the end backwards: after a delete, a bbolt cursor may
// stand on the next key (etcd-io/bbolt#611), never on the previous one.
// It stops at a leaf emptied earlier in the same transaction, which bbolt
// only rebalances at commit, so what it did not reach is then deleted key
// by key, each found afresh.
func deleteKeyRange(b *bolt.Bucket, first, last uint64, seen func(k, v []byte)) (int, error) {
	cur := b.Cursor()
	n := 0
	del := func(k, v []byte) error {
		if seen != nil {
			seen(k, v)
		}
		n++
		return cur.Delete()
	}
	k, v := cur.Seek(u64key(last))
	if k == nil {
		k, v = cur.Last()
	} else if keyU64(k) > last {
		k, v = cur.Prev()
	}
	for ; k != nil && keyU64(k) >= first && keyU64(k) <= last; k, v = cur.Prev() {
		if err := del(k, v); err != nil {
			return n, err
		}
	}
	for k, v = cur.Seek(u64key(first)); k != nil && keyU64(k) <= last; k, v = cur.Seek(u64key(first)) {
		if err := del(k, v); err != nil {
			return n, err
		}
	}
	return n, nil
}

// QuarantineOutbox moves the record seq, as stored, into the quarantine
// bucket and out of the outbox, so one damaged record cannot stall the drain
// and nothing is thrown away. storectl can list what is there.
func (db *DB) QuarantineOutbox(seq uint64) error {
	return db.Update(func(tx *Tx) error {
		key := u64key(seq)
		v := tx.outboxGet(seq)
		if v == nil {
			return nil
		}
		qkey := append([]byte(bucketOutbox+"\x00"), key...)
		if err := tx.bucket(bucketQuarantine).Put(qkey, append([]byte(nil), v...)); err != nil {
			return err
		}
		_, err := tx.deleteOutbox(seq)
		return err
	})
}

// ClassStats are one class's totals.
type ClassStats struct {
	Records  uint64 `json:"records"`
	Bytes    uint64 `json:"bytes"`
	OldestAt int64  `json:"oldestAt,omitempty"` // ms since the epoch of the class's oldest queued record
}

// OutboxStats describe the outbox for status pages and metrics.
type OutboxStats struct {
	Critical  ClassStats `json:"critical"`
	Telemetry ClassStats `json:"telemetry"`
	Shed      uint64     `json:"shed"`     // telemetry shed to make room, since the file was made
	Rejected  uint64     `json:"rejected"` // appends refused as full
	FirstSeq  uint64     `json:"firstSeq"` // oldest queued record, 0 when empty
	LastSeq   uint64     `json:"lastSeq"`  // last sequence number handed out
	OldestAt  int64      `json:"oldestAt"` // ms since the epoch of the oldest queued record
	Limits    OutboxLimits
}

// Records is the number of queued records of both classes.
func (s OutboxStats) Records() uint64 { return s.Critical.Records + s.Telemetry.Records }

// OutboxStats reads the outbox's totals and its oldest record.
func (db *DB) OutboxStats() (OutboxStats, error) {
	var s OutboxStats
	err := db.View(func(tx *Tx) error {
		c, err := loadCounters(tx.btx)
		if err != nil {
			return err
		}
		s = OutboxStats{
			Critical:  ClassStats{Records: c.CritRecs, Bytes: c.CritBytes},
			Telemetry: ClassStats{Records: c.TelRecs, Bytes: c.TelBytes},
			Shed:      c.Shed,
			Rejected:  c.Rejected,
			Limits:    db.opts.Outbox,
		}
		s.LastSeq = tx.bucket(bucketOutbox).Sequence()
		if k, v := tx.first(records); k != nil {
			s.FirstSeq = keyU64(k)
			if r, err := tx.decode(k, v, false); err == nil {
				s.OldestAt = r.At
			}
		}
		s.Telemetry.OldestAt, s.Critical.OldestAt = tx.oldestByClass(s.Critical.Records > 0)
		return nil
	})
	return s, err
}

// oldestByClass finds the time of the oldest telemetry record (the first
// of the telemetry index) and of the oldest critical one (the first outbox
// record not in that index: a walk past the telemetry ahead of it, bounded
// so a status poll stays short; past the bound the critical age is left
// out).
func (tx *Tx) oldestByClass(wantCritical bool) (telemetry, critical int64) {
	if k, _ := tx.first(telIndex); k != nil {
		if v := tx.outboxGet(keyU64(k)); v != nil {
			if r, err := tx.decode(k, v, false); err == nil {
				telemetry = r.At
			}
		}
	}
	if !wantCritical {
		return telemetry, 0
	}
	n := 0
	tx.outboxParts(0, func(b *bolt.Bucket) (bool, error) {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n > 100_000 {
				return false, nil
			}
			if tx.get(telIndex, keyU64(k)) != nil {
				continue
			}
			if r, err := tx.decode(k, v, false); err == nil {
				critical = r.At
			}
			return false, nil
		}
		return true, nil
	})
	return telemetry, critical
}

// QueuedRecords is the outbox depth as of the latest commit, without a
// transaction: cheap enough for every status poll.
func (db *DB) QueuedRecords() uint64 {
	p := db.counters.Load()
	if p == nil {
		return 0
	}
	return p.c.CritRecs + p.c.TelRecs
}
