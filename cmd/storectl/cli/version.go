package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/devices/localapi"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print storectl's version, and the running daemon's",
		Example: `  storectl version`,
		Args:    noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			var st statusView
			err := a.withDaemon(cmd.Context(), func(ctx context.Context, c *localapi.Client) error {
				s, err := c.Status(ctx)
				st = statusView{Running: true, Source: sourceDaemon, Status: s}
				return err
			})
			if err != nil && !down(err) {
				return err
			}
			v := a.versions(st)
			if a.flags.json {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "storectl   %s (%s %s)\n", v.Storectl.Version, v.Storectl.Go, v.Storectl.Platform)
			if st.Running {
				_, err = fmt.Fprintf(a.stdout, "storeagent %s\n", st.Version)
			} else {
				_, err = fmt.Fprintln(a.stdout, "storeagent not running")
			}
			return err
		}),
	}
}
