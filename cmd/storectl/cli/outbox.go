package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// outboxView is `storectl outbox --json`.
type outboxView struct {
	Running bool   `json:"running"`
	Source  string `json:"source"`
	localapi.OutboxReport
}

// peekView is `storectl outbox peek --json`.
type peekView struct {
	Running bool   `json:"running"`
	Source  string `json:"source"`
	localapi.OutboxPeek
}

func (a *app) outboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Show the outbox: events waiting for the central, by class, and their age",
		Long: `Show the outbox, the queue of events waiting for the central's ack: how many
and how many bytes, by class (critical events are never shed; telemetry is
shed oldest-first when the outbox is full), its bounds, the age of the oldest
event, the last ack and the state of the link that drains it.

"outbox peek" lists the oldest events without their content.`,
		Example: `  storectl outbox
  storectl outbox peek -n 20`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			v, err := a.outbox(cmd.Context())
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			return a.printOutbox(v)
		}),
	}
	cmd.AddCommand(a.peekCmd())
	return cmd
}

func (a *app) outbox(ctx context.Context) (outboxView, error) {
	return daemonOrStore(ctx, a, false, func(ctx context.Context, c *localapi.Client) (outboxView, error) {
		rep, err := c.Outbox(ctx)
		return outboxView{Running: true, Source: sourceDaemon, OutboxReport: rep}, err
	}, func(off *offline) (outboxView, error) {
		rep, err := support.OutboxReport(off.db, support.LinkOf(off.cfg).State, a.opts.Now())
		return outboxView{Source: sourceStore, OutboxReport: rep}, err
	})
}

func (a *app) printOutbox(v outboxView) error {
	o := v.OutboxReport
	t := newTable(a.stdout)
	t.row("outbox", "%s, %s", plural(o.Records, "event", "events"), support.Bytes(o.Bytes))
	t.row("critical", "%s, %s (never shed)", plural(o.Critical.Records, "event", "events"), support.Bytes(o.Critical.Bytes))
	t.row("telemetry", "%s, %s (shed oldest-first when full)", plural(o.Telemetry.Records, "event", "events"), support.Bytes(o.Telemetry.Bytes))
	t.row("bounds", "%d events, %s", o.MaxRecords, support.Bytes(o.MaxBytes))
	if o.Records > 0 {
		t.row("sequence", "%d to %d", o.FirstSeq, o.LastSeq)
		t.row("oldest", "%s", a.when(o.OldestAt))
	} else {
		t.row("sequence", "last handed out %d", o.LastSeq)
	}
	if v.Running {
		t.row("last ack", "%s", a.lastAck(o.OutboxStatus))
	}
	t.row("shed", "%d telemetry events shed, %d events refused as full", o.Shed, o.Rejected)
	t.row("link", "%s", o.Link)
	return t.flush()
}

func (a *app) peekCmd() *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "peek",
		Short: "List the oldest queued events, masked",
		Long: `List the oldest queued events: sequence number, class, purpose, type, event
name, age and size, whether the event carries a userId or an anonymousId
("user"/"anon") with a short keyed hash of it ("ref", the same for the same
customer in every storectl output), and how many properties and traits it
has. Never an id, a property or a trait value.`,
		Example: `  storectl outbox peek
  storectl outbox peek -n 100 --json`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 1000 {
				return usage("-n must be from 1 to 1000")
			}
			v, err := a.peek(cmd.Context(), n)
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			return a.printPeek(v)
		}),
	}
	cmd.Flags().IntVarP(&n, "n", "n", 10, "how many events, from the oldest (1 to 1000)")
	return cmd
}

func (a *app) peek(ctx context.Context, n int) (peekView, error) {
	return daemonOrStore(ctx, a, false, func(ctx context.Context, c *localapi.Client) (peekView, error) {
		p, err := c.PeekOutbox(ctx, n)
		return peekView{Running: true, Source: sourceDaemon, OutboxPeek: p}, err
	}, func(off *offline) (peekView, error) {
		if off.masker == nil {
			a.note("the tenant key cannot be read by this user: no refs shown")
		}
		p, err := support.Peek(off.db, off.masker, n, a.opts.Now())
		return peekView{Source: sourceStore, OutboxPeek: p}, err
	})
}

func (a *app) printPeek(v peekView) error {
	if len(v.Entries) == 0 {
		_, err := fmt.Fprintln(a.stdout, "the outbox is empty")
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tCLASS\tPURPOSE\tTYPE\tEVENT\tAGE\tBYTES\tIDENTITY\tPROPS\tTRAITS")
	for _, e := range v.Entries {
		if e.Error != "" {
			fmt.Fprintf(tw, "%d\t%s\t%s\t-\t-\t%s\t%d\t-\t-\t-\t(%s)\n", e.Seq, dash(e.Class), dash(e.Purpose), age(e.AgeSeconds), e.Bytes, e.Error)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\n", e.Seq, e.Class, dash(e.Purpose), e.Type, dash(e.Event),
			age(e.AgeSeconds), e.Bytes, identity(e), e.Properties, e.Traits)
	}
	if v.More {
		fmt.Fprintln(tw, "...\tmore events follow (-n)")
	}
	return tw.Flush()
}

// identity says whether an event carries an id, and its ref.
func identity(e localapi.OutboxEntry) string {
	who := "none"
	switch {
	case e.UserID && e.AnonymousID:
		who = "user+anon"
	case e.UserID:
		who = "user"
	case e.AnonymousID:
		who = "anon"
	}
	if e.Ref != "" {
		who += " ref:" + e.Ref
	}
	return who
}

func age(seconds int64) string { return support.Duration(time.Duration(seconds) * time.Second) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
