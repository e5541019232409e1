package uplink

import (
	"context"
	"slices"
	"time"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/wire"
)

// deletion is what the drain tells the deleter: a range the central acked,
// or, with flush, that the drain is idle (the outbox is drained and nothing
// is in flight).
type deletion struct {
	r     wire.Range
	flush bool
}

// flushAfter is the longest acked records wait for their segment to be
// acked whole when no flush comes. A variable for tests.
var flushAfter = time.Second

// deleter removes acked records from the outbox, off the drain's path: a
// delete costs an fsync, and the drain should be reading and sending
// meanwhile. It keeps the acked frontier (every sequence number up to it is
// acked) and deletes up to it in one transaction, storing the point it
// deleted to with the deletes.
//
// While the drain is busy it deletes only up to the last whole segment
// below the frontier (store.OutboxSegment): the store drops a segment whose
// records are all in the range in one step, where the records of a segment
// cut in two are deleted one by one. What waits is at most one segment of
// acked records, deleted once the next ranges complete the segment, when
// the drain says it is idle, or after flushAfter. A restart before that
// re-sends them, and the central drops the repeated messageIds.
func (u *Uplink) deleter(ctx context.Context, frontier uint64, in <-chan deletion) {
	deleted := frontier    // persisted: every record up to it is gone
	var above []wire.Range // acked ranges beyond the frontier, not yet joined to it
	// idle runs only while acked records are held back: an idle agent's
	// deleter does not wake.
	timer := time.NewTimer(flushAfter)
	timer.Stop()
	defer timer.Stop()
	var idle <-chan time.Time
	for {
		flush := false
		select {
		case d := <-in:
			above, flush = collect(above, d, flush)
		case <-idle:
			flush, idle = true, nil
		case <-ctx.Done():
			return
		}
	more:
		for {
			select {
			case d := <-in:
				above, flush = collect(above, d, flush)
			default:
				break more
			}
		}
		frontier, above = advance(frontier, above)
		target := frontier
		if !flush {
			target = wholeSegments(frontier)
		}
		if target < frontier && idle == nil {
			timer.Reset(flushAfter)
			idle = timer.C
		}
		if target <= deleted {
			continue
		}
		err := u.st.Update(func(tx *store.Tx) error {
			if _, err := tx.DeleteOutboxRange(deleted+1, target); err != nil {
				return err
			}
			return tx.SetMetaUint(MetaAcked, target)
		})
		if err != nil {
			// The records stay and will be deleted with the next range, or
			// sent and acked again: harmless.
			u.log.Warn("delete acked events", "err", err)
			continue
		}
		deleted = target
		u.c.ackedThrough.Store(deleted)
	}
}

func collect(above []wire.Range, d deletion, flush bool) ([]wire.Range, bool) {
	if d.r.Last > 0 {
		above = append(above, d.r)
	}
	return above, flush || d.flush
}

// wholeSegments is the last sequence number before the segment that holds
// frontier+1: deleting up to it cuts no segment in two.
func wholeSegments(frontier uint64) uint64 {
	start := (frontier + 1) / store.OutboxSegment * store.OutboxSegment
	if start == 0 {
		return 0
	}
	return start - 1
}

// advance joins to the frontier every range that touches it, and returns
// the new frontier and the ranges still beyond it.
func advance(frontier uint64, above []wire.Range) (uint64, []wire.Range) {
	slices.SortFunc(above, func(a, b wire.Range) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	kept := above[:0]
	for _, r := range above {
		switch {
		case r.Last <= frontier:
			// already covered
		case r.First <= frontier+1:
			frontier = r.Last
		default:
			kept = append(kept, r)
		}
	}
	return frontier, kept
}
