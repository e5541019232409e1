package main

import (
	"context"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/bus"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
)

// status assembles the local API's Status from every part of the daemon.
type status struct {
	cfg      *firmwareconfig.Config
	started  time.Time
	db       *store.DB
	ag       *agent.Agent
	link     *cdp.Sync // nil when sync is off
	bus      *bus.Bus  // nil when the bus is off
	scanners []*scanner.Scanner
}

var _ localapi.StatusSource = (*status)(nil)

func (s *status) Status(ctx context.Context) (localapi.Status, error) {
	now := time.Now()
	out := localapi.Status{
		Version: version, Kind: s.cfg.Kind, Tenant: s.cfg.Agent.Tenant, StoreID: s.cfg.Agent.StoreID, AgentID: s.cfg.Agent.ID,
		Now: now, StartedAt: s.started, UptimeSeconds: int64(now.Sub(s.started).Seconds()),
		Counters: s.ag.Stats(),
	}
	ob, err := s.db.OutboxStats()
	if err != nil {
		return out, err
	}
	out.Outbox = support.OutboxStatus(ob, now)
	cache, err := s.ag.CacheStats()
	if err != nil {
		return out, err
	}
	out.Cache = localapi.CacheStatus{Profiles: cache.Profiles, Identifiers: cache.Identifiers, MaxProfiles: cache.MaxProfiles}
	size, _ := s.db.FileSize()
	out.Store = localapi.StoreStatus{Path: s.db.Path(), FileBytes: size}
	cur, _ := s.ag.Cursor()
	out.Changes = localapi.ChangesStatus{Cursor: cur}
	out.Link = localapi.LinkStatus{State: "disabled"}
	if s.link != nil {
		s.linkStatus(&out)
	}
	if s.bus != nil {
		busStatus(&out, s.bus.Stats())
	}
	for _, sc := range s.scanners {
		out.Scanners = append(out.Scanners, scannerStatus(sc.Stats()))
	}
	return out, nil
}

func (s *status) linkStatus(out *localapi.Status) {
	st := s.link.Status()
	state := "disconnected"
	if st.Link.Connected {
		state = "connected"
	}
	out.Link = localapi.LinkStatus{State: state, Broker: st.Link.Broker, LastConnect: st.Link.LastConnect,
		LastError: st.Link.LastError, LastErrorAt: st.Link.LastErrorAt}
	if st.Uplink.LastAckAt > 0 {
		out.Outbox.LastAck = time.UnixMilli(st.Uplink.LastAckAt)
	}
	out.Outbox.LastAckSeq = st.Uplink.AckedThrough
	out.Link.ClockSkewMs = st.Uplink.ClockSkewMs
	out.Changes.Latest = max(st.Downlink.Head, out.Changes.Cursor)
	out.Changes.Lag = out.Changes.Latest - out.Changes.Cursor
	if st.Downlink.LastChangeAt > 0 {
		out.Changes.LastApplied = time.UnixMilli(st.Downlink.LastChangeAt)
	}
	for reason, n := range st.Downlink.Rejected {
		out.Rejects = append(out.Rejects, localapi.RejectStatus{Source: "downlink", Reason: reason, Count: n})
	}
}

func scannerStatus(st scanner.Stats) localapi.ScannerStatus {
	out := localapi.ScannerStatus{Name: st.Port, Path: st.Path, Connected: st.Connected, Frames: st.Frames,
		LastFrame: st.LastFrame, LastError: st.LastError, LastErrorAt: st.LastErrorAt, Rejects: map[string]uint64{}}
	for r, n := range st.Rejects {
		out.Rejects[r.String()] = n
	}
	return out
}

func busStatus(out *localapi.Status, st bus.Stats) {
	for kind, n := range st.Messages {
		out.Counters["bus_"+kind] = n
	}
	out.Counters["bus_devices"] = uint64(st.Devices)
	out.Counters["bus_dropped"] = st.Dropped
	out.Counters["bus_auth_failures"] = st.AuthFailures
	for code, n := range st.Rejects {
		if n > 0 {
			out.Rejects = append(out.Rejects, localapi.RejectStatus{Source: "bus", Reason: string(code), Count: n})
		}
	}
}
