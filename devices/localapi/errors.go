package localapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// Error codes, the "code" of an error body. Clients branch on them; they
// never change meaning. The HTTP status each comes with is in brackets.
const (
	CodeBadRequest        = "bad_request"            // [400] malformed JSON, unknown field, wrong type, a rule broken
	CodeUnknownPurpose    = "unknown_purpose"        // [400] a purpose the policy does not list
	CodeUnauthorized      = "unauthorized"           // [401] bearer token missing or wrong
	CodeForbidden         = "forbidden"              // [403] Origin/Referer present, a foreign Host, or no permission
	CodeNotFound          = "not_found"              // [404] no such route
	CodeUnknownProfile    = "unknown_profile"        // [404] the cache holds no profile for the userId
	CodeMethodNotAllowed  = "method_not_allowed"     // [405] see the Allow header
	CodeTooLarge          = "too_large"              // [413] the body, or the event once encoded, is too large
	CodeUnsupportedMedia  = "unsupported_media_type" // [415] a body that is not application/json
	CodeInvalidIdentifier = "invalid_identifier"     // [422] reason: an ident.Reason such as bad_check_digit
	CodeBlockedIdentifier = "blocked_identifier"     // [422] a device id or a blocked value, never a customer
	CodeAlreadyEnrolled   = "already_enrolled"       // [409] enrol: the identifier belongs to a profile
	CodeSyncDisabled      = "sync_disabled"          // [409] resync: the agent has no link to the central
	CodeUnknownPort       = "unknown_port"           // [404] scans: the daemon owns no such scanner port
	CodeInternal          = "internal"               // [500] see the agent's log
	CodeOutboxFull        = "outbox_full"            // [503] retry after Retry-After seconds
	CodeUnavailable       = "unavailable"            // [503] the agent is stopping
)

// codes lists every Code constant, for the counters and the tests.
var codes = []string{
	CodeBadRequest, CodeUnknownPurpose, CodeUnauthorized, CodeForbidden, CodeNotFound, CodeUnknownProfile,
	CodeMethodNotAllowed, CodeTooLarge, CodeUnsupportedMedia, CodeInvalidIdentifier, CodeBlockedIdentifier,
	CodeInternal, CodeOutboxFull, CodeUnavailable, CodeAlreadyEnrolled, CodeSyncDisabled, CodeUnknownPort,
}

// Errors a Technician returns for the server to map to their codes; the
// Client's *APIError matches them with errors.Is.
var (
	// ErrSyncDisabled is returned by Technician.Resync when the agent has
	// no link to the central (sync.enabled is false).
	ErrSyncDisabled = errors.New("sync is disabled")
	// ErrUnknownPort is returned by Technician.WatchScans when the daemon
	// owns no scanner port of that name or device path.
	ErrUnknownPort = errors.New("no such scanner port")
)

// outboxRetryAfter is the Retry-After of an outbox_full: long enough for the
// link to drain a batch or two when it is up.
const outboxRetryAfter = 30 * time.Second

// APIError is an error response of the local API: the server builds one for
// every refusal, and the Client returns one for every response that is not
// the expected success. Reason is fixed text, or for an identifier error the
// ident.Reason; it never holds a value from the request.
type APIError struct {
	Status int    `json:"-"`      // the HTTP status
	Code   string `json:"code"`   // a Code constant
	Reason string `json:"reason"` // what is wrong, for a human or a log
	// RetryAfter is the Retry-After of a 503, zero when absent.
	RetryAfter time.Duration `json:"-"`
}

// Error returns "storeagent: <status> <code>: <reason>".
func (e *APIError) Error() string {
	return "storeagent: " + strconv.Itoa(e.Status) + " " + e.Code + ": " + e.Reason
}

// Is lets a client test an *APIError against the sentinel errors of the
// agent core, as it would in process: errors.Is(err, store.ErrOutboxFull),
// errors.Is(err, ident.ErrInvalid), errors.Is(err, agent.ErrUnknownProfile).
func (e *APIError) Is(target error) bool {
	switch target {
	case agent.ErrBadRequest:
		return e.Code == CodeBadRequest
	case agent.ErrUnknownPurpose:
		return e.Code == CodeUnknownPurpose
	case agent.ErrUnknownProfile:
		return e.Code == CodeUnknownProfile
	case agent.ErrAlreadyEnrolled:
		return e.Code == CodeAlreadyEnrolled
	case ident.ErrInvalid:
		return e.Code == CodeInvalidIdentifier || e.Code == CodeBlockedIdentifier
	case ident.ErrBlocked:
		return e.Code == CodeBlockedIdentifier
	case store.ErrOutboxFull:
		return e.Code == CodeOutboxFull
	case event.ErrTooLarge:
		return e.Code == CodeTooLarge
	case ErrSyncDisabled:
		return e.Code == CodeSyncDisabled
	case ErrUnknownPort:
		return e.Code == CodeUnknownPort
	}
	return false
}

func codeOf(err error) string {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Code
	}
	return ""
}

// IsOutboxFull reports whether err says the outbox refused the event: retry
// after APIError.RetryAfter.
func IsOutboxFull(err error) bool { return codeOf(err) == CodeOutboxFull }

// IsInvalidIdentifier reports whether err says the identifier is malformed
// (APIError.Reason says how) or blocked.
func IsInvalidIdentifier(err error) bool {
	c := codeOf(err)
	return c == CodeInvalidIdentifier || c == CodeBlockedIdentifier
}

