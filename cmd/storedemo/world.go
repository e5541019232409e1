package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
	"github.com/storeagent/storeagent/sync/central"
)

// Names on the wire and on the shop floor.
const (
	tenant   = "demo"
	storeID  = "store-0001"
	agentID  = "agent-01"
	posID    = "pos-1"
	kioskID  = "kiosk-1"
	tillPort = "till-1"
	version  = "storedemo"
)

// world is every part of the demo, built and running. run owns it: it
// starts the parts, drives them from its own goroutine, and stops them.
type world struct {
	dir    string
	log    *slog.Logger
	keys   central.Keys
	broker *broker
	pty    *pty

	central     *central.Central
	centralDir  string
	stopCentral func() error

	cfg    *firmwareconfig.Config
	db     *store.DB
	ag     *agent.Agent
	link   *cdp.Sync
	till   *scanner.Scanner
	scans  chan scanner.Result // the till's results, as the POS sees them
	pos    *localapi.Client
	kiosk  *localapi.Client
	stopAg func() error

	masker *support.Masker
}

// startWorld builds and starts every part in dir: broker, central, agent.
// On error, what was started is stopped again.
func startWorld(ctx context.Context, dir string, customers int, log *slog.Logger) (w *world, err error) {
	w = &world{dir: dir, log: log, broker: &broker{log: log.With("component", "broker")}}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.stop())
		}
	}()
	if w.pty, err = openPTY(); err != nil {
		return w, err
	}
	if w.keys, err = central.GenerateKeys(filepath.Join(dir, "keys")); err != nil {
		return w, err
	}
	if w.masker, err = support.NewMasker(w.keys.Tenant); err != nil {
		return w, err
	}
	if err = w.broker.Start(); err != nil {
		return w, err
	}
	if err = w.startCentral(ctx, customers); err != nil {
		return w, err
	}
	return w, w.startAgent(ctx)
}

func (w *world) startCentral(ctx context.Context, customers int) error {
	w.centralDir = filepath.Join(w.dir, "central")
	c, err := central.New(central.Config{
		Broker: w.broker.URL(), Tenant: tenant, Store: storeID, Key: w.keys.Central, TenantKey: w.keys.Tenant,
		DataDir: w.centralDir, Customers: customers, Seed: 1, Logger: w.log,
	})
	if err != nil {
		return err
	}
	w.central = c
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	w.stopCentral = func() error { cancel(); return <-done }
	select {
	case <-c.Ready():
		return nil
	case err := <-done:
		w.stopCentral = func() error { return nil }
		return fmt.Errorf("central stopped at start: %w", err)
	case <-time.After(stepTimeout):
		return fmt.Errorf("central did not connect to the broker within %s", stepTimeout)
	}
}

// agentConfig is the embedded default with what the demo changes: names,
// the central's keys, a fast-reconnecting link, the API on a free loopback
// port, and the till's scanner on the pty.
func (w *world) agentConfig() (*firmwareconfig.Config, error) {
	cfg := firmwareconfig.Default()
	cfg.Kind = "pos"
	cfg.Agent.Tenant, cfg.Agent.StoreID, cfg.Agent.ID = tenant, storeID, agentID
	cfg.Agent.TenantKeyFile = filepath.Join(w.dir, "keys", central.TenantKeyFile)
	cfg.Ident.DeviceIDs = []string{posID, kioskID}
	cfg.Store.Dir = filepath.Join(w.dir, "agent")
	cfg.Store.InitialMmapMB = 8
	cfg.Sync.Enabled = true
	cfg.Sync.Broker = w.broker.URL()
	cfg.Sync.CentralKeys = []string{filepath.Join(w.dir, "keys", central.PublicKeyFile)}
	cfg.Sync.KeepAlive = firmwareconfig.Duration(5 * time.Second)
	cfg.Sync.BackoffMin = firmwareconfig.Duration(50 * time.Millisecond)
	cfg.Sync.BackoffMax = firmwareconfig.Duration(300 * time.Millisecond)
	cfg.Sync.AckTimeout = firmwareconfig.Duration(2 * time.Second)
	cfg.API = localapi.Config{Socket: "none", Listen: "127.0.0.1:0"}
	cfg.Scanners = []firmwareconfig.ScannerSection{{
		Name: tillPort, Path: w.pty.Path(), Terminator: "CR", Use: string(scanner.UseIdentify),
		Purpose: "loyalty", Device: posID,
	}}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return cfg, nil
}

