package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
)

// app is one run of storectl: its flags, its streams, and what it found
// out about the agent.
type app struct {
	opts   Options
	stdout io.Writer
	stderr io.Writer
	flags  struct {
		config    string
		stateDir  string
		socket    string
		addr      string
		tokenFile string
		json      bool
		timeout   time.Duration
	}

	cfg    *firmwareconfig.Config // loaded by config()
	cfgErr error
	loaded bool
	said   map[string]bool // notes already written to stderr
}

// note writes a diagnostic line to stderr, once per run: a bundle reads
// the store three times and says so once.
func (a *app) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if a.said[msg] {
		return
	}
	if a.said == nil {
		a.said = map[string]bool{}
	}
	a.said[msg] = true
	fmt.Fprintln(a.stderr, "storectl: "+msg)
}

const rootLong = `storectl tells a field technician what the store agent (storeagent) on this
device is doing, and why it may not be doing its job: is it running, is its
config valid, does it reach the central, do its scanners read cards, is its
outbox draining, does its cache know any customer.

It talks to the running daemon over its local API (the unix socket, or the
loopback port). When the daemon is down it reads the store file read-only and
says so on stderr. It never shows personal data: identifiers are masked, ids
are shown as short keyed hashes ("ref"), attribute and event values never.

Start with:
  storectl status       what the agent is doing
  storectl doctor       every check, each ok / warn / fail with a hint

Exit codes: 0 ok, 1 a check or the command failed, 2 usage error,
3 storeagent is unreachable and nothing could stand in for it.`

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "storectl",
		Short:         "Diagnose the store agent (storeagent) on this device",
		Long:          rootLong,
		Version:       a.opts.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Example: `  storectl status
  storectl doctor --config /etc/storeagent/agent.toml
  storectl scan --port till-1
  storectl bundle -o /tmp/support.tar.gz`,
	}
	root.SetVersionTemplate("storectl {{.Version}}\n")
	f := root.PersistentFlags()
	f.StringVar(&a.flags.config, "config", "", "the agent's config `FILE`: finds its socket, state directory and keys (default: the embedded default config)")
	f.StringVar(&a.flags.stateDir, "state-dir", "", "the agent's state `DIR`, when storeagent was started with -state-dir (overrides the config's store.dir)")
	f.StringVar(&a.flags.socket, "socket", "", "the daemon's unix `socket` (default: <state dir>/api.sock, then /run/storeagent/api.sock)")
	f.StringVar(&a.flags.addr, "addr", "", "the daemon's TCP `host:port` instead of the socket (default: tried last, 127.0.0.1:8780)")
	f.StringVar(&a.flags.tokenFile, "token-file", "", "bearer token `FILE` for --addr (default: the config's api.token_file)")
	f.BoolVar(&a.flags.json, "json", false, "print JSON for scripts (readers must ignore unknown fields)")
	f.DurationVar(&a.flags.timeout, "timeout", 20*time.Second, "how long to wait for the daemon's answer")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usage("%v", err) })
	root.AddCommand(
		a.statusCmd(), a.doctorCmd(), a.scanCmd(), a.outboxCmd(), a.syncCmd(), a.compactCmd(),
		a.configCmd(), a.bundleCmd(), a.lookupCmd(), a.versionCmd(), a.keygenCmd(),
	)
	return root
}

// noArgs refuses arguments, as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage("%s takes no arguments", cmd.CommandPath())
	}
	return nil
}

// exactArgs wants n arguments, as a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usage("%s needs %s", cmd.CommandPath(), what)
		}
		return nil
	}
}
