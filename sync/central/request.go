package central

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/storeagent/storeagent/sync/wire"
)

// ChangeRequest asks for one change, as the control API and `cdpsim
// change` take it (JSON). Kind selects which fields count:
//
//	erase     profile
//	restrict  profile, restricted
//	consent   profile, purposes
//	profile   profile, and optionally idents, loyalty, email, attrs,
//	          replace, version, expires
//	policy    policy
//
// Customer may stand for Profile: ProfileID(customer).
type ChangeRequest struct {
	// Store is the store whose stream gets the change; empty means the
	// central's default store.
	Store string `json:"store,omitempty"`
	// Kind is erase, restrict, consent, profile or policy.
	Kind string `json:"kind"`
	// Profile is the central's profile id; Customer the index of a
	// synthetic customer, instead.
	Profile  string `json:"profile,omitempty"`
	Customer *int   `json:"customer,omitempty"`

	// Restricted restricts (true) or lifts the restriction (false).
	Restricted *bool `json:"restricted,omitempty"`

	// Purposes set the consent of each named purpose.
	Purposes map[string]ConsentRequest `json:"purposes,omitempty"`

	// Idents are keyed hashes in hex. Loyalty and Email are clear values
	// that the central hashes with the tenant key (and forgets): a demo
	// aid. Without any of them, a profile keeps its current idents.
	Idents  []string `json:"idents,omitempty"`
	Loyalty string   `json:"loyalty,omitempty"`
	Email   string   `json:"email,omitempty"`
	// Attrs replace the profile's attributes of the same name and purpose
	// and keep the others, unless Replace, when they are the whole set.
	Attrs   []AttrRequest `json:"attrs,omitempty"`
	Replace bool          `json:"replace,omitempty"`
	// Version defaults to the profile's version + 1 (agents ignore a
	// version not above the one they hold); Expires (ms) to now + the
	// profile TTL.
	Version uint64 `json:"version,omitempty"`
	Expires int64  `json:"expires,omitempty"`

	// Policy is the whole new policy.
	Policy *PolicyRequest `json:"policy,omitempty"`
}

// ConsentRequest is the consent of one purpose.
type ConsentRequest struct {
	// Status is granted, denied, withdrawn or objected.
	Status string `json:"status"`
	// Basis defaults to the purpose's basis in the store's policy.
	Basis string `json:"basis,omitempty"`
	// At (ms since the epoch) defaults to now.
	At int64 `json:"at,omitempty"`
}

// AttrRequest is one attribute of a profile.
type AttrRequest struct {
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Value   any    `json:"value"`
}

// PolicyRequest is a purpose policy.
type PolicyRequest struct {
	Purposes []PurposeRequest `json:"purposes"`
	// Events maps an event name to its purpose.
	Events map[string]string `json:"events"`
}

// PurposeRequest declares a purpose and its lawful basis.
type PurposeRequest struct {
	Name  string `json:"name"`
	Basis string `json:"basis"`
}

// ChangeResult says what a change request became.
type ChangeResult struct {
	Store string `json:"store"`
	Seq   uint64 `json:"seq"`
	Kind  string `json:"kind"`
	// Published is false when the change was logged but could not be
	// handed to the broker (see ErrNotPublished).
	Published bool `json:"published"`
}

// PublishRequest turns req into a change (BuildChange) and publishes it.
func (c *Central) PublishRequest(ctx context.Context, req ChangeRequest) (ChangeResult, error) {
	store, body, err := c.BuildChange(req)
	if err != nil {
		return ChangeResult{}, err
	}
	seq, err := c.Publish(ctx, store, body)
	res := ChangeResult{Store: store, Seq: seq, Kind: string(body.Kind()), Published: err == nil}
	if errors.Is(err, ErrNotPublished) {
		return res, nil
	}
	if errors.Is(err, wire.ErrInvalid) || errors.Is(err, wire.ErrTooLarge) {
		return ChangeResult{}, badRequest("%v", err)
	}
	return res, err
}

// BuildChange turns req into the body of a change for its store, filling
// defaults from the store's current state. Errors match ErrBadRequest.
func (c *Central) BuildChange(req ChangeRequest) (string, wire.Body, error) {
	store := req.Store
	if store == "" {
		store = c.cfg.Store
	}
	if !wire.ValidID(store) {
		return "", nil, badRequest("store is not a valid id")
	}
	profile := req.Profile
	if req.Customer != nil {
		if profile != "" {
			return "", nil, badRequest("give profile or customer, not both")
		}
		if *req.Customer < 0 {
			return "", nil, badRequest("customer is negative")
		}
		profile = ProfileID(*req.Customer)
	}
	if req.Kind != string(wire.KindPolicy) && !wire.ValidID(profile) {
		return "", nil, badRequest("profile is missing or not a valid id")
	}
	sl, err := c.storeLog(store, false)
	if err != nil {
		return "", nil, err
	}
	var body wire.Body
	switch wire.Kind(req.Kind) {
	case wire.KindErase:
		body = &wire.EraseChange{Profile: profile}
	case wire.KindRestrict:
		if req.Restricted == nil {
			return "", nil, badRequest("restricted is missing")
		}
		body = &wire.RestrictChange{Profile: profile, Restricted: *req.Restricted}
	case wire.KindConsent:
		body, err = c.consentBody(sl, profile, req.Purposes)
	case wire.KindProfile:
		body, err = c.profileBody(sl, profile, req)
	case wire.KindPolicy:
		body, err = policyBody(req.Policy)
	default:
		return "", nil, badRequest("kind must be erase, restrict, consent, profile or policy")
	}
	if err != nil {
		return "", nil, err
	}
	if err := (wire.Change{Seq: 1, Body: body}).Validate(); err != nil {
		return "", nil, badRequest("%v", err)
	}
	return store, body, nil
}

