package central

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"log/slog"
	"strconv"

	"github.com/storeagent/storeagent/sync/wire"
)

// The purposes of the synthetic customers and of DefaultPolicy, with their
// lawful bases.
const (
	PurposeLoyalty   = "loyalty"   // consent: tier and points
	PurposeMarketing = "marketing" // consent: first name
	PurposeAnalytics = "analytics" // legitimate interest: segment
	PurposeService   = "service"   // contract: account status
)

// baselineAt is when the synthetic consents were given, at the latest
// (2025-01-01T00:00:00Z): older than anything a kiosk records now, so a
// local decision wins over the baseline, as PROTOCOL.md's consent rule says.
const baselineAt = int64(1735689600000)

const dayMs = int64(24 * 60 * 60 * 1000)

// DefaultPolicy is the purpose policy of the baseline: the four purposes
// of the synthetic customers and the events a demo store captures. A
// snapshot carries it (or the last policy change) in its first chunk.
func DefaultPolicy() *wire.PolicyChange {
	return &wire.PolicyChange{
		Purposes: []wire.PolicyPurpose{
			{Name: PurposeLoyalty, Basis: wire.BasisConsent},
			{Name: PurposeMarketing, Basis: wire.BasisConsent},
			{Name: PurposeAnalytics, Basis: wire.BasisLegitimateInterest},
			{Name: PurposeService, Basis: wire.BasisContract},
		},
		Events: map[string]string{
			"Order Completed": PurposeLoyalty,
			"Points Redeemed": PurposeLoyalty,
			"Coupon Redeemed": PurposeMarketing,
			"Product Viewed":  PurposeAnalytics,
			"Store Visited":   PurposeAnalytics,
			"Beacon Sighted":  PurposeAnalytics,
			"Ticket Opened":   PurposeService,
		},
	}
}

// Customers generates synthetic customers deterministically: customer i is
// a pure function of (TenantKey, Seed, i), computed on demand, so a
// million customers cost no memory. The zero N means no customers (and no
// baseline).
//
// The clear loyalty numbers and e-mail addresses exist for test and demo
// drivers (a scanner script must type what the store will recognise). The
// central never sends them: profiles carry only Idents, the keyed hashes.
type Customers struct {
	// TenantKey keys the identifier hashes; at least 32 bytes, the key the
	// agents of the tenant hold.
	TenantKey []byte
	// N is how many customers there are, indexes 0 to N-1.
	N int
	// Seed varies names, numbers and decisions between populations.
	Seed uint64
}

// Customer is one synthetic customer. Printing or logging it shows only its
// index: Loyalty and Email are identifiers (synthetic, but drivers treat
// them as real ones). Its JSON (MarshalJSON) is what `cdpsim customers
// --json` prints for drivers.
type Customer struct {
	// Index is i, from 0.
	Index int
	// Profile is the central's profile id, ProfileID(i).
	Profile string
	// Loyalty is the clear loyalty number: 16 digits, Luhn-valid, unique.
	Loyalty string
	// Email is the clear e-mail address, already normalised (lower case).
	Email string
	// Idents are HMAC-SHA256(tenant key, "loyalty:"+Loyalty) and
	// HMAC-SHA256(tenant key, "email:"+Email), in that order.
	Idents []wire.Ident
	// Attrs are the profile's attributes, each for one purpose.
	Attrs []wire.Attr
	// Consent is the customer's decision for each purpose.
	Consent map[string]wire.ConsentEntry
}

// String shows the index only.
func (c Customer) String() string { return "customer " + strconv.Itoa(c.Index) }