// startAgent builds what cmd/storeagent's build does, from the same
// config mapping, and runs it.
func (w *world) startAgent(ctx context.Context) error {
	cfg, err := w.agentConfig()
	if err != nil {
		return err
	}
	w.cfg = cfg
	if err := os.MkdirAll(cfg.Store.Dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	key, _, err := store.LoadOrCreateKeyFile(cfg.KeyFilePath(cfg.Store.Dir))
	if err != nil {
		return err
	}
	tenantKey, err := store.LoadKeyFile(cfg.Agent.TenantKeyFile)
	if err != nil {
		return err
	}
	if w.db, err = store.Open(filepath.Join(cfg.Store.Dir, "store.db"), cfg.StoreOptions(key, w.log)); err != nil {
		return err
	}
	if w.ag, err = agent.New(w.db, cfg.AgentConfig(tenantKey, w.log)); err != nil {
		return err
	}
	sc, err := cfg.SyncConfig(version)
	if err != nil {
		return err
	}
	if w.link, err = cdp.New(sc, w.db, w.ag, w.log); err != nil {
		return err
	}
	if err := w.buildTill(cfg); err != nil {
		return err
	}
	api := localapi.NewServer(localapi.Options{Backend: w.ag, Logger: w.log})
	lns, err := cfg.APIConfig(cfg.Store.Dir).Listeners()
	if err != nil {
		return err
	}
	addr := lns[0].Addr().String()
	w.pos, w.kiosk = &localapi.Client{Addr: addr}, &localapi.Client{Addr: addr}
	w.runAgent(ctx, api, lns)
	return w.waitTillOpen(ctx)
}

// buildTill wires the till's scanner to the agent through the consumer
// the daemon uses, and passes each result on to the demo's POS.
func (w *world) buildTill(cfg *firmwareconfig.Config) error {
	sec := cfg.Scanners[0]
	cons := scanner.NewConsumer(cfg.Consumer(sec), w.ag, w.log)
	w.scans = make(chan scanner.Result, 8)
	h := scanner.HandlerFunc(func(ctx context.Context, s scanner.Scan) {
		cons.HandleScan(ctx, s)
		select {
		case w.scans <- cons.Last():
		default: // the demo reads one result per card it sends
		}
	})
	var err error
	w.till, err = scanner.New(sec.Scanner(), h, w.log)
	return err
}

// runAgent runs the agent's parts, each on a goroutine that stopAg
// cancels and waits for.
func (w *world) runAgent(ctx context.Context, api *localapi.Server, lns []net.Listener) {
	ctx, cancel := context.WithCancel(ctx)
	parts := support.NewParts(ctx)
	start := parts.Go
	start(w.ag.Run)
	start(w.link.Run)
	start(w.till.Run)
	for _, ln := range lns {
		start(func(ctx context.Context) error { return api.Run(ctx, ln) })
	}
	w.stopAg = func() error {
		cancel()
		return parts.Wait()
	}
}

func (w *world) waitTillOpen(ctx context.Context) error {
	return waitFor(ctx, func() bool { return w.till.Stats().Connected },
		func() string {
			return fmt.Sprintf("the till's scanner did not open %s (last error: %q)", w.pty.Path(), w.till.Stats().LastError)
		})
}

// stop stops every part in the documented order (main.go) and closes
// their files. It is safe on a partly started world.
func (w *world) stop() error {
	var errs []error
	if w.stopAg != nil {
		errs = append(errs, w.stopAg())
		w.stopAg = nil
	}
	if w.stopCentral != nil {
		errs = append(errs, w.stopCentral())
		w.stopCentral = nil
	}
	w.broker.Stop()
	if w.db != nil {
		errs = append(errs, w.db.Close())
		w.db = nil
	}
	if w.central != nil {
		errs = append(errs, w.central.Close())
		w.central = nil
	}
	if w.pty != nil {
		errs = append(errs, w.pty.Close())
		w.pty = nil
	}
	return errors.Join(errs...)
}
