package wire

import (
	"fmt"
	"strconv"

	"github.com/storeagent/storeagent/store/cborhead"

	"github.com/fxamacker/cbor/v2"

	"github.com/storeagent/storeagent/agent/event"
)

// validator is what every message type provides.
type validator interface{ Validate() error }

// EventType is the Segment message type of an Event.
type EventType string

// The event types of protocol v1.
const (
	EventTrack    EventType = "track"
	EventIdentify EventType = "identify"
	EventAlias    EventType = "alias"
)

// EventRightsRequestApplied is the name of the track event an agent sends
// once it has applied an erase, restrict or consent change: the central's
// proof that this recipient complied. Its properties are kind, seq, profile.
const EventRightsRequestApplied = "Rights Request Applied"

// Event is one Segment-style message as it travels in an EventBatch. Field
// names follow the Segment Spec, so a collector can take an event after a
// plain CBOR-to-JSON step.
type Event struct {
	// MessageID is a UUIDv7 in lowercase canonical text (see
	// event.NewID); the central drops repeats, which makes re-sending safe.
	MessageID string `cbor:"messageId"`
	// Type is track, identify or alias.
	Type EventType `cbor:"type"`
	// Event names a track event; it is empty for identify and alias.
	Event string `cbor:"event,omitempty"`
	// UserID is the known customer, AnonymousID a provisional one; an
	// event has at least one of them. Both are PII: never log them.
	UserID      string `cbor:"userId,omitempty"`
	AnonymousID string `cbor:"anonymousId,omitempty"`
	// PreviousID is the id an alias merges into UserID.
	PreviousID string `cbor:"previousId,omitempty"`
	// OriginalTimestamp is the device clock at capture, in milliseconds
	// since the Unix epoch.
	OriginalTimestamp int64 `cbor:"originalTimestamp"`
	// Properties of a track and Traits of an identify are free-form values
	// JSON can hold, at most MaxValueNesting deep.
	Properties map[string]any `cbor:"properties,omitempty"`
	Traits     map[string]any `cbor:"traits,omitempty"`
	// Context says where and under which purpose the event was captured.
	Context Context `cbor:"context"`
}

// Context says where an event was captured and under which purpose and
// consent.
type Context struct {
	// Store, Agent and Device are ids: a device id is never a customer's.
	Store  string `cbor:"store"`
	Agent  string `cbor:"agent"`
	Device string `cbor:"device"`
	// Purpose is the purpose the event is processed for.
	Purpose string `cbor:"purpose"`
	// Consent is the consent state at capture.
	Consent Consent `cbor:"consent"`
}

// Consent is the consent state an event was captured under, keyed by
// purpose, as Segment's consent object has it.
type Consent struct {
	// CategoryPreferences maps a purpose to whether it is permitted.
	CategoryPreferences map[string]bool `cbor:"categoryPreferences"`
}

// EventBatch carries events drained from an agent's outbox.
type EventBatch struct {
	// Agent and Store identify the sender, as in its topic.
	Agent string `cbor:"agent"`
	Store string `cbor:"store"`
	// First and Last are the outbox sequence numbers of the batch. The
	// events need not fill first..last: shed telemetry leaves holes.
	First uint64 `cbor:"first"`
	Last  uint64 `cbor:"last"`
	// SentAt is the device clock when the batch is sent, in milliseconds
	// since the Unix epoch, so the central can correct clock skew.
	SentAt int64 `cbor:"sentAt"`
	// Events are in capture order, at least one.
	Events []Event `cbor:"events"`
}

// Range is an inclusive run of outbox sequence numbers, [first, last] on
// the wire.
type Range struct {
	_ struct{} `cbor:",toarray"`
	// First and Last bound the run, First <= Last.
	First uint64
	Last  uint64
}

// Ack acknowledges event batches. A range acknowledges every outbox entry
// from First to Last, so a central may merge the ranges of adjacent batches.
type Ack struct {
	// Agent is the agent whose batches are acknowledged.
	Agent string `cbor:"agent"`
	// Ranges acknowledge outbox entries, in any order.
	Ranges []Range `cbor:"ranges"`
	// Pace is how many milliseconds the agent waits between batches until
	// the next Ack says otherwise; 0 means full speed.
	Pace uint64 `cbor:"pace,omitempty"`
	// At is the central's clock when it sent the Ack (ms since the
	// epoch), so an agent can tell how far its own clock is off: the
	// events' originalTimestamp are device clock. An addition to
	// PROTOCOL.md's Ack, optional both ways.
	At int64 `cbor:"at,omitempty"`
}

// SyncRequest asks the central for the changes with seq >= From.
type SyncRequest struct {
	// Agent is the agent asking.
	Agent string `cbor:"agent"`
	// From is the first seq wanted: the agent's cursor + 1.
	From uint64 `cbor:"from"`
}

