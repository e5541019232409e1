package ident_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

func TestParseKind(t *testing.T) {
	for _, k := range []ident.Kind{ident.Loyalty, ident.Email, ident.Phone, ident.App} {
		got, err := ident.ParseKind(string(k))
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "Loyalty", " email", "card", "phone\x00"} {
		_, err := ident.ParseKind(s)
		if ident.ReasonOf(err) != ident.ReasonUnknownKind || !errors.Is(err, ident.ErrInvalid) {
			t.Errorf("ParseKind(%q) = %v, want unknown_kind", s, err)
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains the input", err)
		}
	}
}

// TestIDNeverPrintsValue prints and logs IDs every way a caller might.
func TestIDNeverPrintsValue(t *testing.T) {
	ids := []ident.ID{
		{Kind: ident.Loyalty, Value: "7992739871342"},
		{Kind: ident.Email, Value: "jane.doe@example.com"},
		{Kind: ident.Phone, Value: "+447700900123"},
		{Kind: ident.App, Value: "tok_secret_123"},
	}
	for _, id := range ids {
		var logged bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logged, nil))
		logger.Info("identify", "id", id, "ptr", &id)
		slog.New(slog.NewTextHandler(&logged, nil)).Info("identify", "id", id)
		js, err := json.Marshal(struct{ ID ident.ID }{id})
		if err != nil {
			t.Fatal(err)
		}
		outputs := []string{
			id.String(), id.LogValue().String(), logged.String(), string(js),
			fmt.Sprint(id), fmt.Sprintf("%v %+v %#v %s %q %x %X %d %10.3v", id, id, id, id, id, id, id, id, id),
			fmt.Sprintf("%v %+v %#v", &id, []ident.ID{id}, map[string]ident.ID{"k": id}),
			fmt.Sprintf("%+v %#v", struct{ Who ident.ID }{id}, struct{ Who ident.ID }{id}),
			fmt.Errorf("lookup %v: %w", id, errors.New("x")).Error(),
		}
		for _, out := range outputs {
			if strings.Contains(out, id.Value) || strings.Contains(out, id.Value[1:len(id.Value)-1]) {
				t.Errorf("%s leaked in %q", id.Kind, out)
			}
		}
	}
	if got, want := ids[0].String(), "loyalty:<redacted, 13 chars>"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (ident.ID{Kind: ident.App}).String(), "app:<empty>"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestMask(t *testing.T) {
	tests := []struct {
		id   ident.ID
		want string
	}{
		{ident.ID{Kind: ident.Loyalty, Value: "4111111111111142"}, "loyalty:••••••••••••••42"},
		{ident.ID{Kind: ident.Loyalty, Value: "79927"}, "loyalty:•••27"},
		{ident.ID{Kind: ident.Loyalty, Value: "1234"}, "loyalty:••••"},
		{ident.ID{Kind: ident.Phone, Value: "+447700900123"}, "phone:•••••••••••23"},
		{ident.ID{Kind: ident.Email, Value: "jane.doe@shop.example.com"}, "email:j•••@•••.com"},
		{ident.ID{Kind: ident.Email, Value: "j@example.co.uk"}, "email:j•••@•••.uk"},
		{ident.ID{Kind: ident.Email, Value: "not-an-email"}, "email:•••"},
		{ident.ID{Kind: ident.App, Value: "tok_secret_123"}, "app:•••"},
		{ident.ID{}, ":•••"},
	}
	for _, tt := range tests {
		if got := tt.id.Mask(); got != tt.want {
			t.Errorf("Mask(%s) = %q, want %q", tt.id.Kind, got, tt.want)
		}
	}
}
