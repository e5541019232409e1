package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/doctor"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// doctorView is `storectl doctor --json`.
type doctorView struct {
	localapi.DoctorReport
	Failed bool `json:"failed"`
}

func (a *app) doctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Run every check and say what is wrong, with a hint for each",
		Long: `Run every check and print each as ok, warn, fail or skip, with a hint:

  daemon      storeagent is running
  config      the config file loads (every error with file:line: key)
  key_files   the key, token and password files are present and mode 0600
  disk        free space in the state directory
  clock       skew against the central, when the daemon has a reading ("unknown" otherwise)
  database    the store file is consistent (bbolt check)
  port:NAME   each configured scanner port is present and opens (the daemon's view when it holds it)
  broker      the central's broker accepts a TCP connection
  tls         the TLS handshake works and no certificate expires within 30 days
  outbox      events drain: not stuck while the link is up, not full
  cache       the cache knows customers (an empty cache is a kiosk that "doesn't know anyone")

With the daemon running the checks run inside it (its ports, its link); when
it is down storectl runs them itself from the config and the store file.
Exit code 1 when any check fails.`,
		Example: `  storectl doctor
  storectl doctor --config /etc/storeagent/agent.toml
  storectl doctor --json | jq '.checks[] | select(.status == "fail")'`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			rep, err := a.doctor(cmd.Context())
			if err != nil {
				return err
			}
			if a.flags.json {
				err = a.printJSON(doctorView{DoctorReport: rep, Failed: rep.Failed()})
			} else {
				err = a.printDoctor(rep)
			}
			if err == nil && rep.Failed() {
				return &exitError{code: ExitFailed}
			}
			return err
		}),
	}
}

// doctor asks the daemon to run the checks, or runs them itself.
func (a *app) doctor(ctx context.Context) (localapi.DoctorReport, error) {
	var rep localapi.DoctorReport
	err := a.withDaemon(ctx, func(ctx context.Context, c *localapi.Client) error {
		var err error
		rep, err = c.Doctor(ctx)
		return err
	})
	if !down(err) {
		return rep, err
	}
	return a.localDoctor(ctx, err), nil
}

// localDoctor runs the checks without the daemon, over the store file
// opened read-only when it can be.
func (a *app) localDoctor(ctx context.Context, daemonErr error) localapi.DoctorReport {
	env := doctor.Env{Source: doctor.SourceStorectl, ConfigPath: a.flags.config, DaemonErr: daemonErr, Now: a.opts.Now}
	cfg, err := a.config()
	if err != nil {
		env.ConfigErr = err
		return doctor.Run(ctx, env)
	}
	env.Config = cfg
	if env.StateDir, err = cfg.StateDir(); err != nil {
		env.StoreErr = err
		return doctor.Run(ctx, env)
	}
	db, err := openStore(cfg, env.StateDir, false)
	if err != nil {
		env.StoreErr = err
		return doctor.Run(ctx, env)
	}
	a.note("%s (%s)", notRunning, db.Path())
	defer db.Close()
	env.Store = db
	if off, err := a.offlineOver(cfg, env.StateDir, db); err == nil {
		if st, err := support.StoreStatus(cfg, db, off.ag, a.opts.Now()); err == nil {
			env.Status = &st
		}
	}
	return doctor.Run(ctx, env)
}

var statusWords = map[localapi.CheckStatus]string{
	localapi.CheckOK: "ok", localapi.CheckWarn: "warn", localapi.CheckFail: "FAIL", localapi.CheckSkip: "skip",
}

func (a *app) printDoctor(rep localapi.DoctorReport) error {
	counts := map[localapi.CheckStatus]int{}
	var b strings.Builder
	for _, c := range rep.Checks {
		counts[c.Status]++
		fmt.Fprintf(&b, "%-4s  %-12s %s\n", statusWords[c.Status], c.Name, c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "%19s- %s\n", "", d)
		}
		if c.Hint != "" && c.Status != localapi.CheckOK && c.Status != localapi.CheckSkip {
			fmt.Fprintf(&b, "%19shint: %s\n", "", c.Hint)
		}
	}
	where := "run by storeagent"
	if rep.Source != doctor.SourceDaemon {
		where = "run by storectl: storeagent is not running"
	}
	fmt.Fprintf(&b, "\n%d failed, %s, %d ok, %d skipped (%s)\n", counts[localapi.CheckFail],
		plural(uint64(counts[localapi.CheckWarn]), "warning", "warnings"), counts[localapi.CheckOK], counts[localapi.CheckSkip], where)
	_, err := a.stdout.Write([]byte(b.String()))
	return err
}
