package consent

import "testing"

func policy() *Policy {
	return &Policy{
		Purposes: []Purpose{
			{Name: "c", Basis: BasisConsent}, {Name: "li", Basis: BasisLegitimateInterest},
			{Name: "k", Basis: BasisContract}, {Name: "lo", Basis: BasisLegalObligation},
			{Name: "vi", Basis: BasisVitalInterest}, {Name: "pt", Basis: BasisPublicTask},
		},
		Events:  map[string]string{"Order Completed": "k"},
		Default: "li",
	}
}

// Permission follows the basis.
func TestPermitted(t *testing.T) {
	p := policy()
	known := func(purpose string, s Status) Subject {
		d := map[string]Entry{}
		if s != "" {
			d[purpose] = Entry{Status: s, At: 1}
		}
		return Subject{Known: true, Decisions: d}
	}
	tests := []struct {
		name    string
		purpose string
		subject Subject
		want    bool
	}{
		{"consent granted", "c", known("c", Granted), true},
		{"consent never asked", "c", known("c", ""), false},
		{"consent pending", "c", known("c", Pending), false},
		{"consent denied", "c", known("c", Denied), false},
		{"consent withdrawn", "c", known("c", Withdrawn), false},
		{"legitimate interest, no objection", "li", known("li", ""), true},
		{"legitimate interest objected", "li", known("li", Objected), false},
		{"legitimate interest withdrawn", "li", known("li", Withdrawn), false},
		{"public task objected", "pt", known("pt", Objected), false},
		{"contract, active account", "k", known("k", ""), true},
		{"contract, closed account", "k", Subject{Known: true, Inactive: true}, false},
		{"contract, unknown customer", "k", Subject{}, false},
		{"legal obligation, even restricted", "lo", Subject{Restricted: true}, true},
		{"vital interest", "vi", Subject{}, true},
		{"restricted blocks consent", "c", Subject{Known: true, Restricted: true, Decisions: map[string]Entry{"c": {Status: Granted}}}, false},
		{"unknown purpose", "astrology", known("astrology", Granted), false},
		{"rights purpose always", RightsPurpose, Subject{Restricted: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Permitted(tc.purpose, tc.subject); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// The newer decision wins; a tie goes to the more restrictive.
func TestWins(t *testing.T) {
	tests := []struct {
		name              string
		incoming, current Entry
		want              bool
	}{
		{"nothing on record", Entry{Status: Granted, At: 1}, Entry{}, true},
		{"newer grant beats older withdrawal", Entry{Status: Granted, At: 2, Source: Central}, Entry{Status: Withdrawn, At: 1, Source: Local}, true},
		{"older central loses to newer local", Entry{Status: Granted, At: 1, Source: Central}, Entry{Status: Withdrawn, At: 2, Source: Local}, false},
		{"newer local beats older central", Entry{Status: Withdrawn, At: 3, Source: Local}, Entry{Status: Granted, At: 2, Source: Central}, true},
		{"tie: withdrawal beats grant", Entry{Status: Withdrawn, At: 5}, Entry{Status: Granted, At: 5}, true},
		{"tie: grant does not beat withdrawal", Entry{Status: Granted, At: 5}, Entry{Status: Withdrawn, At: 5}, false},
		{"tie: objection beats withdrawal", Entry{Status: Objected, At: 5}, Entry{Status: Withdrawn, At: 5}, true},
		{"tie: same status is no change", Entry{Status: Denied, At: 5}, Entry{Status: Denied, At: 5}, false},
		{"a grant ends pending, even at the same time", Entry{Status: Granted, At: 5}, Entry{Status: Pending, At: 5}, true},
		{"a grant ends pending, even from an older clock", Entry{Status: Granted, At: 4}, Entry{Status: Pending, At: 5}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Wins(tc.incoming, tc.current); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	good := policy()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(p *Policy){
		"bad basis":          func(p *Policy) { p.Purposes[0].Basis = "because" },
		"duplicate":          func(p *Policy) { p.Purposes = append(p.Purposes, p.Purposes[0]) },
		"reserved name":      func(p *Policy) { p.Purposes[0].Name = RightsPurpose },
		"bad name":           func(p *Policy) { p.Purposes[0].Name = "Has Spaces" },
		"event to nowhere":   func(p *Policy) { p.Events["x"] = "nowhere" },
		"default to nowhere": func(p *Policy) { p.Default = "nowhere" },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			p := policy()
			mutate(p)
			if err := p.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if good.PurposeOf("Order Completed") != "k" || good.PurposeOf("Unmapped") != "li" {
		t.Fatal("event mapping")
	}
}
