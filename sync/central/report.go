package central

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/sync/wire"
)

// Report is what the central received and published. A running central
// gives it live (Central.Report, the control API); ReadReport rebuilds the
// same from the data files after the process ended. Its JSON is read by
// scripts: fields are only ever added.
type Report struct {
	// Agents are the agents heard from, by store then agent id.
	Agents []AgentReport `json:"agents"`
	// Stores are the stores with at least one logged change.
	Stores []StoreReport `json:"stores"`
	// Unattributed counts, by reason, invalid messages whose topic names
	// no agent of the tenant.
	Unattributed map[string]uint64 `json:"unattributed,omitempty"`
	// TornBytes is the size of torn tails found at the end of data files
	// (a crash mid-write): ReadReport skips them.
	TornBytes int64 `json:"tornBytes,omitempty"`
	// Live holds runtime counters of a running central; absent from
	// ReadReport.
	Live *LiveReport `json:"live,omitempty"`
}

// AgentReport is what one agent sent. Received = Unique + Duplicates.
type AgentReport struct {
	Store string `json:"store"`
	Agent string `json:"agent"`
	// Batches is how many EventBatches were accepted (and acknowledged).
	Batches uint64 `json:"batches"`
	// Received counts the events of accepted batches.
	Received uint64 `json:"received"`
	// Unique counts events whose messageId was new; Duplicates the others.
	Unique     uint64 `json:"unique"`
	Duplicates uint64 `json:"duplicates"`
	// OutOfOrder counts new events that arrived after a later event of the
	// same agent had been accepted. An agent that keeps capture order has 0.
	OutOfOrder uint64 `json:"outOfOrder"`
	// Gaps counts batches refused because they started beyond
	// LastAccepted+1.
	Gaps uint64 `json:"gaps"`
	// Invalid counts refused messages; InvalidReasons splits them by reason
	// (too_large, malformed, bad_version, invalid, scope_mismatch).
	Invalid        uint64            `json:"invalid"`
	InvalidReasons map[string]uint64 `json:"invalidReasons,omitempty"`
	// LastAccepted is the highest "last" of an accepted batch.
	LastAccepted uint64 `json:"lastAccepted"`
	// SyncRequests counts the SyncRequests received.
	SyncRequests uint64 `json:"syncRequests"`
	// LastSeen is when the last message of the agent arrived, ms since the
	// epoch.
	LastSeen int64 `json:"lastSeen"`
	// Status is the agent's last AgentStatus, if any.
	Status *StatusReport `json:"status,omitempty"`
}

// StatusReport is an agent's last AgentStatus.
type StatusReport struct {
	Online  bool   `json:"online" cbor:"1,keyasint"`
	At      int64  `json:"at" cbor:"2,keyasint"`
	Version string `json:"version" cbor:"3,keyasint"`
	Outbox  uint64 `json:"outbox" cbor:"4,keyasint"`
	Cursor  uint64 `json:"cursor" cbor:"5,keyasint"`
}

// StoreReport is a store's change stream.
type StoreReport struct {
	Store string `json:"store"`
	// Seq is the store's current seq (1 is the baseline, when there is one).
	Seq uint64 `json:"seq"`
	// Changes counts the logged changes by kind.
	Changes map[string]uint64 `json:"changes"`
}

// LiveReport holds the counters of a running central that the data files
// do not keep.
type LiveReport struct {
	Connected bool `json:"connected"`
	// Pace is the pace, in ms, put in every Ack.
	Pace uint64 `json:"pace"`
	// Customers is the size of the baseline.
	Customers int `json:"customers"`
	// AcksSent counts acknowledged batch ranges; AckMessages the signed
	// Acks that carried them.
	AcksSent    uint64 `json:"acksSent"`
	AckMessages uint64 `json:"ackMessages"`
	// AcksDropped counts ranges left out by the DropAcks fault hook.
	AcksDropped uint64 `json:"acksDropped"`
	// AcksPending is what DropAcks still has to drop.
	AcksPending int64 `json:"acksPending"`
	// InboxOverflow counts uplink messages dropped because the inbox was
	// full; SyncOverflow SyncRequests dropped because a worker was busy.
	InboxOverflow uint64 `json:"inboxOverflow"`
	SyncOverflow  uint64 `json:"syncOverflow"`
	// PublishErrors counts downlink messages the client refused at once
	// (not connected).
	PublishErrors uint64 `json:"publishErrors"`
	// Syncs counts SyncRequests and pushes served; Snapshots those served
	// with a snapshot.
	Syncs     uint64 `json:"syncs"`
	Snapshots uint64 `json:"snapshots"`
}