// AgentStatus is an agent's retained presence message, and its MQTT will
// with Online false.
type AgentStatus struct {
	// Agent and Store identify the agent, as in its topic.
	Agent string `cbor:"agent"`
	Store string `cbor:"store"`
	// Online is false in the MQTT will and in a status sent at shutdown.
	Online bool `cbor:"online"`
	// At is when the status was made, in milliseconds since the Unix epoch.
	At int64 `cbor:"at"`
	// Version is the agent's software version.
	Version string `cbor:"version"`
	// Outbox is how many entries wait in the outbox.
	Outbox uint64 `cbor:"outbox"`
	// Cursor is the seq of the last change applied.
	Cursor uint64 `cbor:"cursor"`
}

// Required keys of each message: the fields PROTOCOL.md lists without "?".
// A test checks them against the struct tags (required = no omitempty).
var (
	eventKeys       = []string{"messageId", "type", "originalTimestamp", "context"}
	eventBatchKeys  = []string{"v", "agent", "store", "first", "last", "sentAt", "events"}
	ackKeys         = []string{"v", "agent", "ranges"}
	syncRequestKeys = []string{"v", "agent", "from"}
	agentStatusKeys = []string{"v", "agent", "store", "online", "at", "version", "outbox", "cursor"}
)

// Validate checks e against the rules of the protocol and of the Segment
// Spec (a track names its event; every event has a userId or an
// anonymousId; an alias has a previousId and a userId). The central applies
// the same rules, so an event that fails here would never be accepted: an
// agent should check before queueing, not only before sending.
func (e Event) Validate() error {
	if !event.ValidID(e.MessageID) {
		return invalid("messageId", "not a lowercase uuidv7")
	}
	if err := e.validateType(); err != nil {
		return err
	}
	if e.OriginalTimestamp <= 0 {
		return invalid("originalTimestamp", "not a positive unix time in ms")
	}
	if err := checkMap("properties", e.Properties); err != nil {
		return err
	}
	if err := checkMap("traits", e.Traits); err != nil {
		return err
	}
	return within("context", e.Context.validate())
}

func (e Event) validateType() error {
	switch e.Type {
	case EventTrack:
		if !validEventName(e.Event) {
			return invalid("event", "track without a valid event name")
		}
	case EventIdentify, EventAlias:
		if e.Event != "" {
			return invalid("event", "only a track names an event")
		}
	default:
		return invalid("type", "not track, identify or alias")
	}
	if e.UserID == "" && e.AnonymousID == "" {
		return invalid("userId", "neither userId nor anonymousId")
	}
	if e.Type == EventAlias && (e.PreviousID == "" || e.UserID == "") {
		return invalid("previousId", "alias without previousId and userId")
	}
	return nil
}

func (c Context) validate() error {
	for _, f := range []struct{ name, value string }{
		{"store", c.Store}, {"agent", c.Agent}, {"device", c.Device}, {"purpose", c.Purpose},
	} {
		if !ValidID(f.value) {
			return invalid(f.name, "not a valid id")
		}
	}
	for purpose := range c.Consent.CategoryPreferences {
		if !ValidID(purpose) {
			return invalid("consent.categoryPreferences", "purpose is not a valid id")
		}
	}
	return nil
}

// Validate checks b's header and every event. The event count may be lower
// than last-first+1 (shed telemetry leaves holes) but never higher.
func (b EventBatch) Validate() error { return b.validate(true) }

// validate checks the batch; the decoder, which has validated each event
// already, passes false for events.
func (b EventBatch) validate(events bool) error {
	if err := b.validateHeader(len(b.Events)); err != nil {
		return err
	}
	if !events {
		return nil
	}
	for i, e := range b.Events {
		if err := e.Validate(); err != nil {
			return within(index("events", i), err)
		}
	}
	return nil
}

// validateHeader checks b's header for a batch of n events.
func (b EventBatch) validateHeader(n int) error {
	if err := validateIDs("agent", b.Agent, "store", b.Store); err != nil {
		return err
	}
	if b.First > b.Last {
		return invalid("first", "greater than last")
	}
	if b.SentAt <= 0 {
		return invalid("sentAt", "not a positive unix time in ms")
	}
	if n == 0 {
		return invalid("events", "empty")
	}
	if uint64(n)-1 > b.Last-b.First {
		return invalid("events", "more events than sequence numbers in first..last")
	}
	return nil
}

// Validate checks a's agent id and that every range has First <= Last.
func (a Ack) Validate() error {
	if !ValidID(a.Agent) {
		return invalid("agent", "not a valid id")
	}
	for i, r := range a.Ranges {
		if r.First > r.Last {
			return invalid(index("ranges", i), "first greater than last")
		}
	}
	return nil
}

