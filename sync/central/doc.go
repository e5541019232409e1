// Package central is the reference central CDP of protocol v1: the peer
// that cmd/cdpsim runs for the integration tests, the benchmarks and the
// demo. It speaks the protocol from the central's side, through sync/wire,
// over an MQTT broker (paho), and keeps what it received in files that
// outlive the process.
//
// # Basics
//
// New opens a data directory and rebuilds the state from it; Run connects,
// subscribes to the tenant's uplink (wire.UplinkFilter) and serves until
// its context ends; Close releases the files. It owns:
//
//   - The uplink journal. Each EventBatch is accepted when first <=
//     lastAccepted+1: its never-seen events are recorded, duplicates
//     (repeated messageIds) dropped and counted, lastAccepted set to
//     max(lastAccepted, last), and a signed Ack of [first, last] sent. A
//     batch with first > lastAccepted+1 is a gap: counted, neither recorded
//     nor acknowledged. Invalid messages are counted by reason.
//   - The change log of each store: a store-wide seq, signed changes
//     appended and fsynced before they are published (Publish).
//   - Sync replies: a run of logged changes, or a snapshot (Snapshot) of
//     the baseline of N synthetic customers (Customers) with every logged
//     change laid over it, streamed in chunks with flat memory.
//   - The pace put in every Ack (SetPace), fault hooks (PublishRaw,
//     DropAcks), and a loopback-only HTTP control API (ControlServer,
//     ControlClient).
//
// ReadReport and ReadEvents read a data directory without keys or broker,
// while cdpsim runs or after it ended: they are how tests assert "every
// acknowledged event present once, in order".
//
// # Durability and concurrency
//
// One goroutine, the recorder, owns the journal, the seen-id set and every
// agent's lastAccepted. The paho handler never blocks: it hands each
// message to the recorder through a channel. The recorder commits in
// groups: the records of every message already waiting, one fsync, then
// the Acks and the broker PUBACKs. So nothing is acknowledged before it is
// durable, and a batch the central crashed on is delivered again (the MQTT
// session is persistent) or re-sent by its agent. SyncRequests go to a few
// workers, each agent always to the same one, so a long snapshot never
// stalls the acks.
//
// # Caveats
//
//  1. Out of order is counted with a sounder rule than "every new event of
//     a batch that starts at or below lastAccepted": agents legitimately
//     re-send re-chunked batches that overlap an accepted one. A new event
//     counts as out of order when it comes before a duplicate in its batch,
//     or when more new events follow the last duplicate than the batch's
//     range leaves room for above lastAccepted. Without per-event sequence
//     numbers, that is all the central can prove.
//  2. One Ack carries every batch of one agent accepted in one commit
//     group, one range per batch exactly as sent: fewer signatures under
//     load, and no agent needs to match merged ranges.
//  3. A SyncRequest whose from is beyond the current seq gets the empty run
//     {from: seq+1, to: seq}: sync/wire refuses a run with to < from-1.
//  4. The seen-id set is in memory: about 40 bytes per event received.
//  5. The data directory is bound to its tenant, baseline (customers, seed)
//     and key (cdpsim.json); opening it with others fails with
//     ErrDataMismatch rather than serve agents a history that changed.
//
// # What this package must never do
//
// Never acknowledge a batch before its records are fsynced; never block in
// a paho handler; never log event contents, identifiers or keys (agent and
// store ids, seqs and counts only); never send a clear identifier (the
// synthetic customers' loyalty numbers and e-mails exist for test drivers;
// profiles carry only their keyed hashes); never listen for control
// requests beyond loopback.
//
// # Invariants its tests protect
//
// Against a real mosquitto and real paho clients playing an agent: batches
// are acknowledged once durable, duplicates and overlapping re-sends are
// dropped without counting them out of order, gaps are not acknowledged, a
// reordering agent is caught, and a restart keeps the seen ids and
// lastAccepted. Every change, run and snapshot chunk verifies with
// wire.VerifyChange or wire.VerifyChangeSet under the receiver's scope; a
// snapshot keeps each customer's consent before its profile in one chunk,
// respects the size limits, and omits erased customers. A million
// customers snapshot with flat memory. Every decoder of outside input (data
// files, control API bodies) has a fuzz target.
package central
