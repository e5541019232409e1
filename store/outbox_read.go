package store

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
		c := tx.bucket(bucketOutbox).Cursor()
		size := 0
		for k, v := c.Seek(u64key(from)); k != nil && len(out) < maxRecords; k, v = c.Next() {
			r, err := tx.decode(k, v, true)
			if err != nil {
				return err
			}
			if len(out) > 0 && size+len(r.Payload) > maxBytes {
				break
			}
			size += len(r.Payload)
			out = append(out, r)
		}
		return nil
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
	c := tx.bucket(bucketOutbox).Cursor()
	var seqs []uint64
	for k, _ := c.Seek(u64key(first)); k != nil && keyU64(k) <= last; k, _ = c.Next() {
		seqs = append(seqs, keyU64(k))
	}
	for _, seq := range seqs {
		if _, err := tx.deleteOutbox(seq); err != nil {
			return 0, err
		}
	}
	return len(seqs), nil
}

// QuarantineOutbox moves the record seq, as stored, into the quarantine
// bucket and out of the outbox, so one damaged record cannot stall the drain
// and nothing is thrown away. storectl can list what is there.
func (db *DB) QuarantineOutbox(seq uint64) error {
	return db.Update(func(tx *Tx) error {
		key := u64key(seq)
		v := tx.bucket(bucketOutbox).Get(key)
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
		ob := tx.bucket(bucketOutbox)
		s.LastSeq = ob.Sequence()
		if k, v := ob.Cursor().First(); k != nil {
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
	ob, tel := tx.bucket(bucketOutbox), tx.bucket(bucketOutboxTel)
	if k, _ := tel.Cursor().First(); k != nil {
		if v := ob.Get(k); v != nil {
			if r, err := tx.decode(k, v, false); err == nil {
				telemetry = r.At
			}
		}
	}
	if !wantCritical {
		return telemetry, 0
	}
	c := ob.Cursor()
	n := 0
	for k, v := c.First(); k != nil && n < 100_000; k, v = c.Next() {
		n++
		if tel.Get(k) != nil {
			continue
		}
		if r, err := tx.decode(k, v, false); err == nil {
			critical = r.At
		}
		break
	}
	return telemetry, critical
}

// QueuedRecords is the outbox depth as of the last commit, without a
// transaction: cheap enough for every status poll.
func (db *DB) QueuedRecords() uint64 {
	c := db.counters.Load()
	if c == nil {
		return 0
	}
	return c.CritRecs + c.TelRecs
}
