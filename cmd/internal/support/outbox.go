package support

import (
	"cmp"
	"errors"
	"time"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
)

// OutboxStore is the subset of *store.DB the outbox views read.
type OutboxStore interface {
	OutboxStats() (store.OutboxStats, error)
	ReadOutbox(from uint64, maxRecords, maxBytes int) ([]store.Record, error)
}

var _ OutboxStore = (*store.DB)(nil)

// OutboxStatus is the outbox part of a status, from the store's stats
// (the daemon's link adds the last ack).
func OutboxStatus(ob store.OutboxStats, now time.Time) localapi.OutboxStatus {
	o := localapi.OutboxStatus{
		Records: ob.Records(), Bytes: ob.Critical.Bytes + ob.Telemetry.Bytes,
		Critical:   localapi.ClassStatus{Records: ob.Critical.Records, Bytes: ob.Critical.Bytes},
		Telemetry:  localapi.ClassStatus{Records: ob.Telemetry.Records, Bytes: ob.Telemetry.Bytes},
		MaxRecords: ob.Limits.MaxRecords, MaxBytes: ob.Limits.MaxBytes, Shed: ob.Shed, Rejected: ob.Rejected,
	}
	if ob.OldestAt > 0 {
		o.OldestAt = time.UnixMilli(ob.OldestAt)
		o.OldestAgeSeconds = int64(now.Sub(o.OldestAt).Seconds())
	}
	return o
}

// OutboxReport is the outbox's report from the store alone; link is the
// state of the link that drains it ("unknown" when the daemon is down).
func OutboxReport(db OutboxStore, link string, now time.Time) (localapi.OutboxReport, error) {
	ob, err := db.OutboxStats()
	if err != nil {
		return localapi.OutboxReport{}, err
	}
	return localapi.OutboxReport{OutboxStatus: OutboxStatus(ob, now), FirstSeq: ob.FirstSeq, LastSeq: ob.LastSeq, Link: link}, nil
}

// Peek describes the n oldest queued events (see localapi.OutboxEntry):
// never an id, a property or a trait value. A record that does not decode
// ends the list with an entry saying so.
func Peek(db OutboxStore, m *Masker, n int, now time.Time) (localapi.OutboxPeek, error) {
	ob, err := db.OutboxStats()
	if err != nil {
		return localapi.OutboxPeek{}, err
	}
	out := localapi.OutboxPeek{Entries: []localapi.OutboxEntry{}}
	if ob.Records() == 0 {
		return out, nil
	}
	recs, err := db.ReadOutbox(ob.FirstSeq, n+1, n*event.MaxSize)
	var corrupt *store.CorruptError
	if errors.As(err, &corrupt) {
		recs = append(recs, store.Record{Seq: seqOf(corrupt.Key)})
	} else if err != nil {
		return out, err
	}
	if len(recs) > n {
		recs, out.More = recs[:n], true
	}
	for _, r := range recs {
		out.Entries = append(out.Entries, describeRecord(r, m, now))
	}
	if corrupt != nil && len(out.Entries) > 0 {
		out.Entries[len(out.Entries)-1].Error = "the stored record does not open: the uplink moves it to quarantine"
	}
	return out, nil
}

func seqOf(key []byte) uint64 {
	var s uint64
	for _, b := range key {
		s = s<<8 | uint64(b)
	}
	return s
}

func describeRecord(r store.Record, m *Masker, now time.Time) localapi.OutboxEntry {
	e := localapi.OutboxEntry{Seq: r.Seq, Purpose: r.Label, Bytes: len(r.Payload)}
	if r.Class != 0 {
		e.Class = r.Class.String()
	}
	if r.At > 0 {
		e.At = time.UnixMilli(r.At)
		e.AgeSeconds = int64(now.Sub(e.At).Seconds())
	}
	if r.Payload == nil {
		return e
	}
	ev, err := event.Decode(r.Payload)
	if err != nil {
		e.Error = "the event does not decode"
		return e
	}
	e.Type, e.Event = ev.Type, ev.Event
	e.Purpose = cmp.Or(e.Purpose, ev.Context.Purpose)
	e.UserID, e.AnonymousID = ev.UserID != "", ev.AnonymousID != ""
	e.Ref = m.Ref(cmp.Or(ev.UserID, ev.AnonymousID))
	e.Properties, e.Traits = len(ev.Properties), len(ev.Traits)
	return e
}
