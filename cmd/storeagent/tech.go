package main

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/cmd/internal/doctor"
	"github.com/storeagent/storeagent/cmd/internal/logring"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
)

// techEnv is what the technician backend needs beyond the daemon's parts.
type techEnv struct {
	configPath string        // the -config file; empty: the embedded default
	ring       *logring.Ring // the daemon's recent log lines
}

// tech is the daemon's side of storectl: the technician routes of the
// local API over the daemon's store, link, scanners and log.
type tech struct {
	env      techEnv
	cfg      *firmwareconfig.Config
	dir      string
	db       *store.DB
	agentCfg agent.Config // lookups make their own agent from it
	link     *cdp.Sync    // nil when sync is off
	status   *status
	masker   *support.Masker
	scans    *scanHub
	log      *slog.Logger
}

var _ localapi.Technician = (*tech)(nil)

func newTech(cfg *firmwareconfig.Config, dir string, db *store.DB, tenantKey []byte, d *daemon, st *status, env techEnv, log *slog.Logger) (*tech, error) {
	m, err := support.NewMasker(tenantKey)
	if err != nil {
		return nil, err
	}
	return &tech{
		env: env, cfg: cfg, dir: dir, db: db, agentCfg: cfg.AgentConfig(tenantKey, log), link: d.link,
		status: st, masker: m, scans: d.scans, log: log.With("component", "tech"),
	}, nil
}

func (t *tech) Doctor(ctx context.Context) (localapi.DoctorReport, error) {
	st, err := t.status.Status(ctx)
	if err != nil {
		return localapi.DoctorReport{}, err
	}
	return doctor.Run(ctx, doctor.Env{
		Source: doctor.SourceDaemon, ConfigPath: t.env.configPath, Config: t.cfg, StateDir: t.dir,
		Store: t.db, Status: &st, Running: true,
	}), nil
}

func (t *tech) Outbox(ctx context.Context) (localapi.OutboxReport, error) {
	st, err := t.status.Status(ctx)
	if err != nil {
		return localapi.OutboxReport{}, err
	}
	ob, err := t.db.OutboxStats()
	return localapi.OutboxReport{OutboxStatus: st.Outbox, FirstSeq: ob.FirstSeq, LastSeq: ob.LastSeq, Link: st.Link.State}, err
}

func (t *tech) PeekOutbox(_ context.Context, n int) (localapi.OutboxPeek, error) {
	return support.Peek(t.db, t.masker, n, time.Now())
}

func (t *tech) Resync(ctx context.Context) (localapi.ResyncResult, error) {
	if t.link == nil {
		return localapi.ResyncResult{}, localapi.ErrSyncDisabled
	}
	t.link.Resync()
	cur, err := t.status.ag.Cursor()
	state := "disconnected"
	if t.link.Status().Link.Connected {
		state = "connected"
	}
	t.log.Info("resync requested by a technician", "cursor", cur, "link", state)
	return localapi.ResyncResult{Requested: true, Cursor: cur, Link: state}, err
}

func (t *tech) Compact(ctx context.Context, progress func(done, total uint64)) (localapi.CompactResult, error) {
	res, err := t.db.Compact(ctx, progress)
	if err != nil {
		return localapi.CompactResult{}, err
	}
	return localapi.CompactResult{Path: t.db.Path(), BeforeBytes: res.Before, AfterBytes: res.After, Records: res.Keys, TookMs: res.Took.Milliseconds()}, nil
}

func (t *tech) Lookup(ctx context.Context, req localapi.LookupRequest) (localapi.LookupResult, error) {
	res, err := support.Lookup(ctx, t.db, t.agentCfg, t.masker, req)
	if err == nil {
		t.log.Info("support lookup", "purpose", req.Purpose, "kind", res.Kind, "known", res.Known)
	}
	return res, err
}

func (t *tech) Logs(_ context.Context, n int) (localapi.LogLines, error) {
	lines, dropped := t.env.ring.Lines(n)
	return localapi.LogLines{Lines: lines, Dropped: dropped}, nil
}

func (t *tech) Config(context.Context) (localapi.ConfigView, error) {
	b, err := support.RedactedConfig(t.cfg)
	return localapi.ConfigView{Path: cmp.Or(t.env.configPath, firmwareconfig.DefaultName), TOML: string(b)}, err
}

