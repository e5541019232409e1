package wire

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMessageIDFormat(t *testing.T) {
	before := time.Now().UnixMilli()
	id := NewMessageID()
	after := time.Now().UnixMilli()
	if !ValidMessageID(id) {
		t.Fatalf("%q is not valid", id)
	}
	ms, ok := MessageIDTime(id)
	if !ok || ms < before || ms > after {
		t.Fatalf("MessageIDTime(%q) = %d, %v; want within [%d, %d]", id, ms, ok, before, after)
	}
}

func TestMessageIDsMonotonic(t *testing.T) {
	clock := time.UnixMilli(testTime)
	g := &MessageIDs{now: func() time.Time { return clock }}
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
		if !ValidMessageID(id) {
			t.Fatalf("%q is not valid", id)
		}
	}
	if ms, _ := MessageIDTime(ids[1500]); ms != testTime {
		t.Fatalf("after a clock step back, time %d, want the last one %d", ms, testTime)
	}
}

func TestMessageIDCounterOverflow(t *testing.T) {
	clock := time.UnixMilli(testTime)
	g := &MessageIDs{now: func() time.Time { return clock }}
	first := g.Next()
	// Fill the counter bits: the next id must move to the next millisecond.
	g.last[6] |= 0x0f
	for i := 7; i < 16; i++ {
		g.last[i] = 0xff
	}
	g.last[8] = 0xbf
	next := g.Next()
	if ms, _ := MessageIDTime(next); ms != testTime+1 || next <= first || !ValidMessageID(next) {
		t.Fatalf("after overflow got %q (time %d)", next, ms)
	}
}

func TestMessageIDsConcurrent(t *testing.T) {
	var g MessageIDs
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

func TestValidMessageID(t *testing.T) {
	for id, want := range map[string]bool{
		testMessageID:                           true,
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
		if got := ValidMessageID(id); got != want {
			t.Errorf("ValidMessageID(%q) = %v, want %v", id, got, want)
		}
	}
}
