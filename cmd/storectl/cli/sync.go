package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// syncView is `storectl sync --json`.
type syncView struct {
	Running    bool                   `json:"running"`
	Source     string                 `json:"source"`
	Link       localapi.LinkStatus    `json:"link"`
	Changes    localapi.ChangesStatus `json:"changes"`
	LastAck    time.Time              `json:"lastAck,omitzero"`
	LastAckSeq uint64                 `json:"lastAckSeq,omitempty"`
	Outbox     uint64                 `json:"outbox"` // events waiting to go up
	OldestAge  int64                  `json:"oldestAgeSeconds,omitempty"`
}

func (a *app) syncCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Show the sync with the central: link, change cursor and lag, last ack",
		Long: `Show the sync with the central CDP: the link (state, broker, last connect,
last error), the change cursor (the last central change applied), the
central's latest change as last heard and the lag between them, when the
last change was applied, and the uplink (last ack, events waiting).

"sync resync" asks the central for every change after the cursor.`,
		Example: `  storectl sync
  storectl sync resync`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			v, err := a.syncStatus(cmd.Context())
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			return a.printSync(v)
		}),
	}
	cmd.AddCommand(a.resyncCmd())
	return cmd
}

func (a *app) syncStatus(ctx context.Context) (syncView, error) {
	v, err := a.status(ctx)
	if err != nil {
		return syncView{}, err
	}
	st := v.Status
	return syncView{
		Running: v.Running, Source: v.Source, Link: st.Link, Changes: st.Changes,
		LastAck: st.Outbox.LastAck, LastAckSeq: st.Outbox.LastAckSeq, Outbox: st.Outbox.Records, OldestAge: st.Outbox.OldestAgeSeconds,
	}, nil
}

func (a *app) printSync(v syncView) error {
	t := newTable(a.stdout)
	t.row("link", "%s", a.linkLine(v.Link))
	t.row("changes", "%s", a.changesLine(v.Changes, v.Running))
	if v.Running {
		t.row("last ack", "%s", a.lastAck(localapi.OutboxStatus{LastAck: v.LastAck, LastAckSeq: v.LastAckSeq}))
	}
	waiting := plural(v.Outbox, "event waits", "events wait")
	if v.Outbox > 0 {
		waiting += ", the oldest " + support.Duration(time.Duration(v.OldestAge)*time.Second) + " old"
	}
	t.row("uplink", "%s", waiting)
	return t.flush()
}

func (a *app) resyncCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resync",
		Short: "Ask the central for every change after the cursor",
		Long: `Ask the central for every change after the agent's cursor. The request goes
out at once when the link is up, else at the next connect. Use it when the
cache misses customers the central has. Needs the running daemon.`,
		Example: `  storectl sync resync`,
		Args:    noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			var res localapi.ResyncResult
			err := a.withDaemon(cmd.Context(), func(ctx context.Context, c *localapi.Client) error {
				var err error
				res, err = c.Resync(ctx)
				return err
			})
			switch {
			case down(err):
				return unreachable("%v\nresync needs the running daemon: start it (systemctl start storeagent); it resyncs by itself at every connect", err)
			case localapi.IsSyncDisabled(err):
				return failed("sync is disabled in the agent's config: there is no central to resync from ([sync] enabled = true)")
			case err != nil:
				return err
			}
			if a.flags.json {
				return a.printJSON(res)
			}
			when := "now"
			if res.Link != "connected" {
				when = "at the next connect (the link is " + res.Link + ")"
			}
			_, err = fmt.Fprintf(a.stdout, "asked the central for every change after %d: the request goes out %s\n", res.Cursor, when)
			return err
		}),
	}
}
