package consent

import (
	"fmt"
	"regexp"
	"slices"
)

// RightsPurpose is the purpose of the agent's own records of consent
// changes and rights requests: a legal obligation (Art. 7(1) proof of
// consent, Art. 19 notification), so they always carry identity to the
// central, whatever the customer decided for other purposes. Every policy
// has it.
const RightsPurpose = "rights"

// Purpose is a purpose of processing with its lawful basis.
type Purpose struct {
	Name  string `cbor:"1,keyasint" json:"name" toml:"name"`
	Basis Basis  `cbor:"2,keyasint" json:"basis" toml:"basis"`
	// Drop, when true, drops an event of this purpose that may not carry
	// identity instead of sending it anonymised.
	Drop bool `cbor:"3,keyasint,omitempty" json:"drop,omitempty" toml:"drop"`
}

// Policy lists the purposes and maps event names to them. It comes from the
// config at first and is replaced by the central's policy changes.
type Policy struct {
	V        uint8             `cbor:"0,keyasint" json:"-"`
	Purposes []Purpose         `cbor:"1,keyasint" json:"purposes"`
	Events   map[string]string `cbor:"2,keyasint" json:"events"` // event name -> purpose
	// Default is the purpose of an event the map does not name.
	Default string `cbor:"3,keyasint" json:"default"`
	// Seq is the central change that set this policy, 0 for the config's.
	Seq uint64 `cbor:"4,keyasint" json:"seq"`
}

var purposeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Basis returns the lawful basis of purpose.
func (p *Policy) Basis(purpose string) (Basis, bool) {
	if purpose == RightsPurpose {
		return BasisLegalObligation, true
	}
	for _, pu := range p.Purposes {
		if pu.Name == purpose {
			return pu.Basis, true
		}
	}
	return "", false
}

// Purpose returns the named purpose.
func (p *Policy) Purpose(name string) (Purpose, bool) {
	for _, pu := range p.Purposes {
		if pu.Name == name {
			return pu, true
		}
	}
	if name == RightsPurpose {
		return Purpose{Name: RightsPurpose, Basis: BasisLegalObligation}, true
	}
	return Purpose{}, false
}

// PurposeOf returns the purpose of an event name: the mapped one, else the
// default.
func (p *Policy) PurposeOf(event string) string {
	if pu, ok := p.Events[event]; ok {
		return pu
	}
	return p.Default
}

// Validate checks that every purpose has a valid name and basis, that names
// are unique, and that the event map and default name known purposes.
func (p *Policy) Validate() error {
	var names []string
	for _, pu := range p.Purposes {
		if !purposeName.MatchString(pu.Name) {
			return fmt.Errorf("policy: purpose name %q must be 1-64 of A-Z a-z 0-9 _ -", pu.Name)
		}
		if !pu.Basis.Valid() {
			return fmt.Errorf("policy: purpose %s: basis %q is not one of the six lawful bases", pu.Name, pu.Basis)
		}
		if slices.Contains(names, pu.Name) || pu.Name == RightsPurpose {
			return fmt.Errorf("policy: purpose %s listed twice or reserved", pu.Name)
		}
		names = append(names, pu.Name)
	}
	for ev, pu := range p.Events {
		if _, ok := p.Basis(pu); !ok {
			return fmt.Errorf("policy: event %q maps to unknown purpose %q", ev, pu)
		}
	}
	if _, ok := p.Basis(p.Default); !ok {
		return fmt.Errorf("policy: default purpose %q is not listed", p.Default)
	}
	return nil
}