// MarshalJSON writes the customer for drivers, clear identifiers included:
//
//	{"index", "profile", "loyalty", "email",
//	 "idents": {"loyalty": hex, "email": hex},
//	 "attrs": [{"name", "purpose", "value"}],
//	 "consent": {purpose: {"status", "basis", "at"}}}
func (c Customer) MarshalJSON() ([]byte, error) {
	type attr struct {
		Name    string `json:"name"`
		Purpose string `json:"purpose"`
		Value   any    `json:"value"`
	}
	type entry struct {
		Status string `json:"status"`
		Basis  string `json:"basis"`
		At     int64  `json:"at"`
	}
	out := struct {
		Index   int               `json:"index"`
		Profile string            `json:"profile"`
		Loyalty string            `json:"loyalty"`
		Email   string            `json:"email"`
		Idents  map[string]string `json:"idents"`
		Attrs   []attr            `json:"attrs"`
		Consent map[string]entry  `json:"consent"`
	}{Index: c.Index, Profile: c.Profile, Loyalty: c.Loyalty, Email: c.Email,
		Idents: map[string]string{}, Consent: map[string]entry{}}
	for i, kind := range []string{"loyalty", "email"} {
		if i < len(c.Idents) {
			out.Idents[kind] = hex.EncodeToString(c.Idents[i][:])
		}
	}
	for _, a := range c.Attrs {
		out.Attrs = append(out.Attrs, attr{a.Name, a.Purpose, a.Value})
	}
	for p, e := range c.Consent {
		out.Consent[p] = entry{string(e.Status), string(e.Basis), e.At}
	}
	return json.Marshal(out)
}

// LogValue implements slog.LogValuer without identifiers.
func (c Customer) LogValue() slog.Value { return slog.IntValue(c.Index) }

// ProfileID returns the profile id of customer i: "c" and at least eight
// digits ("c00000042").
func ProfileID(i int) string { return fmt.Sprintf("c%08d", i) }

// CustomerIndex returns i when profile is ProfileID(i) for some i >= 0.
func CustomerIndex(profile string) (int, bool) {
	if len(profile) < 9 || len(profile) > 19 || profile[0] != 'c' {
		return 0, false
	}
	i, err := strconv.Atoi(profile[1:])
	if err != nil || i < 0 || ProfileID(i) != profile {
		return 0, false
	}
	return i, true
}

// IdentOf returns HMAC-SHA256(tenantKey, kind ":" value), the ident of a
// normalised identifier (PROTOCOL.md, "Identifiers").
func IdentOf(tenantKey []byte, kind, value string) wire.Ident {
	m := hmac.New(sha256.New, tenantKey)
	return sumIdent(m, kind, value)
}

func sumIdent(m hash.Hash, kind, value string) wire.Ident {
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{':'})
	m.Write([]byte(value))
	var id wire.Ident
	m.Sum(id[:0])
	return id
}

// Validate checks the key and N.
func (c Customers) Validate() error {
	if len(c.TenantKey) < 32 {
		return configError("tenant key", "shorter than 32 bytes")
	}
	if c.N < 0 {
		return configError("customers", "negative")
	}
	return nil
}

// Customer returns customer i. It fails when i is outside 0..N-1 or the
// tenant key is short.
func (c Customers) Customer(i int) (Customer, error) {
	if err := c.Validate(); err != nil {
		return Customer{}, err
	}
	if i < 0 || i >= c.N {
		return Customer{}, fmt.Errorf("customer %d: outside 0..%d", i, c.N-1)
	}
	return c.generator().customer(i), nil
}

// generator returns a customerGen for c, which reuses its HMAC state: a
// snapshot makes two idents per customer.
func (c Customers) generator() *customerGen {
	return &customerGen{c: c, mac: hmac.New(sha256.New, c.TenantKey), offset: mix(c.Seed^0x5eed) % loyaltySpace}
}

// customerGen makes customers; one per goroutine.
type customerGen struct {
	c      Customers
	mac    hash.Hash
	offset uint64
}

// loyaltySpace is the count of 14-digit payloads. Customer i gets payload
// (i*loyaltyMul + offset) mod loyaltySpace: loyaltyMul is prime to
// loyaltySpace, so payloads (and numbers) never repeat below it.
const (
	loyaltySpace = 100_000_000_000_000
	loyaltyMul   = 48271
)