// uplinkState is what the journal says: built by replay at open and kept
// up to date by the recorder, with the same apply, so a live report and a
// report from the files agree.
type uplinkState struct {
	agents       map[agentKey]*AgentReport
	unattributed map[string]uint64
}

func newUplinkState() uplinkState {
	return uplinkState{agents: map[agentKey]*AgentReport{}, unattributed: map[string]uint64{}}
}

func (s *uplinkState) apply(r *journalRecord) {
	if r.Store == "" {
		s.unattributed[r.Reason]++
		return
	}
	k := agentKey{r.Store, r.Agent}
	a := s.agents[k]
	if a == nil {
		a = &AgentReport{Store: r.Store, Agent: r.Agent}
		s.agents[k] = a
	}
	a.LastSeen = max(a.LastSeen, r.At)
	switch r.Type {
	case recBatch:
		n := uint64(len(r.New) / idSize)
		a.Batches++
		a.Received += uint64(r.Events)
		a.Unique += n
		a.Duplicates += uint64(r.Dups)
		a.OutOfOrder += uint64(r.OutOfOrder)
		a.LastAccepted = max(a.LastAccepted, r.Last)
	case recGap:
		a.Gaps++
	case recInvalid:
		a.Invalid++
		if a.InvalidReasons == nil {
			a.InvalidReasons = map[string]uint64{}
		}
		a.InvalidReasons[r.Reason]++
	case recStatus:
		st := *r.Status
		a.Status = &st
	case recSync:
		a.SyncRequests++
	}
}

// clone is a deep copy of a.
func (a *AgentReport) clone() AgentReport {
	c := *a
	c.InvalidReasons = maps.Clone(a.InvalidReasons)
	if a.Status != nil {
		st := *a.Status
		c.Status = &st
	}
	return c
}

// report returns a deep copy, sorted.
func (s *uplinkState) report() ([]AgentReport, map[string]uint64) {
	agents := make([]AgentReport, 0, len(s.agents))
	for _, a := range s.agents {
		agents = append(agents, a.clone())
	}
	slices.SortFunc(agents, func(x, y AgentReport) int {
		return cmp.Or(cmp.Compare(x.Store, y.Store), cmp.Compare(x.Agent, y.Agent))
	})
	var un map[string]uint64
	if len(s.unattributed) > 0 {
		un = maps.Clone(s.unattributed)
	}
	return agents, un
}

// Data directory layout.
const (
	journalName = "uplink.journal"
	changesDir  = "changes"
	metaName    = "cdpsim.json"
	lockName    = "lock"
	changeExt   = ".log"
)

