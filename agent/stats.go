package agent

import (
	"errors"
	"sync/atomic"

	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// Stats are the agent's counters since start, for status pages and metrics.
// They count, never name: no identifier appears here.
type Stats struct {
	IdentifyKnown         atomic.Uint64
	IdentifyUnknown       atomic.Uint64
	IdentifyInvalid       atomic.Uint64
	IdentifyBlocked       atomic.Uint64
	IdentifyEventsDropped atomic.Uint64

	CaptureQueued     atomic.Uint64
	CaptureAnonymised atomic.Uint64
	CaptureHeld       atomic.Uint64
	CaptureDropped    atomic.Uint64
	CaptureRefused    atomic.Uint64 // outbox full

	ConsentChanges atomic.Uint64
	RightsRequests atomic.Uint64
	Erasures       atomic.Uint64
	Enrolments     atomic.Uint64
	ChangesApplied atomic.Uint64
	Evicted        atomic.Uint64
	Expired        atomic.Uint64
	Compactions    atomic.Uint64
}

// Counters is a plain copy of Stats.
type Counters map[string]uint64

// Stats returns a copy of the counters.
func (a *Agent) Stats() Counters {
	s := &a.stats
	return Counters{
		"identify_known": s.IdentifyKnown.Load(), "identify_unknown": s.IdentifyUnknown.Load(),
		"identify_invalid": s.IdentifyInvalid.Load(), "identify_blocked": s.IdentifyBlocked.Load(),
		"identify_events_dropped": s.IdentifyEventsDropped.Load(),
		"capture_queued":          s.CaptureQueued.Load(), "capture_anonymised": s.CaptureAnonymised.Load(),
		"capture_held": s.CaptureHeld.Load(), "capture_dropped": s.CaptureDropped.Load(),
		"capture_refused": s.CaptureRefused.Load(), "consent_changes": s.ConsentChanges.Load(),
		"rights_requests": s.RightsRequests.Load(), "erasures": s.Erasures.Load(),
		"enrolments": s.Enrolments.Load(), "changes_applied": s.ChangesApplied.Load(),
		"evicted": s.Evicted.Load(), "expired": s.Expired.Load(), "compactions": s.Compactions.Load(),
	}
}

func (s *Stats) rejectIdentify(err error) {
	if errors.Is(err, ident.ErrBlocked) {
		s.IdentifyBlocked.Add(1)
		return
	}
	s.IdentifyInvalid.Add(1)
}

func (s *Stats) countOutcome(o Outcome) {
	switch o {
	case OutcomeQueued, OutcomeAnonymous:
		s.CaptureQueued.Add(1)
	case OutcomeAnonymised:
		s.CaptureAnonymised.Add(1)
	}
}

// CacheStats describe the profile cache.
type CacheStats struct {
	Profiles    uint64 `json:"profiles"`
	Identifiers uint64 `json:"identifiers"`
	MaxProfiles uint64 `json:"maxProfiles"`
	Generation  uint64 `json:"generation"`
}

// CacheStats counts the live cache. Counting identifiers walks their
// index: cheap for a technician's status, not for a hot path.
func (a *Agent) CacheStats() (CacheStats, error) {
	var s CacheStats
	err := a.db.View(func(tx *store.Tx) error {
		c := a.live(tx)
		s = CacheStats{Profiles: c.count(), MaxProfiles: a.cfg.MaxProfiles, Generation: c.gen}
		return c.idents().ForEach(nil, func(_, _ []byte) error { s.Identifiers++; return nil })
	})
	return s, err
}
