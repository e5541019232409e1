// Package consent holds the rules of purposes and lawful bases: which
// purposes exist under which basis (the policy), what a customer's status for
// a purpose is, whether processing for a purpose is permitted, and which of
// two conflicting decisions wins.
//
// It is pure: no store, no clock, no I/O. It must never permit what the
// rules do not: an unknown purpose, an undecided consent, an unknown basis
// are all "not permitted" (fail closed).
//
// The invariant its tests protect: 4, consent-scoped. Permission follows
// the basis (consent needs granted; legitimate interest and public task hold
// unless objected to or withdrawn; contract holds while the account is
// active; legal obligation and vital interest always hold); between two
// decisions the newer wins and on a tie the more restrictive wins.
package consent

import (
	"errors"
	"slices"
)

// Status is a customer's decision for one purpose.
type Status string

// The statuses. Pending is local only: a new customer enrolling at a kiosk
// who has not decided yet; their events are held, not sent.
const (
	Granted   Status = "granted"
	Denied    Status = "denied"
	Withdrawn Status = "withdrawn"
	Objected  Status = "objected"
	Pending   Status = "pending"
)

// restrictiveness orders statuses: higher permits less.
var restrictiveness = map[Status]int{Granted: 0, Pending: 1, Denied: 2, Withdrawn: 3, Objected: 4}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := restrictiveness[s]; return ok }

// Refusal reports whether s says no (denied, withdrawn or objected).
func (s Status) Refusal() bool { return s == Denied || s == Withdrawn || s == Objected }

// Basis is a lawful basis of GDPR Art. 6.
type Basis string

// The six lawful bases.
const (
	BasisConsent            Basis = "consent"
	BasisContract           Basis = "contract"
	BasisLegitimateInterest Basis = "legitimate_interest"
	BasisLegalObligation    Basis = "legal_obligation"
	BasisVitalInterest      Basis = "vital_interest"
	BasisPublicTask         Basis = "public_task"
)

// Bases lists every lawful basis.
var Bases = []Basis{BasisConsent, BasisContract, BasisLegitimateInterest, BasisLegalObligation, BasisVitalInterest, BasisPublicTask}

// Valid reports whether b is one of the six bases.
func (b Basis) Valid() bool { return slices.Contains(Bases, b) }

// Source says where a decision was made.
type Source string

// Sources of a decision.
const (
	Local   Source = "local"   // at this store: a kiosk, a cashier
	Central Source = "central" // the central CDP: another channel
)

// Entry is a customer's decision for one purpose, with when and where.
type Entry struct {
	Status Status `cbor:"1,keyasint" json:"status"`
	At     int64  `cbor:"2,keyasint" json:"at"` // ms since the epoch
	Source Source `cbor:"3,keyasint" json:"source"`
}

// Wins reports whether incoming replaces current. A pending status (an
// enrolment waiting for the customer) yields to any decision. Otherwise the
// newer decision wins,
// whichever channel made it (a local change beats an older central one, and
// a newer central one beats an older local one); at the same time the more
// restrictive status wins, so a tie can never grant.
func Wins(incoming, current Entry) bool {
	if current.Status == "" || current.Status == Pending && incoming.Status != Pending {
		return true // pending is no decision: any decision ends it
	}
	if incoming.At != current.At {
		return incoming.At > current.At
	}
	return restrictiveness[incoming.Status] > restrictiveness[current.Status]
}

// Subject is what permission needs to know about a customer.
type Subject struct {
	Known      bool             // a profile is on record (not only a scan)
	Inactive   bool             // the account is closed or suspended (contract basis)
	Restricted bool             // processing restricted under Art. 18
	Decisions  map[string]Entry // by purpose
}

// Permitted reports whether processing for purpose is allowed for s under
// the policy p. A restricted subject is permitted nothing but legal
// obligation and vital interest.
func (p *Policy) Permitted(purpose string, s Subject) bool {
	basis, ok := p.Basis(purpose)
	return ok && Permits(basis, s.Decisions[purpose].Status, s)
}

// Permits is the rule Permitted applies once it knows the purpose's basis
// and the subject's status on it (s.Decisions is not read): for a caller
// that holds statuses some other way than a map.
func Permits(basis Basis, st Status, s Subject) bool {
	if basis == BasisLegalObligation || basis == BasisVitalInterest {
		return true
	}
	if s.Restricted || !s.Known {
		return false
	}
	switch basis {
	case BasisConsent:
		return st == Granted
	case BasisLegitimateInterest, BasisPublicTask:
		return st != Objected && st != Withdrawn
	case BasisContract:
		return !s.Inactive
	}
	return false
}

// Preferences is the Segment consent object: purpose -> permitted, for every
// purpose of the policy.
func (p *Policy) Preferences(s Subject) map[string]bool {
	out := make(map[string]bool, len(p.Purposes))
	for _, pu := range p.Purposes {
		out[pu.Name] = p.Permitted(pu.Name, s)
	}
	return out
}

// Validate checks an incoming status change.
func (e Entry) Validate() error {
	if !e.Status.Valid() {
		return errors.New("consent status is not granted, denied, withdrawn or objected")
	}
	if e.At <= 0 {
		return errors.New("consent time is not a positive time in ms since the epoch")
	}
	return nil
}