// ReadReport rebuilds the report of the central whose data directory is
// dir, from its files alone: no keys, no broker, and the central may be
// running (a record being written is skipped as a torn tail). A data
// directory's files are described in README.md.
func ReadReport(dir string) (Report, error) {
	m, err := readMeta(dir)
	if err != nil {
		return Report{}, err
	}
	st := newUplinkState()
	torn, err := readLogFile(filepath.Join(dir, journalName), magicJournal, func(_ int64, p []byte) error {
		r, err := decodeJournalRecord(p)
		if err != nil {
			return err
		}
		st.apply(&r)
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	rep := Report{TornBytes: torn}
	rep.Agents, rep.Unattributed = st.report()
	stores, err := storeNames(dir)
	if err != nil {
		return Report{}, err
	}
	for _, s := range stores {
		sr, torn, err := readStoreReport(dir, s, baseSeq(m.Customers))
		if err != nil {
			return Report{}, err
		}
		rep.TornBytes += torn
		if sr.Seq >= baseSeq(m.Customers) {
			rep.Stores = append(rep.Stores, sr)
		}
	}
	return rep, nil
}

// baseSeq is the seq of the first logged change: 2 after a baseline.
func baseSeq(customers int) uint64 {
	if customers > 0 {
		return 2
	}
	return 1
}

func readStoreReport(dir, store string, base uint64) (StoreReport, int64, error) {
	sr := StoreReport{Store: store, Seq: base - 1, Changes: map[string]uint64{}}
	torn, err := readLogFile(storePath(dir, store), magicChanges, func(_ int64, p []byte) error {
		r, err := decodeChangeRecord(p)
		if err != nil {
			return err
		}
		if r.Seq != sr.Seq+1 {
			return fmt.Errorf("%w: seq %d follows %d", ErrCorrupt, r.Seq, sr.Seq)
		}
		sr.Seq = r.Seq
		sr.Changes[string(r.Kind)]++
		return nil
	})
	return sr, torn, err
}

func storePath(dir, store string) string {
	return filepath.Join(dir, changesDir, store+changeExt)
}

// storeNames lists the stores that have a change log in dir.
func storeNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, changesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list change logs: %w", err)
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), changeExt)
		if ok && e.Type().IsRegular() && wire.ValidID(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReceivedEvent is one event the central recorded: the first copy of its
// messageId, in the order the central accepted it.
type ReceivedEvent struct {
	Store string
	Agent string
	// BatchFirst and BatchLast are the range of the batch that carried it.
	BatchFirst uint64
	BatchLast  uint64
	// ReceivedAt is when the batch arrived, ms since the epoch.
	ReceivedAt int64
	// MessageID is the event's messageId.
	MessageID string
	// Event is the event as sent, or nil when the central ran with IDsOnly.
	Event *wire.Event
}

// ReadEvents calls fn with every recorded event of the data directory
// dir, in the order the central accepted them (so, per agent, in the order
// the agent sent them). It is how an integration test checks "every
// acknowledged event present once, in order". An error from fn stops the
// walk and is returned.
func ReadEvents(dir string, fn func(ReceivedEvent) error) error {
	if _, err := readMeta(dir); err != nil {
		return err
	}
	_, err := readLogFile(filepath.Join(dir, journalName), magicJournal, func(_ int64, p []byte) error {
		r, err := decodeJournalRecord(p)
		if err != nil || r.Type != recBatch || len(r.New) == 0 {
			return err
		}
		return eventsOf(&r, fn)
	})
	return err
}

// eventsOf calls fn for the new events of a batch record, matching them to
// the batch's events in order: a batch event is new when its id is the
// next new id.
func eventsOf(r *journalRecord, fn func(ReceivedEvent) error) error {
	ids := r.ids()
	base := ReceivedEvent{Store: r.Store, Agent: r.Agent, BatchFirst: r.First, BatchLast: r.Last, ReceivedAt: r.At}
	if len(r.Batch) == 0 {
		for _, id := range ids {
			ev := base
			ev.MessageID = event.FormatID(id)
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := wire.DecodeEventBatch(r.Batch)
	if err != nil {
		return fmt.Errorf("%w: recorded batch: %v", ErrCorrupt, err)
	}
	next := 0
	for i := range b.Events {
		e := &b.Events[i]
		if next == len(ids) || event.FormatID(ids[next]) != e.MessageID {
			continue
		}
		ev := base
		ev.MessageID, ev.Event = e.MessageID, e
		if err := fn(ev); err != nil {
			return err
		}
		next++
	}
	if next != len(ids) {
		return fmt.Errorf("%w: recorded batch does not hold its new events", ErrCorrupt)
	}
	return nil
}

// WriteText writes r for a technician: one table of agents, one of
// stores. It shows ids and counts, never event contents.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tAGENT\tBATCHES\tRECEIVED\tUNIQUE\tDUPLICATES\tOUT-OF-ORDER\tGAPS\tINVALID\tLAST-ACCEPTED\tSYNCS\tSTATUS")
	for _, a := range r.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", a.Store, a.Agent, a.Batches, a.Received,
			a.Unique, a.Duplicates, a.OutOfOrder, a.Gaps, a.Invalid, a.LastAccepted, a.SyncRequests, statusText(a.Status))
	}
	if len(r.Agents) == 0 {
		fmt.Fprintln(tw, "(no agents)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STORE\tSEQ\tPROFILE\tCONSENT\tERASE\tRESTRICT\tPOLICY")
	for _, s := range r.Stores {
		c := s.Changes
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Store, s.Seq, c["profile"], c["consent"], c["erase"], c["restrict"], c["policy"])
	}
	if len(r.Stores) == 0 {
		fmt.Fprintln(tw, "(no changes logged)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, reason := range slices.Sorted(maps.Keys(r.Unattributed)) {
		notes = append(notes, fmt.Sprintf("invalid without an agent (%s): %d", reason, r.Unattributed[reason]))
	}
	if r.TornBytes > 0 {
		notes = append(notes, fmt.Sprintf("torn tails skipped: %d bytes", r.TornBytes))
	}
	if l := r.Live; l != nil {
		notes = append(notes, fmt.Sprintf("live: connected=%t pace=%dms acks=%d (in %d messages) dropped-acks=%d inbox-overflow=%d sync-overflow=%d publish-errors=%d",
			l.Connected, l.Pace, l.AcksSent, l.AckMessages, l.AcksDropped, l.InboxOverflow, l.SyncOverflow, l.PublishErrors))
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

func statusText(s *StatusReport) string {
	if s == nil {
		return "-"
	}
	state := "offline"
	if s.Online {
		state = "online"
	}
	return fmt.Sprintf("%s cursor=%d outbox=%d", state, s.Cursor, s.Outbox)
}
