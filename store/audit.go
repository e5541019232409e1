package store

import (
	"fmt"
	"maps"
)

// AuditEntry is one line of the audit log: what happened, never to whom.
// Fields hold ids that are not personal data (a sequence number, a purpose,
// a rights request id, a short hash prefix); the caller is responsible for
// that, and the agent's tests check it.
type AuditEntry struct {
	V      uint8             `cbor:"0,keyasint" json:"-"`
	Seq    uint64            `cbor:"-" json:"seq"`
	At     int64             `cbor:"1,keyasint" json:"at"`
	Kind   string            `cbor:"2,keyasint" json:"kind"`
	Fields map[string]string `cbor:"3,keyasint,omitempty" json:"fields,omitempty"`
}

// Audit appends an entry to the audit log in this transaction. Entries are
// never changed; the oldest are pruned once Options.AuditMax are kept.
func (tx *Tx) Audit(kind string, fields map[string]string) error {
	if !tx.writable {
		return ErrReadOnly
	}
	b := tx.bucket(bucketAudit)
	b.FillPercent = 1.0
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	val, err := MarshalRecord(AuditEntry{V: 1, At: tx.db.nowMs(), Kind: kind, Fields: maps.Clone(fields)})
	if err != nil {
		return err
	}
	if err := b.Put(u64key(seq), val); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if max := tx.db.opts.AuditMax; seq > max {
		return b.Delete(u64key(seq - max))
	}
	return nil
}

// AuditLog returns up to max entries with Seq >= from, oldest first.
func (db *DB) AuditLog(from uint64, max int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := db.View(func(tx *Tx) error {
		c := tx.bucket(bucketAudit).Cursor()
		for k, v := c.Seek(u64key(from)); k != nil && len(out) < max; k, v = c.Next() {
			var e AuditEntry
			if err := UnmarshalRecord(bucketAudit, k, v, &e); err != nil {
				return err
			}
			e.Seq = keyU64(k)
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
