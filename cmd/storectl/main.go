// Command storectl is the field technician's CLI for the store agent:
// status, doctor, a live scan test, the outbox, sync, compaction, config
// checks, support bundles and lookups, without personal data. main wires
// the process (signals, streams, exit code) to package cli, which holds
// every command.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/storeagent/storeagent/cmd/storectl/cli"
)

// version is set at build time: -ldflags "-X main.version=..."
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Options{Version: version})
	stop()
	os.Exit(code)
}
