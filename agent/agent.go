package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
)

// Config configures the agent core.
type Config struct {
	Tenant  string // names on the wire
	StoreID string
	AgentID string

	// TenantKey is the HMAC key shared with the central: identifiers are
	// compared only as HMAC-SHA256(TenantKey, kind ":" value).
	TenantKey []byte

	// Ident holds the loyalty program's rules, QR forms, blocked values and
	// the store's device ids.
	Ident ident.Rules

	// Policy is the policy until the central sends one.
	Policy consent.Policy

	// CriticalEvents are the track events with reserved room in the outbox
	// (purchases, refunds). Consent and rights events are always critical;
	// every other event is telemetry.
	CriticalEvents []string

	// Identifying are the property names removed with identity. Default
	// event.DefaultIdentifying.
	Identifying []string

	// MaxProfiles bounds the cache; past it the profile that expires first
	// is dropped. Default 2,000,000.
	MaxProfiles uint64

	// LocalTTL is how long a profile made here (an enrolment at a kiosk, a
	// consent decision for a customer not cached) lives without the
	// central refreshing it. Default 30 days.
	LocalTTL time.Duration

	// PendingMaxAge is how long events of a customer whose consent is
	// undecided are held; past it they leave without identity. Default 1h.
	PendingMaxAge time.Duration

	// CompactWithin bounds how long erased bytes stay in the database file
	// (invariant 5). Default 15 minutes.
	CompactWithin time.Duration

	// MaintainEvery is the period of expiry, held-event and compaction
	// checks. Default 30s.
	MaintainEvery time.Duration

	// ObserveIdentify, when set, is called with the time each Identify
	// took, refusals included (metrics). It runs on Identify's path: it must
	// be cheap, safe for concurrent use and never block.
	ObserveIdentify func(time.Duration)

	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

func (c Config) withDefaults() Config {
	if c.MaxProfiles == 0 {
		c.MaxProfiles = 2_000_000
	}
	if c.LocalTTL <= 0 {
		c.LocalTTL = 30 * 24 * time.Hour
	}
	if c.PendingMaxAge <= 0 {
		c.PendingMaxAge = time.Hour
	}
	if c.CompactWithin <= 0 {
		c.CompactWithin = 15 * time.Minute
	}
	if c.MaintainEvery <= 0 {
		c.MaintainEvery = 30 * time.Second
	}
	if c.Identifying == nil {
		c.Identifying = event.DefaultIdentifying
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Agent is the domain core. Its methods are safe for concurrent use.
type Agent struct {
	db     *store.DB
	cfg    Config
	hasher *ident.Hasher
	log    *slog.Logger

	policy atomic.Pointer[consent.Policy] // the policy in force
	mark   atomic.Pointer[liveMark]       // the live generation, when known without reading it

	// identifies carries identify events of unknown customers to the
	// goroutine of Run, so Identify never waits for a disk flush.
	identifies chan []byte

	stats Stats

	// dirty holds the customers the live cache changed while a snapshot
	// was being built (nil when none is).
	dirtyMu sync.Mutex
	dirty   map[string]struct{}
}

// New makes the agent core over an open store. The policy in force is the
// central's, if one was applied before, else cfg.Policy.
func New(db *store.DB, cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Ident.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	h, err := ident.NewHasher(cfg.TenantKey)
	if err != nil {
		return nil, fmt.Errorf("agent: tenant key: %w", err)
	}
	a := &Agent{db: db, cfg: cfg, hasher: h, log: cfg.Logger.With("component", "agent"), identifies: make(chan []byte, 1024)}
	p := cfg.Policy
	a.policy.Store(&p)
	// Marks are set here (no snapshot runs yet), after each compaction
	// and by the generation switch: see liveMark.
	mark := func(tx *store.Tx) { a.mark.Store(&liveMark{gen: tx.MetaUint(metaGen), since: tx.ID()}) }
	db.AfterCompact(mark)
	err = db.View(func(tx *store.Tx) error {
		mark(tx)
		saved, err := loadPolicy(tx)
		if saved != nil {
			a.policy.Store(saved)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return a, nil
}

// Policy returns the policy in force.
func (a *Agent) Policy() *consent.Policy { return a.policy.Load() }

func (a *Agent) now() int64 { return a.cfg.Now().UnixMilli() }

func (a *Agent) critical(eventName string) bool {
	return slices.Contains(a.cfg.CriticalEvents, eventName)
}

// Errors callers branch on.
var (
	// ErrUnknownPurpose is returned when a request names a purpose the policy
	// does not list.
	ErrUnknownPurpose = errors.New("unknown purpose")
	// ErrUnknownProfile is returned by preference-centre calls for a profile
	// the cache does not hold.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrAlreadyEnrolled is returned by Enroll for an identifier that
	// already belongs to a profile: identify it instead.
	ErrAlreadyEnrolled = errors.New("identifier already belongs to a profile")
	// ErrBadRequest is returned (wrapped, with the reason) for a request that
	// is malformed: a missing field, a bad status, an id of the wrong form.
	ErrBadRequest = errors.New("bad request")
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
