// Package store is the agent's durable memory: one bbolt file holding the
// outbox of events waiting for the central CDP, the consent-scoped profile
// cache owned by package agent, cursors and small state, and an append-only
// audit log.
//
// # Basics
//
// Open a file with [Open]; the daemon is its only writer. Everything a caller
// writes goes through [DB.Update] (one bbolt write transaction, fsynced when
// it returns nil) or [DB.Append] (the outbox's group commit: many concurrent
// appenders share one transaction and one fsync). Both return only once the
// data is on stable storage, so a caller may acknowledge to a device as soon
// as they return nil (invariant 1).
//
// Records are CBOR (Core Deterministic Encoding) with a version field. Values
// that can hold personal data are sealed with AES-256-GCM under the key given
// in [Options.Key] (load it with [LoadKeyFile]), a fresh random nonce per
// record, and the bucket name and record key as associated data, so a sealed
// value copied under another key fails to open (invariant 6).
//
// The outbox holds two classes. [Critical] records (purchases, consent changes,
// rights requests) have reserved room and are never shed; [Telemetry] records
// (sightings, page views) are shed oldest-first when the outbox reaches its
// bounds. Past the bounds, [DB.Append] fails with [ErrOutboxFull]. Sequence
// numbers come from the outbox bucket's own sequence: strictly increasing in
// commit order, never reused, across crashes and compactions (invariant 3).
// Records are kept in segments of [OutboxSegment] sequence numbers, and a
// delete that takes every record of a segment frees the segment in one step:
// a drain that deletes what the central acked should cut its ranges where
// segments end.
//
// [OpenReadOnly] takes bbolt's shared lock for the technician's CLI. It fails
// at once with [ErrLocked] when a daemon holds the file, so the CLI asks the
// daemon instead; it never writes and never waits on a running daemon.
//
// # Caveats
//
//  1. Keep transactions short. A long read transaction pins the pages it can
//     see, so the file grows while writers run; a long write transaction stalls
//     every appender. Iterate big ranges in pages ([DB.ReadOutbox] does).
//  2. The function passed to [DB.Update] must not call back into the DB (no
//     nested Update, View or Append): bbolt allows one writer and would
//     deadlock.
//  3. Byte slices handed to a function inside a transaction are valid only
//     until it returns; copy what you keep. Methods that return data outside a
//     transaction already return copies.
//  4. Deleting a record frees its pages but not its bytes: they stay in the
//     file until the page is reused. After an erasure call
//     [Tx.MarkForCompaction]; [DB.Compact] rewrites the live data into a fresh
//     file and renames it over the old one (invariant 5).
//  5. Store knows nothing of purposes, consent or MQTT. Labels and subjects
//     on outbox entries are opaque to it; the caller gives them meaning.
//
// The invariants its tests protect: durable before acknowledged (a real
// SIGKILL crash test), sequence numbers never repeat, bounds hold with
// telemetry shed first, deleted bytes are gone after compaction, no sealed
// value is readable without the key.
package store
