package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/cmd/internal/metrics"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
)

// daemonMetrics is the daemon's Prometheus endpoint ([metrics]): the
// latency hooks, set before the agent and the link are built, and the
// listener, opened once every part exists. A nil *daemonMetrics (metrics
// off) does nothing.
type daemonMetrics struct {
	cfg firmwareconfig.MetricsSection
	lat *metrics.Latencies
	ln  net.Listener // nil when the address could not be bound
	h   http.Handler
}

func newMetrics(cfg firmwareconfig.MetricsSection) *daemonMetrics {
	if !cfg.Enabled {
		return nil
	}
	return &daemonMetrics{cfg: cfg, lat: metrics.NewLatencies()}
}

// agentConfig sets the identify latency hook.
func (m *daemonMetrics) agentConfig(c agent.Config) agent.Config {
	if m != nil {
		c.ObserveIdentify = m.lat.ObserveIdentify
	}
	return c
}

// syncConfig sets the ack latency hook.
func (m *daemonMetrics) syncConfig(c *cdp.Config) {
	if m != nil {
		c.Uplink.ObserveAck = m.lat.ObserveAck
	}
}

// listenMetrics opens the metrics listener over every part of d. A port
// already taken is logged, not fatal: metrics are diagnostics, and a till
// must identify and capture without them.
func (d *daemon) listenMetrics(db *store.DB, log *slog.Logger) error {
	m := d.metrics
	if m == nil {
		return nil
	}
	log = log.With("component", "metrics")
	src := metrics.Sources{Outbox: db, Agent: d.ag}
	if d.link != nil {
		src.Link = d.link
	}
	if d.bus != nil {
		src.Bus = d.bus
	}
	for _, sc := range d.scanners {
		src.Scanners = append(src.Scanners, sc)
	}
	reg, err := metrics.NewRegistry(metrics.NewCollector(src), m.lat)
	if err != nil {
		return err
	}
	m.h = metrics.Handler(reg, log)
	m.ln, err = net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		log.Error("metrics not served", "listen", m.cfg.Listen, "err", err)
		return nil
	}
	log.Info("metrics listening", "addr", m.ln.Addr().String())
	return nil
}

// run serves /metrics until ctx ends.
func (m *daemonMetrics) run(ctx context.Context) error {
	if m == nil || m.ln == nil {
		return nil
	}
	return metrics.Serve(ctx, m.ln, m.h)
}