var (
	firstNames = [...]string{
		"ana", "ben", "chloe", "david", "emma", "felix", "grace", "hugo",
		"ines", "jonas", "karin", "leo", "maria", "noah", "olivia", "pablo",
		"quinn", "rosa", "samir", "tara", "ugo", "vera", "william", "ximena",
		"yusuf", "zoe", "amir", "bea", "carlos", "dora", "emil", "fatima",
	}
	lastNames = [...]string{
		"silva", "smith", "muller", "rossi", "dubois", "novak", "garcia", "jensen",
		"kowalski", "nakamura", "okafor", "petrov", "quispe", "rahman", "schmidt", "tanaka",
	}
	tiers    = [...]string{"bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum"}
	segments = [...]string{"new", "regular", "regular", "vip", "lapsed"}
)

func (g *customerGen) customer(i int) Customer {
	r := rng(mix(g.c.Seed*0x9e3779b97f4a7c15 + uint64(i) + 1))
	first := firstNames[r.next()%uint64(len(firstNames))]
	last := lastNames[r.next()%uint64(len(lastNames))]
	cu := Customer{
		Index:   i,
		Profile: ProfileID(i),
		Loyalty: loyaltyNumber((uint64(i)*loyaltyMul + g.offset) % loyaltySpace),
		Email:   first + "." + last + "." + strconv.Itoa(i) + "@example.com",
	}
	cu.Idents = []wire.Ident{
		sumIdent(g.mac, "loyalty", cu.Loyalty),
		sumIdent(g.mac, "email", cu.Email),
	}
	cu.Attrs = []wire.Attr{
		{Name: "tier", Purpose: PurposeLoyalty, Value: tiers[r.next()%uint64(len(tiers))]},
		{Name: "points", Purpose: PurposeLoyalty, Value: int64(r.next() % 20000)},
		{Name: "first_name", Purpose: PurposeMarketing, Value: first},
		{Name: "segment", Purpose: PurposeAnalytics, Value: segments[r.next()%uint64(len(segments))]},
		{Name: "account_status", Purpose: PurposeService, Value: "active"},
	}
	cu.Consent = consentOf(&r)
	return cu
}

// consentOf draws the decisions: loyalty mostly granted, marketing mixed,
// analytics (legitimate interest) rarely objected to, service (contract)
// always in force.
func consentOf(r *rng) map[string]wire.ConsentEntry {
	at := func() int64 { return baselineAt - int64(r.next()%uint64(365*dayMs)) }
	pick := func(granted, denied int) wire.ConsentStatus {
		switch p := int(r.next() % 100); {
		case p < granted:
			return wire.StatusGranted
		case p < granted+denied:
			return wire.StatusDenied
		default:
			return wire.StatusWithdrawn
		}
	}
	analytics := wire.StatusGranted
	if r.next()%100 < 8 {
		analytics = wire.StatusObjected
	}
	return map[string]wire.ConsentEntry{
		PurposeLoyalty:   {Status: pick(95, 5), Basis: wire.BasisConsent, At: at()},
		PurposeMarketing: {Status: pick(55, 30), Basis: wire.BasisConsent, At: at()},
		PurposeAnalytics: {Status: analytics, Basis: wire.BasisLegitimateInterest, At: at()},
		PurposeService:   {Status: wire.StatusGranted, Basis: wire.BasisContract, At: at()},
	}
}

// loyaltyNumber is "6", the 14-digit payload, and the Luhn check digit.
func loyaltyNumber(payload uint64) string {
	var b [16]byte
	b[0] = '6'
	for i := 14; i >= 1; i-- {
		b[i] = byte('0' + payload%10)
		payload /= 10
	}
	b[15] = luhnDigit(b[:15])
	return string(b[:])
}

// luhnDigit returns the Luhn mod 10 check digit of payload, ASCII digits.
func luhnDigit(payload []byte) byte {
	sum, double := 0, true
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// rng is splitmix64: tiny, fast and good enough for synthetic data.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	return mix(uint64(*r))
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
