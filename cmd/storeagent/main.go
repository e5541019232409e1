// Command storeagent is the in-store agent daemon. main wires config,
// store, agent, devices and sync together; it holds no logic of its own.
//
// Shutdown order, on SIGINT or SIGTERM: stop taking input (devices, local
// API), stop the link to the central, then close the store, which commits
// every append already queued and releases the file lock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/storeagent/storeagent/agent"
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
	log := cfg.Log.Logger(os.Stderr)
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
	ag, err := agent.New(db, cfg.AgentConfig(tenantKey, log))
	if err != nil {
		return err
	}
	var link *cdp.Sync
	if cfg.Sync.Enabled {
		sc, err := cfg.SyncConfig(version)
		if err != nil {
			return err
		}
		if link, err = cdp.New(sc, db, ag, log); err != nil {
			return err
		}
	}
	log.Info("storeagent started", "version", version, "kind", cfg.Kind, "state_dir", dir,
		"outbox_records", db.QueuedRecords(), "sync", cfg.Sync.Enabled)
	err = serve(ctx, ag, link)
	log.Info("storeagent stopping")
	if cerr := db.Close(); cerr != nil {
		return errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	log.Info("storeagent stopped")
	return err
}

// serve runs every long-lived part until ctx ends. Each stops on
// cancellation and serve waits for all of them; the store closes after.
func serve(ctx context.Context, ag *agent.Agent, link *cdp.Sync) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := func(run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		})
	}
	start(ag.Run)
	if link != nil {
		start(link.Run)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
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