// IsBlockedIdentifier reports whether err says the identifier is a device id
// or a blocked value: not usable, rather than an unknown customer.
func IsBlockedIdentifier(err error) bool { return codeOf(err) == CodeBlockedIdentifier }

// IsUnknownPurpose reports whether err says the purpose is not in the policy.
func IsUnknownPurpose(err error) bool { return codeOf(err) == CodeUnknownPurpose }

// IsUnknownProfile reports whether err says the cache holds no such profile.
func IsUnknownProfile(err error) bool { return codeOf(err) == CodeUnknownProfile }

// IsBadRequest reports whether err says the request was malformed.
func IsBadRequest(err error) bool { return codeOf(err) == CodeBadRequest }

// IsSyncDisabled reports whether err says the agent has no link to resync.
func IsSyncDisabled(err error) bool { return codeOf(err) == CodeSyncDisabled }

// IsUnknownPort reports whether err says the daemon owns no such scanner
// port: a technician may open the port directly.
func IsUnknownPort(err error) bool { return codeOf(err) == CodeUnknownPort }

// IsUnauthorized reports whether err says the bearer token is missing or
// wrong.
func IsUnauthorized(err error) bool { return codeOf(err) == CodeUnauthorized }

// ConnectError is returned by the Client when it cannot reach the daemon
// at all. Its text tells a technician what to do.
type ConnectError struct {
	Target string // the socket path or TCP address dialled
	Err    error  // the dial error
}

// Error returns a hint: "cannot reach storeagent at <target>: is it
// running? (systemctl status storeagent)", or the permission fix.
func (e *ConnectError) Error() string {
	if errors.Is(e.Err, fs.ErrPermission) {
		return fmt.Sprintf("cannot reach storeagent at %s: permission denied (run as root or as a member of the storeagent group)", e.Target)
	}
	return fmt.Sprintf("cannot reach storeagent at %s: is it running? (systemctl status storeagent)", e.Target)
}

// Unwrap returns the dial error.
func (e *ConnectError) Unwrap() error { return e.Err }

// IsConnectError reports whether err says the daemon could not be reached.
func IsConnectError(err error) bool {
	_, ok := errors.AsType[*ConnectError](err)
	return ok
}

// badRequest is the error of a body or path that breaks a rule. Its reason
// is fixed text: never pass it a value from the request.
func badRequest(reason string) *APIError {
	return &APIError{Status: 400, Code: CodeBadRequest, Reason: reason}
}

// errorOf maps an error of the decoders or the agent core to the response.
// internal is true when the cause is not the request's fault and must be
// logged.
func errorOf(err error) (e *APIError, internal bool) {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e, false
	}
	switch {
	case errors.Is(err, ident.ErrBlocked):
		return &APIError{Status: 422, Code: CodeBlockedIdentifier, Reason: string(ident.ReasonBlocked)}, false
	case errors.Is(err, ident.ErrInvalid):
		return &APIError{Status: 422, Code: CodeInvalidIdentifier, Reason: cmp.Or(string(ident.ReasonOf(err)), "invalid")}, false
	case errors.Is(err, agent.ErrAlreadyEnrolled):
		return &APIError{Status: 409, Code: CodeAlreadyEnrolled, Reason: "the identifier already belongs to a profile: identify it instead"}, false
	case errors.Is(err, agent.ErrUnknownPurpose):
		return &APIError{Status: 400, Code: CodeUnknownPurpose, Reason: "purpose is not in the policy, or not one this request may use"}, false
	case errors.Is(err, agent.ErrUnknownProfile):
		return &APIError{Status: 404, Code: CodeUnknownProfile, Reason: "no profile is held for this userId"}, false
	case errors.Is(err, store.ErrOutboxFull):
		return &APIError{Status: 503, Code: CodeOutboxFull, Reason: "the outbox is full until the link drains it: retry later", RetryAfter: outboxRetryAfter}, false
	case errors.Is(err, event.ErrTooLarge), errors.Is(err, store.ErrRecordTooLarge):
		return &APIError{Status: 413, Code: CodeTooLarge, Reason: "the event is over 32 KiB once encoded"}, false
	case errors.Is(err, agent.ErrBadRequest):
		return badRequest(agentReason(err)), false
	case errors.Is(err, ErrSyncDisabled):
		return &APIError{Status: 409, Code: CodeSyncDisabled, Reason: "sync is disabled in this agent's config: there is no link to resync"}, false
	case errors.Is(err, ErrUnknownPort):
		return &APIError{Status: 404, Code: CodeUnknownPort, Reason: "the daemon owns no scanner port of that name or path"}, false
	case errors.Is(err, store.ErrClosed):
		return &APIError{Status: 503, Code: CodeUnavailable, Reason: "the agent is stopping"}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away, or the server cut the request off at
		// shutdown: nothing was stored, and nobody may be listening.
		return &APIError{Status: 503, Code: CodeUnavailable, Reason: "the request was cancelled before it took effect"}, false
	}
	return &APIError{Status: 500, Code: CodeInternal, Reason: "internal error: see the agent's log"}, true
}

// agentReason is the reason the agent core gave with ErrBadRequest. The
// core's reasons are fixed text, but one of them formats a value; anything
// that looks like a formatted value (a quote, an @) is replaced, so that
// no request value can come back through here.
func agentReason(err error) string {
	const generic = "the agent refused the request as malformed"
	_, reason, ok := strings.Cut(err.Error(), agent.ErrBadRequest.Error()+": ")
	if !ok || reason == "" || strings.ContainsAny(reason, "\"'`@") {
		return generic
	}
	return reason
}
