package event

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestIDFormat(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewID()
	after := time.Now().UnixMilli()
	if !ValidID(id) {
		t.Fatalf("%q is not valid", id)
	}
	ms, ok := IDTime(id)
	if !ok || ms < before || ms > after {
		t.Fatalf("IDTime(%q) = %d, %v; want within [%d, %d]", id, ms, ok, before, after)
	}
}

func TestIDsMonotonic(t *testing.T) {
	clock := time.UnixMilli(testTime)
	g := &IDs{now: func() time.Time { return clock }}
	var ids []string
	for i := range 3000 {
		if i == 1000 {
			clock = clock.Add(-time.Hour) // the clock steps back
		}
		if i == 2000 {
			clock = clock.Add(2 * time.Hour)
		}
		ids = append(ids, g.Next())
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids of one generator are not in order")
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatal("duplicate ids")
	}
	for _, id := range ids {
		if !ValidID(id) {
			t.Fatalf("%q is not valid", id)
		}
	}
	if ms, _ := IDTime(ids[1500]); ms != testTime {
		t.Fatalf("after a clock step back, time %d, want the last one %d", ms, testTime)
	}
}

func TestIDCounterOverflow(t *testing.T) {
	clock := time.UnixMilli(testTime)
	g := &IDs{now: func() time.Time { return clock }}
	first := g.Next()
	// Fill the counter bits: the next id must move to the next millisecond.
	g.last[6] |= 0x0f
	for i := 7; i < 16; i++ {
		g.last[i] = 0xff
	}
	g.last[8] = 0xbf
	next := g.Next()
	if ms, _ := IDTime(next); ms != testTime+1 || next <= first || !ValidID(next) {
		t.Fatalf("after overflow got %q (time %d)", next, ms)
	}
}

func TestIDsConcurrent(t *testing.T) {
	var g IDs
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				id := g.Next()
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestValidIDTable(t *testing.T) {
	for id, want := range map[string]bool{
		"01890a5d-ac96-774b-bcce-b302099a8057":  true,
		"01890a5d-ac96-774b-8cce-b302099a8057":  true,
		"01890A5D-AC96-774B-BCCE-B302099A8057":  false, // uppercase
		"01890a5d-ac96-474b-bcce-b302099a8057":  false, // version 4
		"01890a5d-ac96-774b-7cce-b302099a8057":  false, // variant 0
		"01890a5d-ac96-774b-ccce-b302099a8057":  false, // variant 110
		"01890a5dac96774bbcceb302099a8057":      false, // no dashes
		"01890a5d-ac96-774b-bcce-b302099a805":   false,
		"01890a5d-ac96-774b-bcce-b302099a8057-": false,
		"01890a5d+ac96-774b-bcce-b302099a8057":  false,
		"01890a5d-ac96-774b-bcce-b302099a805g":  false,
		"":                                      false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

// testTime is a fixed clock for the generator tests: 2026-01-01T00:00:00Z.
const testTime = int64(1767225600000)

// ParseID is the inverse of FormatID, and refuses what is not 8-4-4-4-12
// hex.
func TestParseID(t *testing.T) {
	id := NewID()
	u, ok := ParseID(id)
	if !ok || FormatID(u) != id {
		t.Fatalf("ParseID(%q) = %x, %v", id, u, ok)
	}
	for _, bad := range []string{"01890a5dac96774bbcceb302099a8057", "01890a5d-ac96-774b-bcce-b302099a805g", ""} {
		if _, ok := ParseID(bad); ok {
			t.Fatalf("ParseID(%q) succeeded", bad)
		}
	}
}