// Validate checks r's agent id and that From is at least 1 (the first
// change has seq 1).
func (r SyncRequest) Validate() error {
	if !ValidID(r.Agent) {
		return invalid("agent", "not a valid id")
	}
	if r.From == 0 {
		return invalid("from", "zero")
	}
	return nil
}

// maxVersionLen bounds AgentStatus.Version.
const maxVersionLen = 64

// Validate checks s's ids, its time and its version text.
func (s AgentStatus) Validate() error {
	if err := validateIDs("agent", s.Agent, "store", s.Store); err != nil {
		return err
	}
	if s.At <= 0 {
		return invalid("at", "not a positive unix time in ms")
	}
	if len(s.Version) > maxVersionLen || !validEventName(s.Version) {
		return invalid("version", "not 1 to 64 printable characters")
	}
	return nil
}

// validateIDs checks pairs of field name and value against ValidID.
func validateIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !ValidID(pairs[i+1]) {
			return invalid(pairs[i], "not a valid id")
		}
	}
	return nil
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// EncodeEvent validates e and returns its deterministic CBOR. It fails with
// ErrTooLarge beyond MaxEventSize.
func EncodeEvent(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return encode("event", e, MaxEventSize)
}

// DecodeEvent decodes and validates one event, as an outbox may store it.
func DecodeEvent(data []byte) (Event, error) {
	e, err := decodeValid[Event](data, MaxEventSize, eventKeys)
	if err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// eventBatchWire is an EventBatch on the wire: its events travel as raw
// CBOR so that each is encoded once, measured against MaxEventSize, and
// decoded only after that check.
type eventBatchWire struct {
	V uint64 `cbor:"v"`
	EventBatch
	Events []cbor.RawMessage `cbor:"events"`
}

// EncodeEventBatch validates b and returns its deterministic CBOR. It fails
// with ErrTooLarge when an event exceeds MaxEventSize or the batch exceeds
// MaxEventBatchSize.
func EncodeEventBatch(b EventBatch) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("encode event batch: %w", err)
	}
	w := eventBatchWire{V: ProtocolVersion, EventBatch: b, Events: make([]cbor.RawMessage, len(b.Events))}
	for i, e := range b.Events {
		raw, err := encode("event", e, MaxEventSize)
		if err != nil {
			return nil, fmt.Errorf("encode event batch: %s: %w", index("events", i), err)
		}
		w.Events[i] = raw
	}
	return encode("event batch", w, MaxEventBatchSize)
}

// EncodeEventBatchRaw is EncodeEventBatch for events already encoded, b's
// own Events being ignored. An agent's outbox holds every event as the CBOR
// it was checked and encoded with at capture; decoding a backlog only to
// encode it again would cost most of a drain. Each raw event is checked
// here for size only, not parsed: the caller answers for each being one
// well-formed event (DecodeEvent checks it all), or the central refuses the
// whole batch. (Walking every event here cost a tenth of the agent's drain,
// to catch what the encoder at capture and the outbox's seal already rule
// out; the uplink checks in full a batch the central keeps refusing.)
func EncodeEventBatchRaw(b EventBatch, events [][]byte) ([]byte, error) {
	if err := validateIDs("agent", b.Agent, "store", b.Store); err != nil {
		return nil, fmt.Errorf("encode event batch: %w", err)
	}
	switch {
	case b.First > b.Last:
		return nil, fmt.Errorf("encode event batch: %w", invalid("first", "greater than last"))
	case b.SentAt <= 0:
		return nil, fmt.Errorf("encode event batch: %w", invalid("sentAt", "not a positive unix time in ms"))
	case len(events) == 0:
		return nil, fmt.Errorf("encode event batch: %w", invalid("events", "empty"))
	case uint64(len(events))-1 > b.Last-b.First:
		return nil, fmt.Errorf("encode event batch: %w", invalid("events", "more events than sequence numbers in first..last"))
	}
	size := maxBatchHead + len(b.Agent) + len(b.Store)
	for i, raw := range events {
		if len(raw) > MaxEventSize {
			return nil, fmt.Errorf("encode event batch: %s: %w", index("events", i), ErrTooLarge)
		}
		size += len(raw)
	}
	out := appendEventBatchRaw(make([]byte, 0, size), b, events)
	if len(out) > MaxEventBatchSize {
		return nil, fmt.Errorf("encode event batch: %w: %d bytes, limit %d", ErrTooLarge, len(out), MaxEventBatchSize)
	}
	return out, nil
}

// maxBatchHead bounds what appendEventBatchRaw writes besides the ids and
// the events.
const maxBatchHead = 96

