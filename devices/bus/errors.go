package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// Code says why a message was refused. It is sent back to the device in
// the answer's error object, counted in Stats.Rejects and logged; it never
// carries anything the device sent.
type Code string

// Codes of refusal.
const (
	// CodeBadTopic: a message on a request topic whose device id is not of
	// the form of one. Not answered: there is no topic to answer on.
	CodeBadTopic Code = "bad_topic"
	// CodeUnknownDevice: the device is not configured (external mode).
	CodeUnknownDevice Code = "unknown_device"
	// CodeNotAllowed: the device's kind may not use this topic (external
	// mode; the embedded broker refuses the publish itself).
	CodeNotAllowed Code = "not_allowed"
	// CodeRetained: a retained request, a stale replay; not answered.
	CodeRetained Code = "retained"
	// CodeTooLarge: the payload is over MaxPayload, nests too deeply, has
	// too many members, or the event encodes to more than the wire allows.
	CodeTooLarge Code = "too_large"
	// CodeBadJSON: not one well-formed JSON object, or a key twice.
	CodeBadJSON Code = "bad_json"
	// CodeUnknownField: a field this message does not have.
	CodeUnknownField Code = "unknown_field"
	// CodeBadType: a field of the wrong JSON type, or null.
	CodeBadType Code = "bad_type"
	// CodeBadRequest: a field is missing or its value is out of bounds.
	CodeBadRequest Code = "bad_request"
	// CodeInvalidIdentifier: not a usable identifier; the reason is the
	// agent/ident reason, such as "bad_check_digit".
	CodeInvalidIdentifier Code = "invalid_identifier"
	// CodeBlockedIdentifier: well formed, but never a customer (a blocked
	// value, all zeros, a device id).
	CodeBlockedIdentifier Code = "blocked_identifier"
	// CodeUnknownPurpose: the purpose is not in the policy in force.
	CodeUnknownPurpose Code = "unknown_purpose"
	// CodeOutboxFull: the outbox has no room left; retry later.
	CodeOutboxFull Code = "outbox_full"
	// CodeUnavailable: the agent is shutting down; retry later.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: anything else; the agent logs the error.
	CodeInternal Code = "internal"
)

// codes lists every Code: Stats.Rejects has a count for each.
var codes = []Code{
	CodeBadTopic, CodeUnknownDevice, CodeNotAllowed, CodeRetained, CodeTooLarge,
	CodeBadJSON, CodeUnknownField, CodeBadType, CodeBadRequest,
	CodeInvalidIdentifier, CodeBlockedIdentifier, CodeUnknownPurpose,
	CodeOutboxFull, CodeUnavailable, CodeInternal,
}

// rejection is a refused message: what goes back to the device, and what
// is counted. Its reason is fixed text or an agent reason, never input.
type rejection struct {
	code   Code
	reason string
	// args are what reject formatted into reason: limits and field names
	// of the message, never a value it carried (the fuzz tests check).
	args []any
}

func (r *rejection) Error() string { return string(r.code) + ": " + r.reason }

func reject(code Code, format string, args ...any) error {
	return &rejection{code: code, reason: fmt.Sprintf(format, args...), args: args}
}

// fromAgent turns an error of the agent core into a rejection. internal
// says whether it is none of the errors the agent documents, so that the
// caller logs it.
func fromAgent(err error) (r *rejection, internal bool) {
	switch {
	case errors.Is(err, ident.ErrBlocked):
		return &rejection{code: CodeBlockedIdentifier, reason: string(ident.ReasonBlocked)}, false
	case errors.Is(err, ident.ErrInvalid):
		return &rejection{code: CodeInvalidIdentifier, reason: string(ident.ReasonOf(err))}, false
	case errors.Is(err, agent.ErrUnknownPurpose):
		return &rejection{code: CodeUnknownPurpose, reason: "the purpose is not in the policy in force"}, false
	case errors.Is(err, agent.ErrBadRequest):
		return &rejection{code: CodeBadRequest, reason: badRequestReason(err)}, false
	case errors.Is(err, store.ErrOutboxFull):
		return &rejection{code: CodeOutboxFull, reason: "the outbox is full: retry later"}, false
	case errors.Is(err, event.ErrTooLarge), errors.Is(err, store.ErrRecordTooLarge):
		return &rejection{code: CodeTooLarge, reason: fmt.Sprintf("the event encodes to more than %d bytes", event.MaxSize)}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, store.ErrClosed):
		return &rejection{code: CodeUnavailable, reason: "the agent is shutting down: retry later"}, false
	}
	return &rejection{code: CodeInternal, reason: "internal error"}, true
}

// badRequestReason is the agent's own text after "bad request: ". The
// agent words these reasons without the request's values; the bus only
// lets through a request whose values it checked first.
func badRequestReason(err error) string {
	msg := err.Error()
	marker := agent.ErrBadRequest.Error() + ": "
	if i := strings.LastIndex(msg, marker); i >= 0 {
		return msg[i+len(marker):]
	}
	return "malformed request"
}
