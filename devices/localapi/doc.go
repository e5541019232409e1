// Package localapi is the agent's local HTTP/JSON API, the way POS software,
// kiosks and the technician CLI (storectl) reach the daemon on the device:
// the server that turns requests into calls on the agent core, and the
// [Client] that storectl and tests use.
//
// # Basics
//
// A [Server] serves the routes documented in openapi.yaml, all under /v1:
// identify a scan or a typed identifier for a purpose, capture an event,
// the preference centre (what is held and why, consent, rights), enrolment,
// and status; and the technician's routes for storectl (doctor, outbox and
// a masked peek at it, resync, compaction, lookup, logs, config, a live
// scan stream), which call the daemon's [Technician]. It calls the agent core through [Backend], the subset of
// *agent.Agent it needs, and the daemon's state through [StatusSource].
// [Server.Run] serves one listener until its context ends; run it once per
// listener, on a unix socket ([ListenUnix], default [DefaultSocket]) and on
// a loopback TCP port ([ListenTCP]), as [Config] says.
//
// Every request body is JSON, bounded in size (64 KiB, 40 KiB for an
// event), decoded strictly (no unknown field, one value, the right types)
// and validated before the agent sees it. Every error is JSON,
// {"code": "...", "reason": "..."}, with the 4xx or 5xx that fits; the codes
// are the Code constants. A 202 from POST /v1/events means the event is
// fsynced in the outbox.
//
// The [Client]'s zero value talks to the daemon on [DefaultSocket]. Every
// call goes through one private path; a refusal comes back as an *[APIError]
// (with IsOutboxFull and the other IsXxx helpers, and errors.Is against the
// agent's own sentinels), a daemon that cannot be reached as a
// *[ConnectError] that says what to do.
//
// # What it must never do
//
//   - Listen beyond loopback without a bearer token: [Config.Validate]
//     refuses such a config, and [Server.Run] refuses such a listener.
//     When a token is configured, every request over TCP must carry it;
//     the unix socket is guarded by its file mode (0660) instead.
//   - Answer a web page: a request with an Origin or Referer header is
//     refused (403), and so is, on a listener without a token, a Host
//     header that is not local (DNS rebinding). A browser in a kiosk must
//     not reach the API of the agent behind it.
//   - Log or echo personal data. Logs hold the method, the route pattern
//     (never the raw path, which holds user ids), the status, the duration
//     and the error code; never a body, an identifier, a user id or a
//     device id. Error reasons are fixed text or an identifier's
//     [ident.Reason], never a value from the request.
//   - Acknowledge an event before it is durable: 202 is written only after
//     agent.Capture returned, which is after the outbox's fsync.
//
// # Invariants the tests protect
//
// Invariant 1 of shared/DESIGN.md, durable before acknowledged: after a 202
// from POST /v1/events, a copy of the database file taken at once, and the
// file closed and reopened, both hold the event (TestEventDurableOn202).
// Invariant 10, no PII in diagnostics: seeded e-mail addresses, names and
// loyalty numbers appear in no response body and no log line, on any route,
// error responses included (TestNoPersonalDataInResponsesOrLogs). Every
// body decoder is fuzzed (FuzzDecodeIdentify and the others): it never
// panics, and what it accepts satisfies the rules it states.
//
// # Caveats
//
//  1. Go's encoding/json matches field names case-insensitively: "Purpose"
//     is read as "purpose". Clients should send the names openapi.yaml
//     gives; the server does not rely on the case.
//  2. Numbers in properties and traits keep their kind: an integer that
//     fits in int64 stays an integer, anything else becomes a float64.
//  3. Run does not close the listener's socket file until it returns; a
//     daemon killed with SIGKILL leaves it behind, and [ListenUnix] removes
//     it at the next start (after checking that nobody answers on it).
package localapi
