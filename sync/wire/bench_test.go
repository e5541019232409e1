package wire

import (
	"fmt"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/storeagent/storeagent/agent/event"
)

// snapshotChunk returns a snapshot chunk of profile changes filling close
// to MaxChangeSetSize, as a central would pack it.
func snapshotChunk(b *testing.B) ChangeSet {
	cs := ChangeSet{From: 1, To: 1 << 20, Snapshot: true, More: true}
	size := MaxChangeSetOverhead
	for i := 0; ; i++ {
		c := Change{Seq: uint64(i + 1), Body: &ProfileChange{
			Profile: fmt.Sprintf("p-%07d", i), Idents: []Ident{sampleIdent(byte(i)), sampleIdent(byte(i + 7))},
			Attrs: []Attr{
				{Name: "tier", Purpose: "personalisation", Value: "gold"},
				{Name: "favourite_store", Purpose: "personalisation", Value: "s1"},
			},
			Version: 3, Expires: testTime,
		}}
		n := len(must[[]byte](b)(EncodeChange(c)))
		if size+n > MaxChangeSetSize {
			return cs
		}
		size += n
		cs.Changes = append(cs.Changes, c)
	}
}

// BenchmarkVerifyChangeSet measures what a snapshot apply pays here per
// profile, against a baseline that only unmarshals the same payload with
// the library's defaults: no signature, no size, key or rule checks.
func BenchmarkVerifyChangeSet(b *testing.B) {
	s, v := testSigner(b, "central"), testVerifier(b, "central")
	cs := snapshotChunk(b)
	msg := must[[]byte](b)(SignChangeSet(s, testScope, cs))
	payload := must[[]byte](b)(EncodeChangeSet(cs))
	n := float64(len(cs.Changes))

	b.Run("baseline-unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var m map[string]any
			if err := cbor.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := VerifyChangeSet(v, testScope, msg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	})
}

// BenchmarkEncodeEventBatch measures the uplink's cost per event for a
// full batch (from Go values, and from events already encoded as an
// outbox holds them), against the library's plain marshal of the same
// batch.
func BenchmarkEncodeEventBatch(b *testing.B) {
	batch := fullBatch(b)
	n := float64(len(batch.Events))
	perEvent(b, "baseline-marshal", n, func() error { _, err := cbor.Marshal(batch); return err })
	perEvent(b, "encode", n, func() error { _, err := EncodeEventBatch(batch); return err })
	raw := make([][]byte, len(batch.Events))
	for i, e := range batch.Events {
		raw[i] = must[[]byte](b)(EncodeEvent(e))
	}
	perEvent(b, "encode-raw", n, func() error { _, err := EncodeEventBatchRaw(batch, raw); return err })
}

// BenchmarkDecodeEventBatch measures what the central pays per event to
// decode and validate a full batch from an agent (in full, and for the
// header and messageIds only), against the library's plain unmarshal of
// the same payload into generic values.
func BenchmarkDecodeEventBatch(b *testing.B) {
	batch := fullBatch(b)
	payload := must[[]byte](b)(EncodeEventBatch(batch))
	n := float64(len(batch.Events))
	perEvent(b, "baseline-unmarshal", n, func() error { var m map[string]any; return cbor.Unmarshal(payload, &m) })
	perEvent(b, "decode", n, func() error { _, err := DecodeEventBatch(payload); return err })
	perEvent(b, "decode-ids", n, func() error { _, _, err := DecodeEventBatchIDs(payload); return err })
}

// fullBatch is a batch of sample events filled to the size bound.
func fullBatch(b *testing.B) EventBatch {
	batch := EventBatch{Agent: "pos-1", Store: "s1", First: 1, SentAt: testTime}
	ids := event.IDs{}
	for size := MaxEventBatchOverhead; ; {
		e := sampleEvent()
		e.MessageID = ids.Next()
		n := len(must[[]byte](b)(EncodeEvent(e)))
		if size+n > MaxEventBatchSize {
			break
		}
		size += n
		batch.Events = append(batch.Events, e)
	}
	batch.Last = uint64(len(batch.Events))
	return batch
}

// perEvent runs the sub-benchmark name, each iteration one call of op on a
// batch of n events, and reports events a second.
func perEvent(b *testing.B, name string, n float64, op func() error) {
	b.Run(name, func(b *testing.B) {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
