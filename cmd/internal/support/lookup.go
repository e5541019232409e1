package support

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
)

// AuditLookup is the kind of the audit entry a lookup leaves.
const AuditLookup = "support.lookup"

// masked is what a masked value shows.
const masked = "•••"

// ErrLookupNeedsWrite is returned by Lookup on a read-only store: a lookup
// is recorded in the audit log, so it needs the daemon or a writable open.
var ErrLookupNeedsWrite = errors.New("a lookup is recorded in the audit log and needs a writable store")

// Lookup answers a support lookup (see localapi.LookupResult) from the
// store, and records it in the audit log (kind AuditLookup, with the
// purpose, the identifier's kind and whether it was known; never the
// identifier or an id). The answer is returned only once the audit entry
// is durable.
//
// It identifies through an agent of its own, made from cfg over db and
// never run, so that an unknown identifier queues no identify event: a
// support lookup is not a customer's visit, and the daemon's counters do
// not move.
func Lookup(ctx context.Context, db *store.DB, cfg agent.Config, m *Masker, req localapi.LookupRequest) (localapi.LookupResult, error) {
	if db.ReadOnly() {
		return localapi.LookupResult{}, ErrLookupNeedsWrite
	}
	id, err := parse(cfg.Ident, req)
	if err != nil {
		return localapi.LookupResult{}, err
	}
	ag, err := agent.New(db, cfg)
	if err != nil {
		return localapi.LookupResult{}, fmt.Errorf("lookup: %w", err)
	}
	who, err := ag.Identify(ctx, agent.IdentifyRequest{Scan: req.Scan, Kind: ident.Kind(req.Kind), Value: req.Value, Purpose: req.Purpose})
	if err != nil {
		return localapi.LookupResult{}, err
	}
	out := localapi.LookupResult{
		Identifier: id.Mask(), Kind: string(id.Kind), Purpose: req.Purpose,
		Known: who.Known, Permitted: who.Permitted, Restricted: who.Restricted, Pending: who.Pending,
		Attributes: []localapi.LookupAttribute{},
	}
	for _, p := range ag.Policy().Purposes {
		out.Purposes = append(out.Purposes, localapi.LookupPurpose{Purpose: p.Name, Basis: string(p.Basis), Permitted: who.Consent[p.Name]})
	}
	if who.Known {
		if err := known(ctx, ag, m, who, &out); err != nil {
			return localapi.LookupResult{}, err
		}
	}
	err = db.Update(func(tx *store.Tx) error {
		return tx.Audit(AuditLookup, map[string]string{"purpose": req.Purpose, "kind": string(id.Kind), "known": strconv.FormatBool(who.Known)})
	})
	if err != nil {
		return localapi.LookupResult{}, fmt.Errorf("lookup: audit: %w", err)
	}
	out.Audited = true
	return out, nil
}

func parse(rules ident.Rules, req localapi.LookupRequest) (ident.ID, error) {
	if req.Scan != "" {
		return rules.ParseScan(req.Scan)
	}
	return rules.Normalize(ident.Kind(req.Kind), req.Value)
}

// known fills what the store holds about a known customer: decisions,
// attribute names for the purpose, counts.
func known(ctx context.Context, ag *agent.Agent, m *Masker, who agent.Identity, out *localapi.LookupResult) error {
	pid := cmp.Or(who.UserID, who.AnonymousID)
	held, err := ag.Held(ctx, pid)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	out.Ref, out.Local = m.Ref(pid), held.Local
	out.Identifiers, out.QueuedEvents, out.HeldEvents = held.Identifiers, held.Queued, held.HeldEvents
	decisions := map[string]agent.HeldConsent{}
	for _, c := range held.Consent {
		decisions[c.Purpose] = c
	}
	for i, p := range out.Purposes {
		c := decisions[p.Purpose]
		out.Purposes[i].Status, out.Purposes[i].Source, out.Purposes[i].At = c.Status, c.Source, c.At
		out.Purposes[i].Permitted = c.Permitted
	}
	shown := map[string]bool{}
	for _, a := range who.Attributes {
		shown[a.Name] = true
	}
	for _, a := range held.Attributes {
		if a.Purpose != out.Purpose || !shown[a.Name] {
			out.OtherAttributes++
			continue
		}
		out.Attributes = append(out.Attributes, localapi.LookupAttribute{
			Name: a.Name, Purpose: a.Purpose, Basis: string(a.Basis), Type: typeOf(a.Value), Value: masked,
		})
	}
	return nil
}

// typeOf names a value's JSON type, never the value.
func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case map[string]any, map[any]any:
		return "object"
	case []any:
		return "list"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return "number"
	}
	return "other"
}