func (t *tech) WatchScans(ctx context.Context, port string, emit func(localapi.ScanEvent) error) error {
	return t.scans.watch(ctx, port, emit)
}

// scanHub lets technicians watch the scans of the daemon's ports: each
// port's handler is a watchedPort in front of its consumer, which tells
// the watchers what the consumer did with each good scan.
type scanHub struct {
	rules ident.Rules
	mu    sync.Mutex // guards ports and each port's subs
	ports []*watchedPort
}

// watchedPort is the scanner.Handler of one port.
type watchedPort struct {
	hub      *scanHub
	name     string
	path     string
	consumer *scanner.Consumer
	sc       *scanner.Scanner // set by bind before the daemon runs
	subs     map[chan localapi.ScanEvent]struct{}
}

// watchQueue bounds what a slow watcher may fall behind by; past it scans
// are not shown to it (the consumer is never held up).
const watchQueue = 64

// rejectPoll is how often a watcher's rejects are read from the port's
// counters: the scanner hands only good scans to its handler.
const rejectPoll = 200 * time.Millisecond

func newScanHub(rules ident.Rules) *scanHub { return &scanHub{rules: rules} }

// handler returns the handler of a port: c, watched.
func (h *scanHub) handler(s firmwareconfig.ScannerSection, c *scanner.Consumer) *watchedPort {
	p := &watchedPort{hub: h, name: s.Name, path: s.Path, consumer: c, subs: map[chan localapi.ScanEvent]struct{}{}}
	h.mu.Lock()
	h.ports = append(h.ports, p)
	h.mu.Unlock()
	return p
}

// bind gives the port its scanner, for its reject counters.
func (p *watchedPort) bind(sc *scanner.Scanner) { p.sc = sc }

// HandleScan hands the scan to the consumer, then describes it, masked,
// to the watchers.
func (p *watchedPort) HandleScan(ctx context.Context, s scanner.Scan) {
	p.consumer.HandleScan(ctx, s)
	p.hub.mu.Lock()
	watched := len(p.subs) > 0
	p.hub.mu.Unlock()
	if !watched {
		return
	}
	ev := support.DescribeScan(s, p.path, p.hub.rules)
	res := p.consumer.Last()
	ev.Outcome, ev.Permitted = res.Outcome, res.Permitted
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	for ch := range p.subs {
		select {
		case ch <- ev:
		default: // the watcher is behind: it misses this one
		}
	}
}

func (h *scanHub) find(port string) *watchedPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.ports {
		if p.name == port || p.path == port {
			return p
		}
	}
	return nil
}

// watch sends the port's events to emit until ctx ends or emit fails.
func (h *scanHub) watch(ctx context.Context, port string, emit func(localapi.ScanEvent) error) error {
	p := h.find(port)
	if p == nil || p.sc == nil {
		return localapi.ErrUnknownPort
	}
	ch := make(chan localapi.ScanEvent, watchQueue)
	h.mu.Lock()
	p.subs[ch] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(p.subs, ch)
		h.mu.Unlock()
	}()
	last := p.sc.Stats().Rejects
	if err := emit(localapi.ScanEvent{Event: localapi.ScanWatching, At: time.Now(), Port: p.name, Path: p.path}); err != nil {
		return err
	}
	tick := time.NewTicker(rejectPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-ch:
			if err := emit(ev); err != nil {
				return err
			}
		case <-tick.C:
			var err error
			if last, err = p.emitRejects(last, emit); err != nil {
				return err
			}
		}
	}
}

// emitRejects reports the rejects counted since last, by reason.
func (p *watchedPort) emitRejects(last map[scanner.Reason]uint64, emit func(localapi.ScanEvent) error) (map[scanner.Reason]uint64, error) {
	now := p.sc.Stats().Rejects
	reasons := make([]scanner.Reason, 0, len(now))
	for r := range now {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		if d := now[r] - last[r]; d > 0 {
			ev := localapi.ScanEvent{Event: localapi.ScanReject, At: time.Now(), Port: p.name, Path: p.path, Reject: r.String(), Count: d}
			if err := emit(ev); err != nil {
				return now, err
			}
		}
	}
	return now, nil
}
