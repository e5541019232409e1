package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxGroup bounds one group commit, so a burst cannot build a transaction
// large enough to stall the next group for long.
const maxGroup = 2048

type appendReq struct {
	e    Entry
	seq  uint64
	err  error
	done chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

// Append adds e to the outbox and returns its sequence number once the
// record is fsynced. Concurrent callers share commits: whoever arrives while
// a commit is being written joins the next one, so throughput grows with the
// number of appenders while a lone appender pays one fsync and no added
// delay (bbolt's DB.Batch would add its MaxBatchDelay).
//
//  1. A nil error means the record is durable; acknowledge it.
//  2. ErrOutboxFull and ErrRecordTooLarge mean nothing was stored.
//  3. If ctx ends before the record is queued, Append returns ctx.Err() and
//     nothing was stored. Once queued it waits for the commit, whatever ctx
//     says, because only then is the answer known.
func (db *DB) Append(ctx context.Context, e Entry) (uint64, error) {
	if db.readOnly {
		return 0, ErrReadOnly
	}
	if err := e.validate(db.opts.Outbox.MaxEntryBytes); err != nil {
		return 0, err
	}
	req := reqPool.Get().(*appendReq)
	req.e, req.seq, req.err = e, 0, nil
	select {
	case db.appendc <- req:
	case <-ctx.Done():
		reqPool.Put(req)
		return 0, ctx.Err()
	case <-db.closing:
		reqPool.Put(req)
		return 0, ErrClosed
	}
	<-req.done
	seq, err := req.seq, req.err
	req.e = Entry{}
	reqPool.Put(req)
	return seq, err
}

func (db *DB) startCommitter() {
	db.appendc = make(chan *appendReq)
	db.closing = make(chan struct{})
	db.committed = make(chan struct{})
	go db.commitLoop()
}

// commitLoop owns the group commit. The channel is unbuffered: an appender
// that has handed its request over is certain to be answered, and one that
// has not sees closing and gives up; no request is stranded at Close.
func (db *DB) commitLoop() {
	defer close(db.committed)
	batch := make([]*appendReq, 0, maxGroup)
	linger := time.NewTimer(0)
	<-linger.C
	prev := 1
	for {
		select {
		case req := <-db.appendc:
			batch = db.gather(append(batch[:0], req), prev, linger)
			db.commitGroup(batch)
			prev = len(batch)
		case <-db.closing:
			return
		}
	}
}

// maxLinger bounds how long a group waits for its stragglers: well under
// one fsync, so waiting can only cost less than the commit it saves.
const maxLinger = 200 * time.Microsecond

// gather takes every request already waiting, up to maxGroup. When the last
// group had more than one appender, it lingers up to maxLinger for as many
// as that group had: the appenders just answered are on their way back, and
// without the wait every other group would leave half of them behind for
// the next fsync. A lone appender (prev == 1) never waits.
func (db *DB) gather(batch []*appendReq, prev int, linger *time.Timer) []*appendReq {
	batch = db.drain(batch)
	if len(batch) >= prev {
		return batch
	}
	linger.Reset(maxLinger)
	defer linger.Stop()
	for len(batch) < prev && len(batch) < maxGroup {
		select {
		case req := <-db.appendc:
			batch = db.drain(append(batch, req))
		case <-linger.C:
			return batch
		case <-db.closing:
			return batch
		}
	}
	return batch
}

// drain takes the requests already waiting, without blocking.
func (db *DB) drain(batch []*appendReq) []*appendReq {
	for len(batch) < maxGroup {
		select {
		case req := <-db.appendc:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

func (db *DB) commitGroup(batch []*appendReq) {
	err := db.Update(func(tx *Tx) error {
		for _, r := range batch {
			r.seq, r.err = tx.AppendOutbox(r.e)
			if r.err != nil && !refusal(r.err) {
				return r.err // the disk failed: nobody in this group is durable
			}
		}
		return nil
	})
	for _, r := range batch {
		if err != nil {
			r.seq, r.err = 0, err
		}
		r.done <- struct{}{}
	}
}

// refusal reports an error that refuses one entry without harming the
// transaction it was tried in.
func refusal(err error) bool {
	return errors.Is(err, ErrOutboxFull) || errors.Is(err, ErrRecordTooLarge)
}
