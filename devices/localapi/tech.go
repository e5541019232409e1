package localapi

import (
	"context"
	"time"
)

// Technician is what the technician routes (storectl's doctor, outbox,
// sync, compact, lookup, bundle and live scan test) need from the daemon.
// The daemon implements it over its store, agent, link and scanners; the
// server only checks requests and writes answers.
//
// Every value it returns is for a technician's eyes: counts, states,
// reasons, paths, masked identifiers and short keyed-hash prefixes, never an
// identifier, a user id, an attribute value or an event's properties.
type Technician interface {
	// Doctor runs every check and reports each.
	Doctor(ctx context.Context) (DoctorReport, error)
	// Outbox reports the outbox's totals and bounds.
	Outbox(ctx context.Context) (OutboxReport, error)
	// PeekOutbox describes the n oldest queued events, masked.
	PeekOutbox(ctx context.Context, n int) (OutboxPeek, error)
	// Resync asks the central for every change after the cursor. It fails
	// with ErrSyncDisabled when the agent has no link.
	Resync(ctx context.Context) (ResyncResult, error)
	// Compact rewrites the store file; progress, if not nil, is called
	// with records copied and the total.
	Compact(ctx context.Context, progress func(done, total uint64)) (CompactResult, error)
	// Lookup is a masked, purpose-scoped view of one customer, recorded in
	// the audit log without the identifier.
	Lookup(ctx context.Context, req LookupRequest) (LookupResult, error)
	// Logs returns the n most recent log lines, oldest first.
	Logs(ctx context.Context, n int) (LogLines, error)
	// Config returns the configuration in force, secrets removed.
	Config(ctx context.Context) (ConfigView, error)
	// WatchScans calls emit with every frame read on the port named port
	// (its name or its device path), as the daemon sees it, until ctx ends
	// or emit fails. It fails at once with ErrUnknownPort when the daemon
	// owns no such port. It returns nil when ctx ends.
	WatchScans(ctx context.Context, port string, emit func(ScanEvent) error) error
}

// CheckStatus is the outcome of one doctor check.
type CheckStatus string

// Check outcomes. Only CheckFail makes `storectl doctor` exit 1.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn" // works, but needs attention
	CheckFail CheckStatus = "fail" // broken: the agent cannot do its job
	CheckSkip CheckStatus = "skip" // not applicable, or not known (Summary says which)
)

// Check is one doctor check.
type Check struct {
	// Name is stable across versions: "daemon", "config", "key_files",
	// "disk", "clock", "database", "port:<name>", "broker", "tls",
	// "outbox", "cache".
	Name    string      `json:"name"`
	Status  CheckStatus `json:"status"`
	Summary string      `json:"summary"`           // one line
	Details []string    `json:"details,omitempty"` // one line each, such as every config error
	Hint    string      `json:"hint,omitempty"`    // what to do about it
}

// DoctorReport is the body of GET /v1/doctor, and `storectl doctor --json`.
type DoctorReport struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"` // "daemon", or "storectl" when it ran without the daemon
	Checks []Check   `json:"checks"`
}

// Failed reports whether any check failed.
func (r DoctorReport) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			return true
		}
	}
	return false
}

// OutboxReport is the body of GET /v1/outbox: the outbox's totals, bounds
// and sequence range, and the link that drains it.
type OutboxReport struct {
	OutboxStatus
	FirstSeq uint64 `json:"firstSeq,omitempty"` // oldest queued event
	LastSeq  uint64 `json:"lastSeq,omitempty"`  // last sequence number handed out
	// Link is the state of the link that drains the outbox ("connected",
	// "disabled", ...), or "unknown" when read without the daemon.
	Link string `json:"link,omitempty"`
}

// OutboxPeek is the body of GET /v1/outbox/peek.
type OutboxPeek struct {
	Entries []OutboxEntry `json:"entries"`
	More    bool          `json:"more,omitempty"` // more events are queued after these
}

// OutboxEntry describes one queued event without its content: which event
// it is and whether it carries identity, never the identity itself, nor any
// property or trait value.
type OutboxEntry struct {
	Seq        uint64    `json:"seq"`
	Class      string    `json:"class"`             // critical or telemetry
	Purpose    string    `json:"purpose,omitempty"` // the purpose it was captured under
	Type       string    `json:"type,omitempty"`    // track, identify, alias
	Event      string    `json:"event,omitempty"`   // a track event's name
	At         time.Time `json:"at,omitzero"`       // when it happened
	AgeSeconds int64     `json:"ageSeconds"`
	Bytes      int       `json:"bytes"` // encoded size
	// UserID and AnonymousID say whether the event carries one.
	UserID      bool `json:"userId"`
	AnonymousID bool `json:"anonymousId"`
	// Ref is a short keyed hash of the id the event carries (the userId,
	// else the anonymousId): the same customer has the same Ref in every
	// storectl output, and the id cannot be read back from it.
	Ref        string `json:"ref,omitempty"`
	Properties int    `json:"properties"` // how many, never their values
	Traits     int    `json:"traits"`
	// Error says why the stored event could not be read; the other fields
	// but Seq, Class, Purpose and At are then empty.
	Error string `json:"error,omitempty"`
}

// ResyncResult is the body of POST /v1/sync/resync.
type ResyncResult struct {
	Requested bool   `json:"requested"`
	Cursor    uint64 `json:"cursor"` // changes after it are asked for
	Link      string `json:"link"`   // the link's state: the request goes out when it is connected
}

// CompactResult is the last line of POST /v1/compact, and what `storectl
// compact --json` prints.
type CompactResult struct {
	Path        string `json:"path"`
	BeforeBytes int64  `json:"beforeBytes"`
	AfterBytes  int64  `json:"afterBytes"`
	Records     uint64 `json:"records"` // records copied
	TookMs      int64  `json:"tookMs"`
}