func (c *Central) consentBody(sl *storeLog, profile string, purposes map[string]ConsentRequest) (wire.Body, error) {
	if len(purposes) == 0 {
		return nil, badRequest("purposes is empty")
	}
	v := sl.view()
	pol := v.policy
	if pol == nil {
		pol = DefaultPolicy()
	}
	now := c.nowMs()
	out := make(map[string]wire.ConsentEntry, len(purposes))
	for name, p := range purposes {
		e := wire.ConsentEntry{Status: wire.ConsentStatus(p.Status), Basis: wire.Basis(p.Basis), At: p.At}
		if e.Basis == "" {
			e.Basis = basisOf(pol, name)
		}
		if e.At == 0 {
			e.At = now
		}
		out[name] = e
	}
	return &wire.ConsentChange{Profile: profile, Purposes: out}, nil
}

// basisOf is the basis the policy gives purpose, consent when it names none.
func basisOf(pol *wire.PolicyChange, purpose string) wire.Basis {
	for _, p := range pol.Purposes {
		if p.Name == purpose {
			return p.Basis
		}
	}
	return wire.BasisConsent
}

func (c *Central) profileBody(sl *storeLog, profile string, req ChangeRequest) (wire.Body, error) {
	cur := c.currentProfile(sl, profile)
	b := &wire.ProfileChange{Profile: profile, Version: req.Version, Expires: req.Expires}
	if cur != nil {
		b.Idents, b.Attrs = slices.Clone(cur.Idents), slices.Clone(cur.Attrs)
		if b.Version == 0 {
			b.Version = cur.Version + 1
		}
	}
	if b.Version == 0 {
		b.Version = 1
	}
	if b.Expires == 0 {
		b.Expires = c.cfg.Now().Add(c.cfg.ProfileTTL).UnixMilli()
	}
	idents, err := c.requestIdents(req)
	if err != nil {
		return nil, err
	}
	if len(idents) > 0 || cur == nil {
		b.Idents = idents
	}
	if req.Replace {
		b.Attrs = nil
	}
	for _, a := range req.Attrs {
		b.Attrs = slices.DeleteFunc(b.Attrs, func(x wire.Attr) bool { return x.Name == a.Name && x.Purpose == a.Purpose })
		b.Attrs = append(b.Attrs, wire.Attr{Name: a.Name, Purpose: a.Purpose, Value: jsonValue(a.Value)})
	}
	return b, nil
}

// jsonValue turns what encoding/json decoded into what the wire accepts:
// a whole float64 becomes int64, so "points": 120 stays an integer.
func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		if x >= -1<<53 && x <= 1<<53 && x == math.Trunc(x) {
			return int64(x)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

// currentProfile is the profile as the store's stream leaves it, nil when
// absent.
func (c *Central) currentProfile(sl *storeLog, profile string) *wire.ProfileChange {
	v := sl.view()
	st := v.state[profile]
	if st != nil && st.profile != nil {
		return st.profile
	}
	if i, ok := CustomerIndex(profile); ok && i < c.cfg.Customers && (st == nil || st.baseline) {
		cu := c.customers.generator().customer(i)
		return &wire.ProfileChange{Profile: profile, Idents: cu.Idents, Attrs: cu.Attrs, Version: 1}
	}
	return nil
}

// requestIdents hashes the clear values of req and decodes its hex idents.
func (c *Central) requestIdents(req ChangeRequest) ([]wire.Ident, error) {
	var out []wire.Ident
	for _, h := range req.Idents {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(wire.Ident{}) {
			return nil, badRequest("an ident is not 64 hex characters")
		}
		out = append(out, wire.Ident(b))
	}
	if req.Loyalty != "" {
		n, ok := normalLoyalty(req.Loyalty)
		if !ok {
			return nil, badRequest("loyalty is not 8 to 19 digits with a valid luhn check digit")
		}
		out = append(out, IdentOf(c.cfg.TenantKey, "loyalty", n))
	}
	if req.Email != "" {
		e := strings.ToLower(strings.TrimSpace(req.Email))
		if !strings.Contains(e, "@") || len(e) > 254 {
			return nil, badRequest("email is not an e-mail address")
		}
		out = append(out, IdentOf(c.cfg.TenantKey, "email", e))
	}
	return out, nil
}

// normalLoyalty drops spaces and dashes and checks the digits as the
// agent's default rules do: 8 to 19 digits, Luhn check digit.
func normalLoyalty(s string) (string, bool) {
	s = strings.NewReplacer(" ", "", "-", "").Replace(s)
	if len(s) < 8 || len(s) > 19 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, luhnDigit([]byte(s[:len(s)-1])) == s[len(s)-1]
}

func policyBody(p *PolicyRequest) (wire.Body, error) {
	if p == nil {
		return nil, badRequest("policy is missing")
	}
	b := &wire.PolicyChange{Events: p.Events}
	for _, pu := range p.Purposes {
		b.Purposes = append(b.Purposes, wire.PolicyPurpose{Name: pu.Name, Basis: wire.Basis(pu.Basis)})
	}
	if b.Events == nil {
		b.Events = map[string]string{}
	}
	return b, nil
}

// String hides the clear identifiers a request may hold.
func (r ChangeRequest) String() string {
	return fmt.Sprintf("change request %s", r.Kind)
}
