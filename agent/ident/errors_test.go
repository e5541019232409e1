package ident_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

func TestInvalidError(t *testing.T) {
	err := fmt.Errorf("identify: %w", &ident.InvalidError{Kind: ident.Loyalty, Reason: ident.ReasonBadCheckDigit})
	if got, want := err.Error(), "identify: invalid loyalty identifier: bad_check_digit"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ident.ErrInvalid) || errors.Is(err, ident.ErrBlocked) {
		t.Errorf("errors.Is: invalid %v, blocked %v", errors.Is(err, ident.ErrInvalid), errors.Is(err, ident.ErrBlocked))
	}
	if got := ident.ReasonOf(err); got != ident.ReasonBadCheckDigit {
		t.Errorf("ReasonOf = %q", got)
	}

	blocked := &ident.InvalidError{Reason: ident.ReasonBlocked}
	if got, want := blocked.Error(), "invalid identifier: blocked"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(blocked, ident.ErrInvalid) || !errors.Is(blocked, ident.ErrBlocked) {
		t.Error("a blocked InvalidError must match ErrInvalid and ErrBlocked")
	}
	if !errors.Is(ident.ErrBlocked, ident.ErrInvalid) {
		t.Error("ErrBlocked must match ErrInvalid")
	}

	if got := ident.ReasonOf(errors.New("other")); got != "" {
		t.Errorf("ReasonOf(other) = %q", got)
	}
	if got := ident.ReasonOf(nil); got != "" {
		t.Errorf("ReasonOf(nil) = %q", got)
	}
}
