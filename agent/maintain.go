package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/storeagent/storeagent/store"
)

// Run does the agent's background work until ctx ends: it queues the
// identify events of unknown customers, drops expired slices, lets held
// events go after Config.PendingMaxAge, and compacts the store after an
// erasure within Config.CompactWithin. It returns nil when ctx is
// cancelled.
func (a *Agent) Run(ctx context.Context) error {
	tick := time.NewTicker(a.cfg.MaintainEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-a.identifies:
			a.queueIdentify(ctx, b)
		case <-tick.C:
			if err := a.Maintain(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("maintenance failed", "err", err)
			}
		}
	}
}

func (a *Agent) queueIdentify(ctx context.Context, b []byte) {
	_, err := a.db.Append(ctx, store.Entry{Class: store.Telemetry, Label: a.Policy().Default, Payload: b})
	if err != nil && !errors.Is(err, context.Canceled) {
		a.stats.IdentifyEventsDropped.Add(1)
	}
}

// Maintain runs one round of the periodic work; Run calls it every
// Config.MaintainEvery, tests call it directly.
func (a *Agent) Maintain(ctx context.Context) error {
	return errors.Join(a.expire(), a.timeoutHeld(), a.compactIfDue(ctx))
}

// expireBatch bounds one expiry transaction.
const expireBatch = 1000

// expire drops the slices whose expiry time has passed (data minimisation).
func (a *Agent) expire() error {
	now := a.now()
	for more := true; more; {
		err := a.db.Update(func(tx *store.Tx) error {
			c := a.live(tx)
			var victims [][]byte
			c.expiry().ForEach(nil, func(k, _ []byte) error {
				if int64(binary.BigEndian.Uint64(k)) > now || len(victims) == expireBatch {
					return errStop
				}
				victims = append(victims, append([]byte(nil), k[8:]...))
				return nil
			})
			more = len(victims) == expireBatch
			for _, pk := range victims {
				rec, err := c.get(pk)
				if err != nil {
					return err
				}
				if rec == nil {
					continue
				}
				if err := c.del(pk, rec); err != nil {
					return err
				}
				if err := a.release(tx, pk, nil, true); err != nil {
					return err
				}
				a.stats.Expired.Add(1)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// timeoutHeld lets the held events of customers who did not decide within
// PendingMaxAge go, stripped of identity.
func (a *Agent) timeoutHeld() error {
	cutoff := a.now() - a.cfg.PendingMaxAge.Milliseconds()
	return a.db.Update(func(tx *store.Tx) error {
		var stale [][]byte
		bk := tx.Bucket(store.BucketPending)
		err := bk.ForEach(nil, func(k, v []byte) error {
			pk := k[:pkeyLen]
			if len(stale) > 0 && string(stale[len(stale)-1]) == string(pk) {
				return nil
			}
			plain, err := bk.Open(k, v)
			if err != nil {
				return err
			}
			var r pendingRec
			if err := store.UnmarshalRecord(store.BucketPending, k, plain, &r); err != nil {
				return err
			}
			if r.HeldAt < cutoff {
				stale = append(stale, append([]byte(nil), pk...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, pk := range stale {
			if err := a.release(tx, pk, nil, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// compactIfDue compacts the store once personal data was erased, soon
// enough that the bytes leave the file within CompactWithin: a minute after
// the first erasure (so a burst of erasures shares one compaction), or half
// the bound if that is shorter.
func (a *Agent) compactIfDue(ctx context.Context) error {
	due, err := a.db.CompactionDue()
	if err != nil || due == 0 {
		return err
	}
	delay := min(time.Minute, a.cfg.CompactWithin/2)
	if a.now() < due+delay.Milliseconds() {
		return nil
	}
	res, err := a.db.Compact(ctx, nil)
	if err != nil {
		return err
	}
	a.stats.Compactions.Add(1)
	a.log.Info("compacted after erasure", "before", res.Before, "after", res.After, "took", res.Took)
	return nil
}
