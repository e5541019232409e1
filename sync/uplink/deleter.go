package uplink

import (
	"context"
	"slices"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/wire"
)

// deleter removes acked ranges from the outbox, off the drain's path: a
// delete costs an fsync, and the drain should be reading and sending
// meanwhile. Ranges that arrive together share one transaction. It keeps
// the acked frontier: every sequence number up to it is acked, and it is
// stored in the same transaction as the deletes.
func (u *Uplink) deleter(ctx context.Context, frontier uint64, in <-chan wire.Range) {
	var above []wire.Range // acked ranges beyond the frontier, not yet joined to it
	for {
		var batch []wire.Range
		select {
		case r := <-in:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	more:
		for {
			select {
			case r := <-in:
				batch = append(batch, r)
			default:
				break more
			}
		}
		above = append(above, batch...)
		frontier, above = advance(frontier, above)
		err := u.st.Update(func(tx *store.Tx) error {
			for _, r := range batch {
				if _, err := tx.DeleteOutboxRange(r.First, r.Last); err != nil {
					return err
				}
			}
			if frontier > tx.MetaUint(MetaAcked) {
				return tx.SetMetaUint(MetaAcked, frontier)
			}
			return nil
		})
		if err != nil {
			// The records stay and will be sent and acked again: harmless.
			u.log.Warn("delete acked events", "err", err)
			continue
		}
		u.c.ackedThrough.Store(frontier)
	}
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
