// Command storedemo narrates one store day, end to end, in one process:
// an embedded MQTT broker (mochi), the reference central (sync/central,
// what cdpsim wraps) with a few hundred synthetic customers, the agent
// built from the same parts as cmd/storeagent, a simulated scanner on a
// pseudo-terminal and a simulated POS and kiosk on the local API.
//
// `make demo` runs it. It needs nothing but Go: no mosquitto, no socat. Its
// state lives in a temporary directory removed at the end. stdout holds the
// narration and nothing else; -v adds the parts' logs on stderr. The
// narration never shows a clear identifier, e-mail or name: cards are
// masked as storectl masks them and customers appear as short refs.
//
// Every step checks its outcome; the first that fails ends the demo with
// exit status 1 and a message saying which step and why (130 when
// interrupted).
//
// Shutdown order: the agent's parts stop taking input (scanner, local API)
// and its link says goodbye; then the central finishes its commit group and
// disconnects; then the broker closes; then the store and the central's
// files are closed and the temporary directory removed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	verbose := flag.Bool("v", false, "also write the broker's, central's and agent's logs to stderr")
	customers := flag.Int("customers", defaultCustomers, "synthetic customers the central holds")
	flag.Parse()
	opts := options{Logs: io.Discard, Customers: *customers}
	if *verbose {
		opts.Logs = os.Stderr
	}
	if _, err := run(ctx, os.Stdout, opts); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "storedemo: interrupted; everything it started is stopped and its state removed")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "storedemo:", err)
		os.Exit(1)
	}
}