// CompactProgress is a progress line of POST /v1/compact.
type CompactProgress struct {
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
}

// compactLine is one NDJSON line of POST /v1/compact: progress lines, then
// one result or one error.
type compactLine struct {
	Progress *CompactProgress `json:"progress,omitempty"`
	Result   *CompactResult   `json:"result,omitempty"`
	Error    *APIError        `json:"error,omitempty"`
}

// LookupRequest is the body of POST /v1/lookup: a scan, or a kind and a
// value, and the purpose the support case is about.
type LookupRequest struct {
	Scan    string `json:"scan,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Value   string `json:"value,omitempty"`
	Purpose string `json:"purpose"`
}

// LookupResult is a masked, purpose-scoped view of one customer, for a
// support case: whether the agent knows them, what the purpose may do,
// which attributes it holds for the purpose (names, never values) and the
// consent decisions.
type LookupResult struct {
	// Identifier is the identifier looked up, masked (ident.ID.Mask), and
	// Kind its kind.
	Identifier string `json:"identifier"`
	Kind       string `json:"kind"`
	Purpose    string `json:"purpose"`
	Known      bool   `json:"known"`
	// Ref is a short keyed hash of the profile's id (see OutboxEntry.Ref).
	Ref        string `json:"ref,omitempty"`
	Local      bool   `json:"local,omitempty"`      // enrolled here, not yet known to the central
	Permitted  bool   `json:"permitted"`            // the purpose may process this customer
	Restricted bool   `json:"restricted,omitempty"` // processing restricted: recognised, nothing shown
	Pending    bool   `json:"pending,omitempty"`    // consent not decided yet
	// Purposes are every purpose of the policy, with the customer's
	// decision and whether it is permitted.
	Purposes []LookupPurpose `json:"purposes"`
	// Attributes are those the purpose may see, values masked.
	Attributes []LookupAttribute `json:"attributes"`
	// OtherAttributes counts the attributes held for other purposes.
	OtherAttributes int `json:"otherAttributes,omitempty"`
	Identifiers     int `json:"identifiers,omitempty"` // kept only as keyed hashes
	QueuedEvents    int `json:"queuedEvents,omitempty"`
	HeldEvents      int `json:"heldEvents,omitempty"`
	// Audited says the lookup was recorded in the audit log.
	Audited bool `json:"audited"`
}

// LookupPurpose is one purpose in a LookupResult.
type LookupPurpose struct {
	Purpose   string `json:"purpose"`
	Basis     string `json:"basis"`
	Status    string `json:"status,omitempty"` // granted, denied, withdrawn, objected, pending; empty: none recorded
	Source    string `json:"source,omitempty"` // local or central
	At        int64  `json:"at,omitempty"`     // ms since the epoch
	Permitted bool   `json:"permitted"`
}

// LookupAttribute is one attribute in a LookupResult, its value masked.
type LookupAttribute struct {
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Basis   string `json:"basis,omitempty"`
	Type    string `json:"type"`  // string, number, bool, object, list, null
	Value   string `json:"value"` // always masked: "•••"
}

// LogLines is the body of GET /v1/logs: the daemon's most recent log lines,
// oldest first, from a ring buffer that masks anything that looks like an
// identifier.
type LogLines struct {
	Lines []string `json:"lines"`
	// Dropped counts the lines written since start that no longer fit.
	Dropped uint64 `json:"dropped,omitempty"`
}

// ConfigView is the body of GET /v1/config: the configuration in force as
// TOML, every default filled in, secrets removed. Paths of key files stay;
// their contents are never read into it.
type ConfigView struct {
	Path string `json:"path"` // the file it was loaded from, or the embedded default's name
	TOML string `json:"toml"`
}

// Scan events: the "event" of a ScanEvent.
const (
	ScanWatching = "watching" // first line: the port is watched
	ScanFrame    = "scan"     // a good frame, decoded
	ScanReject   = "reject"   // a frame the reader rejected (noise, too long, ...)
)

// ScanEvent is one line of GET /v1/scans, and of `storectl scan --json`: a
// frame read on a port, decoded, its identifier masked. It never holds the
// scanned code.
type ScanEvent struct {
	Event     string    `json:"event"` // ScanWatching, ScanFrame or ScanReject
	At        time.Time `json:"at,omitzero"`
	Port      string    `json:"port,omitempty"`
	Path      string    `json:"path,omitempty"`
	Symbology string    `json:"symbology,omitempty"` // from the AIM identifier, when the port sends one
	Bytes     int       `json:"bytes,omitempty"`     // bytes the frame took from the line
	// Reject is the frame reader's reason for a ScanReject: noise,
	// too_long, half_frame, empty, missing_aim, duplicate. Count is how
	// many such rejects the line holds (the daemon reports them in batches).
	Reject string `json:"reject,omitempty"`
	Count  uint64 `json:"count,omitempty"`
	// Valid says the code is a usable customer identifier; Kind is its kind
	// (or the kind it was read as), Identifier its masked form, Reason why
	// it is not usable (an ident.Reason such as bad_check_digit).
	Valid      bool   `json:"valid"`
	Kind       string `json:"kind,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// CheckDigit is "ok" or "bad" for a loyalty number whose program has a
	// check digit, empty otherwise.
	CheckDigit string `json:"checkDigit,omitempty"`
	// Outcome is what the daemon made of the scan: known, unknown, invalid,
	// blocked, recorded, refused, error. Empty when storectl read the port
	// itself.
	Outcome   string `json:"outcome,omitempty"`
	Permitted bool   `json:"permitted,omitempty"`
}
