package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
)

// configProblem is one error of `storectl config check --json`.
type configProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"` // 0: the key is not in the file (a default failed)
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// configCheckView is `storectl config check --json`.
type configCheckView struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Problems []configProblem `json:"problems"`
}

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a config file, or show the configuration in force",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usage("config needs a subcommand: check FILE, or show")
		},
	}
	cmd.AddCommand(a.configCheckCmd(), a.configShowCmd())
	return cmd
}

func (a *app) configCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file: every error with file, line and key",
		Long: `Check a config file as storeagent reads it at start: unknown keys (typos),
wrong types and bad values, every one with its file, line and key. Exit code
1 when the file has errors. The files it names (keys, token, certificates)
are checked by storectl doctor.`,
		Example: `  storectl config check /etc/storeagent/agent.toml`,
		Args:    exactArgs(1, "the config FILE to check"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			v := checkConfig(args[0])
			if a.flags.json {
				if err := a.printJSON(v); err != nil {
					return err
				}
			} else if err := a.printConfigCheck(v); err != nil {
				return err
			}
			if !v.Valid {
				return &exitError{code: ExitFailed}
			}
			return nil
		}),
	}
}

func checkConfig(path string) configCheckView {
	v := configCheckView{File: path, Valid: true, Problems: []configProblem{}}
	_, err := firmwareconfig.Load(path)
	if err == nil {
		return v
	}
	v.Valid = false
	var errs firmwareconfig.Errors
	if !errors.As(err, &errs) {
		v.Problems = append(v.Problems, configProblem{File: path, Message: err.Error()})
		return v
	}
	for _, e := range errs {
		v.Problems = append(v.Problems, configProblem{File: e.File, Line: e.Line, Key: e.Key, Message: e.Msg})
	}
	return v
}

func (a *app) printConfigCheck(v configCheckView) error {
	if v.Valid {
		_, err := fmt.Fprintf(a.stdout, "%s: valid\n", v.File)
		return err
	}
	fmt.Fprintf(a.stdout, "%s: %s: storeagent refuses to start with it\n", v.File, plural(uint64(len(v.Problems)), "problem", "problems"))
	for _, p := range v.Problems {
		loc := p.File
		if p.Line > 0 {
			loc = fmt.Sprintf("%s:%d", p.File, p.Line)
		}
		if p.Key != "" {
			loc += ": " + p.Key
		}
		if _, err := fmt.Fprintf(a.stdout, "  %s: %s\n", loc, p.Message); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) configShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the configuration in force, every default filled in, secrets removed",
		Long: `Show the configuration in force as TOML, every default filled in, secrets
removed: the running daemon's, or, when it is down, the --config file's (or
the embedded default).`,
		Example: `  storectl config show`,
		Args:    noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			v, err := a.configView(cmd.Context())
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			_, err = fmt.Fprint(a.stdout, v.TOML)
			return err
		}),
	}
}

// configView is the daemon's config, or the one storectl loads.
func (a *app) configView(ctx context.Context) (localapi.ConfigView, error) {
	var v localapi.ConfigView
	err := a.withDaemon(ctx, func(ctx context.Context, c *localapi.Client) error {
		var err error
		v, err = c.Config(ctx)
		return err
	})
	if !down(err) {
		return v, err
	}
	cfg, cerr := a.config()
	if cerr != nil {
		return v, cerr
	}
	a.note("storeagent is not running: showing the config storectl loads (--config)")
	b, err := support.RedactedConfig(cfg)
	v = localapi.ConfigView{Path: a.flags.config, TOML: string(b)}
	if v.Path == "" {
		v.Path = firmwareconfig.DefaultName
	}
	return v, err
}
