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
	"path/filepath"
	"syscall"

	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
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
	db, err := store.Open(filepath.Join(dir, "store.db"), cfg.StoreOptions(key, log))
	if err != nil {
		return err
	}
	log.Info("storeagent started", "version", version, "kind", cfg.Kind, "state_dir", dir, "outbox_records", db.QueuedRecords())
	<-ctx.Done()
	log.Info("storeagent stopping")
	if err := db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("storeagent stopped")
	return nil
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
