package central

import (
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"

	"github.com/storeagent/storeagent/sync/wire"
)

// Records are the payloads of the data files' frames: deterministic CBOR
// maps with small integer keys. Decoding treats them as outside input (a
// file may be damaged or edited): limits, no duplicate keys, and a
// validation that ErrCorrupt reports.

var (
	recEnc cbor.EncMode
	recDec cbor.DecMode
)

func init() {
	var err error
	if recEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(fmt.Sprintf("central: cbor encoding options: %v", err))
	}
	recDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  1024,
		MaxMapPairs:       64,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		DefaultMapType:    reflect.TypeFor[map[string]any](),
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("central: cbor decoding options: %v", err))
	}
}

// recType is the kind of a journal record.
type recType uint8

// The journal's record types.
const (
	recBatch   recType = 1 // an accepted EventBatch
	recGap     recType = 2 // a batch refused as a gap
	recInvalid recType = 3 // a message refused as invalid
	recStatus  recType = 4 // an AgentStatus
	recSync    recType = 5 // a SyncRequest
)

// idSize is the size of a messageId (a UUID) in a record.
const idSize = 16

// journalRecord is one entry of the uplink journal.
type journalRecord struct {
	Type recType `cbor:"1,keyasint"`
	// At is when the central received the message, ms since the epoch.
	At int64 `cbor:"2,keyasint"`
	// Store and Agent come from the topic; both are empty for an invalid
	// message whose topic names no agent.
	Store string `cbor:"3,keyasint,omitempty"`
	Agent string `cbor:"4,keyasint,omitempty"`
	// First and Last are the batch's range (batch, gap).
	First uint64 `cbor:"5,keyasint,omitempty"`
	Last  uint64 `cbor:"6,keyasint,omitempty"`
	// Events is how many events the batch held.
	Events uint32 `cbor:"7,keyasint,omitempty"`
	// New holds the 16-byte ids of the batch's new events, in batch order.
	New []byte `cbor:"8,keyasint,omitempty"`
	// Dups and OutOfOrder count the batch's duplicates and new events that
	// arrived out of order.
	Dups       uint32 `cbor:"9,keyasint,omitempty"`
	OutOfOrder uint32 `cbor:"10,keyasint,omitempty"`
	// Prev is lastAccepted before the batch (batch, gap).
	Prev uint64 `cbor:"11,keyasint,omitempty"`
	// Batch is the EventBatch as received, when it held a new event and
	// the central keeps event bodies.
	Batch []byte `cbor:"12,keyasint,omitempty"`
	// Reason says why a message was invalid.
	Reason string `cbor:"13,keyasint,omitempty"`
	// Status is the AgentStatus (status).
	Status *StatusReport `cbor:"14,keyasint,omitempty"`
	// From is the SyncRequest's from (sync).
	From uint64 `cbor:"15,keyasint,omitempty"`
}

func encodeRecord(v any) ([]byte, error) {
	b, err := recEnc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return b, nil
}

// decodeJournalRecord decodes and checks one journal record.
func decodeJournalRecord(data []byte) (journalRecord, error) {
	var r journalRecord
	if err := recDec.Unmarshal(data, &r); err != nil {
		return journalRecord{}, fmt.Errorf("%w: journal record: %v", ErrCorrupt, err)
	}
	if err := r.check(); err != nil {
		return journalRecord{}, fmt.Errorf("%w: journal record: %s", ErrCorrupt, err)
	}
	return r, nil
}

func (r *journalRecord) check() error {
	if r.At <= 0 {
		return fmt.Errorf("time not positive")
	}
	attributed := wire.ValidID(r.Store) && wire.ValidID(r.Agent)
	if !attributed && (r.Type != recInvalid || r.Store != "" || r.Agent != "") {
		return fmt.Errorf("store or agent not a valid id")
	}
	switch r.Type {
	case recBatch:
		n := uint64(len(r.New) / idSize)
		switch {
		case r.First > r.Last:
			return fmt.Errorf("first greater than last")
		case len(r.New)%idSize != 0:
			return fmt.Errorf("ids not a multiple of %d bytes", idSize)
		case n+uint64(r.Dups) != uint64(r.Events) || uint64(r.OutOfOrder) > n:
			return fmt.Errorf("counts do not add up")
		case len(r.Batch) > wire.MaxEventBatchSize:
			return fmt.Errorf("batch too large")
		}
	case recGap:
		if r.First > r.Last || r.First <= r.Prev+1 {
			return fmt.Errorf("not a gap")
		}
	case recInvalid:
		if !wire.ValidID(r.Reason) {
			return fmt.Errorf("reason not a valid id")
		}
	case recStatus:
		if r.Status == nil || len(r.Status.Version) > 64 {
			return fmt.Errorf("no status")
		}
	case recSync:
		if r.From == 0 {
			return fmt.Errorf("sync from zero")
		}
	default:
		return fmt.Errorf("unknown type %d", r.Type)
	}
	return nil
}

// ids returns the new events' ids of a batch record.
func (r *journalRecord) ids() [][idSize]byte {
	out := make([][idSize]byte, len(r.New)/idSize)
	for i := range out {
		copy(out[i][:], r.New[i*idSize:])
	}
	return out
}

// changeRecord is one entry of a store's change log.
type changeRecord struct {
	Seq  uint64    `cbor:"1,keyasint"`
	Kind wire.Kind `cbor:"2,keyasint"`
	// At is when the change was published, ms since the epoch.
	At int64 `cbor:"3,keyasint"`
	// Signed is the change exactly as published on the store's changes
	// topic: a COSE_Sign1 whose payload is the change's CBOR.
	Signed []byte `cbor:"4,keyasint"`
}

// decodeChangeRecord decodes and checks one change log record. It does
// not check the signature: readers that need the change verify Signed.
func decodeChangeRecord(data []byte) (changeRecord, error) {
	var r changeRecord
	if err := recDec.Unmarshal(data, &r); err != nil {
		return changeRecord{}, fmt.Errorf("%w: change record: %v", ErrCorrupt, err)
	}
	switch {
	case r.Seq == 0:
		return changeRecord{}, fmt.Errorf("%w: change record: seq zero", ErrCorrupt)
	case !knownKind(r.Kind):
		return changeRecord{}, fmt.Errorf("%w: change record: unknown kind", ErrCorrupt)
	case r.At <= 0:
		return changeRecord{}, fmt.Errorf("%w: change record: time not positive", ErrCorrupt)
	case len(r.Signed) == 0 || len(r.Signed) > wire.MaxChangeSize+wire.MaxSignedOverhead:
		return changeRecord{}, fmt.Errorf("%w: change record: signed change of %d bytes", ErrCorrupt, len(r.Signed))
	}
	return r, nil
}

func knownKind(k wire.Kind) bool {
	switch k {
	case wire.KindProfile, wire.KindConsent, wire.KindErase, wire.KindRestrict, wire.KindPolicy:
		return true
	}
	return false
}
