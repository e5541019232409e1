package downlink

import (
	"fmt"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/sync/wire"
)

// convert turns a verified wire change into the agent's change.
func (d *Downlink) convert(ch wire.Change) (agent.Change, error) {
	out := agent.Change{Seq: ch.Seq}
	switch b := ch.Body.(type) {
	case *wire.ProfileChange:
		out.Kind, out.Profile, out.Version, out.Expires = agent.ChangeProfile, b.Profile, b.Version, b.Expires
		for _, id := range b.Idents {
			out.Idents = append(out.Idents, append([]byte(nil), id[:]...))
		}
		for _, a := range b.Attrs {
			out.Attrs = append(out.Attrs, agent.Attribute{Name: a.Name, Purpose: a.Purpose, Value: a.Value})
		}
	case *wire.ConsentChange:
		out.Kind, out.Profile = agent.ChangeConsent, b.Profile
		out.Consent = make(map[string]consent.Entry, len(b.Purposes))
		for p, e := range b.Purposes {
			out.Consent[p] = consent.Entry{Status: consent.Status(e.Status), At: e.At}
		}
	case *wire.EraseChange:
		out.Kind, out.Profile = agent.ChangeErase, b.Profile
	case *wire.RestrictChange:
		out.Kind, out.Profile, out.Restricted = agent.ChangeRestrict, b.Profile, b.Restricted
	case *wire.PolicyChange:
		out.Kind = agent.ChangePolicy
		out.Policy = d.policy(b)
	default:
		return out, fmt.Errorf("%w: change kind %T", agent.ErrBadChange, ch.Body)
	}
	return out, nil
}

// policy builds the agent's policy from the central's. The wire's policy
// names no default purpose and no drop flags; both are local choices, so
// they are kept from the policy in force where the new one still has the
// purpose. Without a usable default, the first legitimate-interest purpose
// (or else the first purpose) is the default.
func (d *Downlink) policy(b *wire.PolicyChange) *consent.Policy {
	cur := d.ap.Policy()
	p := &consent.Policy{Events: b.Events}
	for _, pp := range b.Purposes {
		pu := consent.Purpose{Name: pp.Name, Basis: consent.Basis(pp.Basis)}
		if old, ok := cur.Purpose(pp.Name); ok {
			pu.Drop = old.Drop
		}
		p.Purposes = append(p.Purposes, pu)
	}
	if _, ok := p.Basis(cur.Default); ok {
		p.Default = cur.Default
	}
	for _, pu := range p.Purposes {
		if p.Default == "" && pu.Basis == consent.BasisLegitimateInterest {
			p.Default = pu.Name
		}
	}
	if p.Default == "" && len(p.Purposes) > 0 {
		p.Default = p.Purposes[0].Name
	}
	return p
}
