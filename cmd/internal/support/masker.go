package support

import (
	"encoding/hex"
	"fmt"

	"github.com/storeagent/storeagent/agent/ident"
)

// refLabel is the Derive label of Refs: distinct from every label the
// agent uses, so a Ref is never the prefix of a stored key.
const refLabel = "storectl-ref"

// refBytes is the length of a Ref's hash prefix: 4 bytes, 8 hex digits.
// Enough to tell customers apart on one screen, far too short to be
// looked up anywhere without the tenant key.
const refBytes = 4

// Masker turns ids into Refs. A nil *Masker is usable: it makes no Refs,
// for a storectl that cannot read the tenant key.
type Masker struct {
	h *ident.Hasher
}

// NewMasker returns a Masker keyed with the tenant key.
func NewMasker(tenantKey []byte) (*Masker, error) {
	h, err := ident.NewHasher(tenantKey)
	if err != nil {
		return nil, fmt.Errorf("masker: %w", err)
	}
	return &Masker{h: h}, nil
}

// Ref returns the Ref of id, or "" for an empty id or a nil Masker.
func (m *Masker) Ref(id string) string {
	if m == nil || id == "" {
		return ""
	}
	sum := m.h.Derive(refLabel, []byte(id))
	return hex.EncodeToString(sum[:refBytes])
}

// String hides the key, as ident.Hasher does.
func (m *Masker) String() string { return "support.Masker{key:<redacted>}" }