// appendEventBatchRaw appends the batch of b's header and the encoded
// events as the deterministic encoder writes eventBatchWire (keys sorted by
// their encoding: shorter first, then bytewise), without the encoder's
// reflection and its copy and re-check of each event: the events are
// checked once by the caller. TestEncodeEventBatchRawIsDeterministic holds
// it to the encoder's bytes.
func appendEventBatchRaw(dst []byte, b EventBatch, events [][]byte) []byte {
	dst = append(dst, 0xa7) // a map of 7 pairs
	dst = appendText(dst, "v")
	dst = cborhead.Append(dst, 0, ProtocolVersion)
	dst = appendText(dst, "last")
	dst = cborhead.Append(dst, 0, b.Last)
	dst = appendText(dst, "agent")
	dst = appendText(dst, b.Agent)
	dst = appendText(dst, "first")
	dst = cborhead.Append(dst, 0, b.First)
	dst = appendText(dst, "store")
	dst = appendText(dst, b.Store)
	dst = appendText(dst, "events")
	dst = cborhead.Append(dst, 4, uint64(len(events)))
	for _, e := range events {
		dst = append(dst, e...)
	}
	dst = appendText(dst, "sentAt")
	if b.SentAt < 0 {
		return cborhead.Append(dst, 1, uint64(-1-b.SentAt))
	}
	return cborhead.Append(dst, 0, uint64(b.SentAt))
}

func appendText(dst []byte, s string) []byte {
	return append(cborhead.Append(dst, 3, uint64(len(s))), s...)
}

// DecodeEventBatch decodes and validates an EventBatch from an agent. It
// checks the batch against MaxEventBatchSize before parsing and each event
// against MaxEventSize before decoding it.
func DecodeEventBatch(data []byte) (EventBatch, error) {
	b, err := decodeEventBatch(data)
	if err != nil {
		return EventBatch{}, fmt.Errorf("decode event batch: %w", err)
	}
	return b, nil
}

func decodeEventBatch(data []byte) (EventBatch, error) {
	var w eventBatchRaw
	if _, err := decodeMessage(data, MaxEventBatchSize, eventBatchKeys, &w); err != nil {
		return EventBatch{}, err
	}
	b := w.EventBatch
	b.Events = make([]Event, len(w.Events))
	for i, raw := range w.Events {
		e, err := decodeValid[Event](raw, MaxEventSize, eventKeys)
		if err != nil {
			return EventBatch{}, within(index("events", i), err)
		}
		b.Events[i] = e
	}
	return b, b.validate(false)
}

// EncodeAck validates a and returns its deterministic CBOR. A central sends
// it signed: see SignAck.
func EncodeAck(a Ack) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("encode ack: %w", err)
	}
	return encode("ack", struct {
		V uint64 `cbor:"v"`
		Ack
	}{ProtocolVersion, a}, MaxAckSize)
}

// decodeAck decodes the payload of a signed Ack. It is unexported because
// an Ack must not be trusted before its signature is checked: see VerifyAck.
func decodeAck(data []byte) (Ack, error) {
	return decodeValid[Ack](data, MaxAckSize, ackKeys)
}

// EncodeSyncRequest validates r and returns its deterministic CBOR.
func EncodeSyncRequest(r SyncRequest) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("encode sync request: %w", err)
	}
	return encode("sync request", struct {
		V uint64 `cbor:"v"`
		SyncRequest
	}{ProtocolVersion, r}, MaxSyncRequestSize)
}

// DecodeSyncRequest decodes and validates a SyncRequest from an agent.
func DecodeSyncRequest(data []byte) (SyncRequest, error) {
	r, err := decodeValid[SyncRequest](data, MaxSyncRequestSize, syncRequestKeys)
	if err != nil {
		return SyncRequest{}, fmt.Errorf("decode sync request: %w", err)
	}
	return r, nil
}

// EncodeAgentStatus validates s and returns its deterministic CBOR.
func EncodeAgentStatus(s AgentStatus) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("encode agent status: %w", err)
	}
	return encode("agent status", struct {
		V uint64 `cbor:"v"`
		AgentStatus
	}{ProtocolVersion, s}, MaxAgentStatusSize)
}

// DecodeAgentStatus decodes and validates an AgentStatus from an agent.
func DecodeAgentStatus(data []byte) (AgentStatus, error) {
	s, err := decodeValid[AgentStatus](data, MaxAgentStatusSize, agentStatusKeys)
	if err != nil {
		return AgentStatus{}, fmt.Errorf("decode agent status: %w", err)
	}
	return s, nil
}

// decodeValid decodes a message of type T whose wire form is T's own
// fields (plus "v" when keys require it) and validates it.
func decodeValid[T validator](data []byte, limit int, keys []string) (T, error) {
	var v, zero T
	if _, err := decodeMessage(data, limit, keys, &v); err != nil {
		return zero, err
	}
	if err := v.Validate(); err != nil {
		return zero, err
	}
	return v, nil
}
