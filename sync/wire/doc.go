// Package wire owns the bytes of protocol v1 between a store agent and the
// central CDP (shared/PROTOCOL.md): the Go types of every message, their
// deterministic CBOR, their validation, the authenticity of downlink
// messages (COSE_Sign1 with Ed25519), the topic names, and UUIDv7 message
// ids. The agent's MQTT link and the reference central cmd/cdpsim both build
// on it, so the two sides cannot drift apart.
//
// # Basics
//
// Uplink messages (EventBatch, SyncRequest, AgentStatus) are plain CBOR:
// EncodeXxx on the agent, DecodeXxx on the central. Downlink messages
// (Change, Ack, ChangeSet) are signed: SignXxx on the central, VerifyXxx on
// the agent, which returns a value only once the signature holds. There is
// deliberately no exported decoder of an unsigned downlink message.
//
// Every encoder validates before it encodes, and every decoder validates
// what it decoded, with the same rules: what one side sends, the other
// accepts. Errors match the sentinels in errors.go (ErrTooLarge,
// ErrMalformed, ErrBadVersion, ErrInvalid, ErrBadSignature, ...) and name
// at most a field path, never a value.
//
// Encoding is Core Deterministic (RFC 8949 section 4.2.1): the same message
// always has the same bytes. Times are int64 milliseconds since the Unix
// epoch, never time.Time, which the deterministic options would cut to whole
// seconds. The protocol version "v" is written and checked here; the Go
// types have no field for it.
//
// Decoding is defensive: sizes are checked before parsing (MaxEventSize,
// MaxEventBatchSize, MaxChangeSize, MaxChangeSetSize, ...), arrays and maps
// are bounded by MaxItems and nesting by MaxNesting, and duplicate map keys,
// indefinite lengths, tags, invalid UTF-8, NaN and infinities are refused.
// Unknown map keys are ignored, so a later v1 minor may add fields; keys the
// protocol lists without "?" are required, and a required key holding null
// counts as missing.
//
// # What this package must never do
//
// No network, no MQTT, no store, no logging, no clock beyond message ids: it
// turns values into bytes and bytes into values. The key-file helpers are
// its only file access. Sequence rules (apply only cursor+1, drop
// duplicates, hold gaps, refuse a snapshot older than the cursor) belong to
// the link, which sees the cursor; this package only guarantees that what it
// returns is authentic and well formed.
//
// # Invariants its tests protect
//
// Invariant 7, authentic downlink: VerifyChange, VerifyAck and
// VerifyChangeSet return a value only for a COSE_Sign1 with alg EdDSA whose
// signature verifies with a trusted key over that exact payload and the
// receiver's own topic. Unsigned input, another algorithm, a tampered
// payload or header, an unknown key, a detached payload or another scope all
// fail, with errors that match ErrBadSignature.
//
// Sizes: nothing larger than its limit is parsed, and no encoder produces a
// message its peer would refuse as too large.
//
// The fuzz targets check that no input panics and that anything accepted
// re-encodes to bytes that decode again to the same bytes. Golden vectors
// in testdata/golden.txt make any change of encoding visible in review
// (go test -run TestGolden -update rewrites them).
//
// # Where this package departs from PROTOCOL.md
//
// PROTOCOL.md asks for the nearest sound variant where it is unsound or
// vague. These are the choices made, each also noted on the code:
//
//  1. Signatures are bound to the receiver's topic. The COSE external AAD is
//     the topic name (for example cdp/v1/acme/down/s1/changes) built from
//     the receiver's Scope. Without it, a change signed for one store would
//     verify at every store, and an Ack could be replayed as another
//     agent's. A central that is not cdpsim must sign the same way.
//  2. The kid header is the first 8 bytes of SHA-256 of the raw public key
//     (see KeyID), so configuration lists keys, not names. A message
//     without kid is tried against every trusted key; a kid the Verifier
//     does not hold is refused (ErrUnknownKey). Only the tagged COSE_Sign1
//     form is accepted, and a crit header is refused.
//  3. Ids: tenant, store, agent and also device and profile ids, purpose
//     names and attribute names match [A-Za-z0-9_-]{1,64}: they appear in
//     topics, logs and metrics. Event names (track "event", policy events)
//     may hold spaces ("Order Completed"): 1 to 256 bytes, no control
//     characters. A messageId must be lowercase canonical UUIDv7 text, since
//     the central deduplicates on it. An ident is exactly 32 bytes
//     (HMAC-SHA256), decoded into the Ident array type.
//  4. Events follow the Segment Spec: a track names its event; every event
//     has a userId or an anonymousId (an event whose identity is stripped
//     needs a fresh anonymousId); an alias has previousId and userId. An
//     EventBatch holds at least one event and no more events than
//     last-first+1; the events' context ids are not compared with the
//     batch's, so renaming an agent cannot strand its outbox.
//  5. An Ack range is [first, last] on the wire and Range in Go (the
//     library would silently accept a 3-element array as [2]uint64). It
//     acknowledges every outbox entry in first..last, so a central may merge
//     adjacent batches. A replayed Ack is harmless only while outbox
//     sequence numbers are never reused for an agent id.
//  6. ChangeSet, unbounded in PROTOCOL.md, is at most MaxChangeSetSize
//     (4 MiB) and MaxItems changes, each change at most MaxChangeSize. In a
//     run, seqs ascend within from..to (gaps are the link's business); an
//     empty run has to >= from-1. In a snapshot chunk every seq is <= to,
//     the seq the snapshot stands at, in any order.
//  7. Messages have bounds PROTOCOL.md leaves open: an Ack at most 64 KiB,
//     a SyncRequest and an AgentStatus at most 4 KiB; SyncRequest.from >= 1
//     and every change's seq >= 1; times (sentAt, originalTimestamp, at,
//     expires) are positive; a policy maps events only to purposes it
//     declares; a consent change names at least one purpose.
package wire
