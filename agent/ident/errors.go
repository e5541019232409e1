package ident

import (
	"errors"
	"fmt"
)

// Reason says why an input is not a usable identifier. It is safe to log,
// count and return to a device: it never carries the input.
type Reason string

// Reasons, in roughly the order the checks run.
const (
	ReasonEmpty         Reason = "empty"           // nothing left once spaces (and, for a loyalty number, dashes) are removed
	ReasonTooLong       Reason = "too_long"        // the raw input is longer than MaxInputLen bytes
	ReasonBadChars      Reason = "bad_chars"       // invalid UTF-8, a control character, or a character the kind does not allow
	ReasonBadLength     Reason = "bad_length"      // the normalised value is too short or too long for its kind
	ReasonBadCheckDigit Reason = "bad_check_digit" // a loyalty number whose check digit is wrong
	ReasonBadPrefix     Reason = "bad_prefix"      // a loyalty number that starts with none of Rules.Loyalty.Prefixes
	ReasonBadFormat     Reason = "bad_format"      // the structure is wrong: two @, no country code, a URL without its parameter, ...
	ReasonUnknownForm   Reason = "unknown_form"    // a scan that is neither a number nor one of the configured forms
	ReasonUnknownKind   Reason = "unknown_kind"    // a kind that is not loyalty, email, phone or app
	ReasonBlocked       Reason = "blocked"         // well formed, but never a customer: a blocked value, all zeros, a device id
)

var (
	// ErrInvalid is matched by errors.Is for every *InvalidError: the input
	// is not a usable identifier and must not be looked up.
	ErrInvalid = errors.New("invalid identifier")

	// ErrBlocked is matched by errors.Is for an *InvalidError with
	// ReasonBlocked: the input is well formed but never identifies a
	// customer (a blocked value, an all-zero loyalty number or a device id).
	// Answer "not usable", not "unknown customer". It also matches
	// ErrInvalid.
	ErrBlocked = fmt.Errorf("%w: blocked", ErrInvalid)
)

// InvalidError is returned by ParseKind, Rules.Normalize and Rules.ParseScan
// when the input is not a usable identifier. Its text names the kind and the
// reason, never the input.
type InvalidError struct {
	// Kind is the kind the input was read as; empty when the kind was not
	// known yet (a scan rejected before its form was found, an unknown
	// kind).
	Kind Kind
	// Reason says what is wrong.
	Reason Reason
}

// Error returns "invalid <kind> identifier: <reason>", or
// "invalid identifier: <reason>" when the kind is unknown.
func (e *InvalidError) Error() string {
	if e.Kind == "" {
		return "invalid identifier: " + string(e.Reason)
	}
	return "invalid " + string(e.Kind) + " identifier: " + string(e.Reason)
}

// Is makes every InvalidError match ErrInvalid, and a blocked one match
// ErrBlocked too.
func (e *InvalidError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return true
	case ErrBlocked:
		return e.Reason == ReasonBlocked
	}
	return false
}

// ReasonOf returns the Reason of the *InvalidError in err's chain, or "" when
// there is none.
func ReasonOf(err error) Reason {
	if e, ok := errors.AsType[*InvalidError](err); ok {
		return e.Reason
	}
	return ""
}

func invalid(kind Kind, reason Reason) error {
	return &InvalidError{Kind: kind, Reason: reason}
}

// RuleError is returned by Rules.Validate. Field is the TOML key of the
// faulty setting, such as "loyalty.min_len" or "qr_forms[1]", relative to
// the section that holds the Rules.
type RuleError struct {
	Field string // the key, with an index for a list item
	Msg   string // what is wrong, without the value when it could be personal data
}

// Error returns "<field>: <msg>".
func (e *RuleError) Error() string { return e.Field + ": " + e.Msg }
