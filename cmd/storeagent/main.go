// Command storeagent is the in-store agent daemon. main wires config,
// store, agent, devices and sync together; it holds no logic of its own.
//
// Start order: config, keys, store, agent core, then the parts that take
// input or talk to the network (scanners, the local API, the device bus, the
// link to the central), each on its own goroutine.
//
// Shutdown order, on SIGINT or SIGTERM: every part stops taking input and
// returns (the local API finishes requests in flight, the link says goodbye
// to the central); only when all have returned is the store closed, which
// commits every append already queued and releases the file lock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/cmd/internal/logring"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/bus"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "storeagent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("storeagent", flag.ContinueOnError)
	configPath := fs.String("config", "", "config file (TOML); default: the embedded offline default")
	stateDir := fs.String("state-dir", "", "state directory; overrides store.dir")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println("storeagent", version)
		return nil
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *stateDir != "" {
		cfg.Store.Dir = *stateDir
	}
	ring := logring.New(logring.DefaultLines)              // recent lines, for storectl bundle
	log := cfg.Log.Logger(io.MultiWriter(ring, os.Stderr)) // the ring first: it never fails
	dir, err := cfg.StateDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	keyPath := cfg.KeyFilePath(dir)
	key, created, err := store.LoadOrCreateKeyFile(keyPath)
	if err != nil {
		return err
	}
	if created {
		log.Warn("generated a new at-rest key; back it up with the device's secrets", "path", keyPath)
	}
	tenantKey, err := loadTenantKey(cfg, dir, log)
	if err != nil {
		return err
	}
	db, err := store.Open(filepath.Join(dir, "store.db"), cfg.StoreOptions(key, log))
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := build(cfg, dir, db, tenantKey, log, techEnv{configPath: *configPath, ring: ring})
	if err != nil {
		return err
	}
	log.Info("storeagent started", "version", version, "kind", cfg.Kind, "state_dir", dir,
		"outbox_records", db.QueuedRecords(), "sync", cfg.Sync.Enabled, "bus", cfg.Bus.Enabled, "api", d.apiAddrs, "scanners", len(d.scanners))
	sd := newNotifier(log)
	sd.ready(fmt.Sprintf("serving; %d events queued", db.QueuedRecords()))
	go sd.watchdog(ctx, watchdogInterval(), func() error { return db.View(func(*store.Tx) error { return nil }) })
	err = d.serve(ctx)
	sd.stopping()
	log.Info("storeagent stopping")
	if cerr := db.Close(); cerr != nil {
		return errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	log.Info("storeagent stopped")
	return err
}

// daemon is every long-lived part, built and ready to run.
type daemon struct {
	ag        *agent.Agent
	link      *cdp.Sync
	bus       *bus.Bus
	scanners  []*scanner.Scanner
	scans     *scanHub // lets storectl watch the scanners' scans
	api       *localapi.Server
	listeners []net.Listener
	apiAddrs  []string
	metrics   *daemonMetrics // nil when [metrics] is off
}

func build(cfg *firmwareconfig.Config, dir string, db *store.DB, tenantKey []byte, log *slog.Logger, env techEnv) (*daemon, error) {
	m := newMetrics(cfg.Metrics)
	ag, err := agent.New(db, m.agentConfig(cfg.AgentConfig(tenantKey, log)))
	if err != nil {
		return nil, err
	}
	d := &daemon{ag: ag, scans: newScanHub(cfg.Ident), metrics: m}
	if cfg.Sync.Enabled {
		sc, err := cfg.SyncConfig(version)
		if err != nil {
			return nil, err
		}
		m.syncConfig(&sc)
		if d.link, err = cdp.New(sc, db, ag, log); err != nil {
			return nil, err
		}
	}
	if cfg.Bus.Enabled {
		if d.bus, err = bus.New(cfg.BusConfig(), ag, log); err != nil {
			return nil, err
		}
	}
	for _, s := range cfg.Scanners {
		port := d.scans.handler(s, scanner.NewConsumer(cfg.Consumer(s), ag, log))
		sc, err := scanner.New(s.Scanner(), port, log)
		if err != nil {
			return nil, err
		}
		port.bind(sc)
		d.scanners = append(d.scanners, sc)
	}
	if err := d.buildAPI(cfg, dir, db, tenantKey, log, env); err != nil {
		return nil, err
	}
	return d, d.listenMetrics(db, log)
}

func (d *daemon) buildAPI(cfg *firmwareconfig.Config, dir string, db *store.DB, tenantKey []byte, log *slog.Logger, env techEnv) error {
	api := cfg.APIConfig(dir)
	token, err := api.Token()
	if err != nil {
		return err
	}
	st := &status{cfg: cfg, started: time.Now(), db: db, ag: d.ag, link: d.link, bus: d.bus, scanners: d.scanners}
	tech, err := newTech(cfg, dir, db, tenantKey, d, st, env, log)
	if err != nil {
		return err
	}
	d.api = localapi.NewServer(localapi.Options{Backend: d.ag, Status: st, Tech: tech, Logger: log, Token: token})
	if d.listeners, err = api.Listeners(); err != nil {
		return err
	}
	for _, ln := range d.listeners {
		d.apiAddrs = append(d.apiAddrs, ln.Addr().String())
	}
	return nil
}

// serve runs every part until ctx ends, and returns once all have stopped.
func (d *daemon) serve(ctx context.Context) error {
	parts := support.NewParts(ctx)
	start := parts.Go
	start(d.ag.Run)
	if d.link != nil {
		start(d.link.Run)
	}
	if d.bus != nil {
		start(d.bus.Run)
	}
	for _, sc := range d.scanners {
		start(sc.Run)
	}
	for _, ln := range d.listeners {
		start(func(ctx context.Context) error { return d.api.Run(ctx, ln) })
	}
	start(d.metrics.run)
	return parts.Wait()
}

// loadTenantKey loads the key identifiers are hashed with. The default path
// is generated at first start (an agent with no central); a configured path
// must exist: it comes from the central.
func loadTenantKey(cfg *firmwareconfig.Config, dir string, log *slog.Logger) ([]byte, error) {
	if cfg.Agent.TenantKeyFile != "" {
		return store.LoadKeyFile(cfg.Agent.TenantKeyFile)
	}
	path := filepath.Join(dir, "tenant.key")
	key, created, err := store.LoadOrCreateKeyFile(path)
	if created {
		log.Warn("generated a tenant key: identifiers will not match a central's until agent.tenant_key_file names the tenant's key", "path", path)
	}
	return key, err
}

func loadConfig(path string) (*firmwareconfig.Config, error) {
	if path == "" {
		return firmwareconfig.Default(), nil
	}
	cfg, err := firmwareconfig.Load(path)
	if err != nil {
		var ce firmwareconfig.Errors
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("config has %d problem(s):\n%w", len(ce), err)
		}
		return nil, err
	}
	return cfg, nil
}
