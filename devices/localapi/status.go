package localapi

import "time"

// Status is the body of GET /v1/status: what `storectl status` shows a
// technician. The daemon fills it through StatusSource; the server adds its
// own rejects (source "api").
//
// It is plain data and holds no personal data: counts, times, states,
// reasons, paths and addresses, never an identifier, a user id or an event.
// Every field is optional (omitted when zero), so that an older storectl
// reads a newer daemon's status and the other way round: readers ignore
// what they do not know and treat what is missing as unknown.
type Status struct {
	Version       string    `json:"version,omitempty"` // the daemon's build
	Kind          string    `json:"kind,omitempty"`    // device kind: pos, kiosk, speaker, gateway
	Tenant        string    `json:"tenant,omitempty"`  // names on the wire
	StoreID       string    `json:"storeId,omitempty"`
	AgentID       string    `json:"agentId,omitempty"`
	Now           time.Time `json:"now,omitzero"` // the daemon's clock when the status was taken
	StartedAt     time.Time `json:"startedAt,omitzero"`
	UptimeSeconds int64     `json:"uptimeSeconds,omitempty"`

	Link     LinkStatus      `json:"link,omitzero"`      // the MQTT link to the central
	Outbox   OutboxStatus    `json:"outbox,omitzero"`    // events waiting to go up
	Changes  ChangesStatus   `json:"changes,omitzero"`   // changes coming down
	Cache    CacheStatus     `json:"cache,omitzero"`     // the consent-scoped profile cache
	Store    StoreStatus     `json:"store,omitzero"`     // the database file
	Scanners []ScannerStatus `json:"scanners,omitempty"` // serial scanners, in config order

	// Rejects are input refused since the daemon started, by source and
	// reason: scanner frames, identifiers, API requests, downlink messages.
	Rejects []RejectStatus `json:"rejects,omitempty"`

	// Counters are the daemon's counters since start, by name
	// (agent.Counters and the others); names are stable across versions.
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// LinkStatus is the state of the link to the central CDP.
type LinkStatus struct {
	// State is "connected", "connecting", "offline" (waiting to retry) or
	// "disabled" (no broker configured).
	State       string    `json:"state,omitempty"`
	Broker      string    `json:"broker,omitempty"` // host:port, never credentials
	LastConnect time.Time `json:"lastConnect,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// ClockSkewMs is the central's clock minus ours at the last status
	// exchange, for `storectl doctor`.
	ClockSkewMs *int64 `json:"clockSkewMs,omitempty"`
}

// OutboxStatus is the queue of events waiting for the central's ack.
type OutboxStatus struct {
	Records   uint64      `json:"records,omitempty"` // both classes
	Bytes     uint64      `json:"bytes,omitempty"`
	Critical  ClassStatus `json:"critical,omitzero"`
	Telemetry ClassStatus `json:"telemetry,omitzero"`
	// MaxRecords and MaxBytes are the bounds, for "how full".
	MaxRecords uint64 `json:"maxRecords,omitempty"`
	MaxBytes   uint64 `json:"maxBytes,omitempty"`
	// OldestAt is when the oldest queued event happened; OldestAgeSeconds
	// is its age at Status.Now.
	OldestAt         time.Time `json:"oldestAt,omitzero"`
	OldestAgeSeconds int64     `json:"oldestAgeSeconds,omitempty"`
	Shed             uint64    `json:"shed,omitempty"`     // telemetry shed to make room
	Rejected         uint64    `json:"rejected,omitempty"` // appends refused as full
	// LastAck is when the central last acknowledged events, up to
	// LastAckSeq.
	LastAck    time.Time `json:"lastAck,omitzero"`
	LastAckSeq uint64    `json:"lastAckSeq,omitempty"`
}

// ClassStatus is one outbox class's share.
type ClassStatus struct {
	Records uint64 `json:"records,omitempty"`
	Bytes   uint64 `json:"bytes,omitempty"`
}

// ChangesStatus is where the store stands in the central's change stream.
type ChangesStatus struct {
	Cursor      uint64    `json:"cursor,omitempty"` // last change applied
	Latest      uint64    `json:"latest,omitempty"` // the central's newest, as last heard
	Lag         uint64    `json:"lag,omitempty"`    // Latest - Cursor
	LastApplied time.Time `json:"lastApplied,omitzero"`
}

// CacheStatus is the size of the profile cache.
type CacheStatus struct {
	Profiles    uint64 `json:"profiles,omitempty"`
	Identifiers uint64 `json:"identifiers,omitempty"`
	MaxProfiles uint64 `json:"maxProfiles,omitempty"`
}

// StoreStatus is the database file.
type StoreStatus struct {
	Path      string    `json:"path,omitempty"`
	FileBytes int64     `json:"fileBytes,omitempty"`
	Compacted time.Time `json:"compacted,omitzero"` // last compaction
}

// ScannerStatus is one serial scanner port. It never holds a scanned code.
type ScannerStatus struct {
	Name        string            `json:"name,omitempty"`
	Path        string            `json:"path,omitempty"`
	Connected   bool              `json:"connected,omitempty"`
	Frames      uint64            `json:"frames,omitempty"`
	LastFrame   time.Time         `json:"lastFrame,omitzero"` // last good frame
	Rejects     map[string]uint64 `json:"rejects,omitempty"`  // by reason
	LastError   string            `json:"lastError,omitempty"`
	LastErrorAt time.Time         `json:"lastErrorAt,omitzero"`
}

// RejectStatus counts one kind of refused input.
type RejectStatus struct {
	Source string    `json:"source,omitempty"` // "api", "identify", "scanner:till-1", "downlink"
	Reason string    `json:"reason,omitempty"` // a code or reason, such as "bad_check_digit"
	Count  uint64    `json:"count,omitempty"`
	Last   time.Time `json:"last,omitzero"` // the most recent one
}
