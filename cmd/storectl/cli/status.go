package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// Sources of what storectl shows.
const (
	sourceDaemon = "daemon" // the running daemon answered
	sourceStore  = "store"  // storectl read the store file itself
)

// statusView is `storectl status --json`: the daemon's status, or what the
// store alone tells, and which it is.
type statusView struct {
	Running bool   `json:"running"`
	Source  string `json:"source"`
	localapi.Status
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what the agent is doing: link, outbox, sync, cache, scanners, rejects",
		Long: `Show what the agent is doing: whether the daemon runs (version, uptime), its
link to the central (state, last connect, last error), the outbox (events and
bytes by class, age of the oldest, last ack), the change cursor and its lag,
the profile cache (profiles, identifiers), each scanner and its last good
frame, and the input refused since start, by reason.

When the daemon is down, status reads the store file read-only and shows what
it holds (outbox, cache, cursor); what only the daemon knows is left out.`,
		Example: `  storectl status
  storectl status --json | jq .outbox.records`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			v, err := a.status(cmd.Context())
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			return a.printStatus(v)
		}),
	}
}

// status asks the daemon, or reads the store when it is down.
func (a *app) status(ctx context.Context) (statusView, error) {
	return daemonOrStore(ctx, a, false, func(ctx context.Context, c *localapi.Client) (statusView, error) {
		st, err := c.Status(ctx)
		return statusView{Running: true, Source: sourceDaemon, Status: st}, err
	}, func(off *offline) (statusView, error) {
		st, err := support.StoreStatus(off.cfg, off.db, off.ag, a.opts.Now())
		return statusView{Source: sourceStore, Status: st}, err
	})
}

func (a *app) printStatus(v statusView) error {
	st := v.Status
	t := newTable(a.stdout)
	if v.Running {
		t.row("storeagent", "running, version %s, up %s", st.Version, support.Duration(time.Duration(st.UptimeSeconds)*time.Second))
	} else {
		t.row("storeagent", "not running (read from the store file)")
	}
	t.row("agent", "%s %s/%s/%s", st.Kind, st.Tenant, st.StoreID, st.AgentID)
	t.row("link", "%s", a.linkLine(st.Link))
	o := st.Outbox
	t.row("outbox", "%s, %s: critical %d (%s), telemetry %d (%s); oldest %s",
		plural(o.Records, "event", "events"), support.Bytes(o.Bytes), o.Critical.Records, support.Bytes(o.Critical.Bytes),
		o.Telemetry.Records, support.Bytes(o.Telemetry.Bytes), a.oldest(o))
	if v.Running {
		t.row("last ack", "%s", a.lastAck(o))
	}
	t.row("changes", "%s", a.changesLine(st.Changes, v.Running))
	t.row("cache", "%d profiles, %d identifiers (max %d profiles)", st.Cache.Profiles, st.Cache.Identifiers, st.Cache.MaxProfiles)
	t.row("store", "%s, %s", st.Store.Path, support.Bytes(st.Store.FileBytes))
	if len(st.Scanners) == 0 {
		t.row("scanners", "none configured")
	}
	for _, sc := range st.Scanners {
		t.row("scanner", "%s", a.scannerLine(sc, v.Running))
	}
	if v.Running {
		t.row("rejects", "%s", orNone(rejectLines(st)))
	}
	return t.flush()
}

func (a *app) linkLine(l localapi.LinkStatus) string {
	var b strings.Builder
	b.WriteString(l.State)
	switch l.State {
	case support.LinkUnknown:
		b.WriteString(" (only the running daemon knows)")
	case support.LinkDisabled:
		b.WriteString(" (sync is off in the config: the agent works offline)")
	}
	if l.Broker != "" {
		b.WriteString(", broker " + l.Broker)
	}
	if !l.LastConnect.IsZero() {
		b.WriteString(", last connect " + a.ago(l.LastConnect))
	}
	if l.LastError != "" {
		b.WriteString(", last error " + a.ago(l.LastErrorAt) + ": " + l.LastError)
	}
	return b.String()
}

func (a *app) oldest(o localapi.OutboxStatus) string {
	if o.Records == 0 {
		return "none"
	}
	return support.Duration(time.Duration(o.OldestAgeSeconds)*time.Second) + " old"
}

func (a *app) lastAck(o localapi.OutboxStatus) string {
	if o.LastAck.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s, up to seq %d", a.ago(o.LastAck), o.LastAckSeq)
}

func (a *app) changesLine(c localapi.ChangesStatus, running bool) string {
	if !running {
		return fmt.Sprintf("cursor %d (the central's latest: only the running daemon knows)", c.Cursor)
	}
	if c.Latest < c.Cursor {
		return fmt.Sprintf("cursor %d, the central's latest not heard; last applied %s", c.Cursor, a.ago(c.LastApplied))
	}
	return fmt.Sprintf("cursor %d, latest %d, lag %d; last applied %s", c.Cursor, c.Latest, c.Lag, a.ago(c.LastApplied))
}

func (a *app) scannerLine(sc localapi.ScannerStatus, running bool) string {
	if !running {
		return sc.Name + " " + sc.Path + ": not read (storeagent is not running)"
	}
	state := "disconnected"
	if sc.Connected {
		state = "connected"
	}
	line := fmt.Sprintf("%s %s: %s, %d good frames, last good frame %s", sc.Name, sc.Path, state, sc.Frames, a.ago(sc.LastFrame))
	if sc.LastError != "" {
		line += ", last error " + a.ago(sc.LastErrorAt) + ": " + sc.LastError
	}
	return line
}

// rejectLines lists every refused input since start: the daemon's
// rejects, each scanner's, and the identifiers the agent refused.
func rejectLines(st localapi.Status) []string {
	var out []string
	for _, r := range st.Rejects {
		out = append(out, fmt.Sprintf("%s %s %d", r.Source, r.Reason, r.Count))
	}
	for _, sc := range st.Scanners {
		for _, reason := range slices.Sorted(maps.Keys(sc.Rejects)) {
			if n := sc.Rejects[reason]; n > 0 {
				out = append(out, fmt.Sprintf("scanner:%s %s %d", sc.Name, reason, n))
			}
		}
	}
	for _, k := range []string{"identify_invalid", "identify_blocked"} {
		if n := st.Counters[k]; n > 0 {
			out = append(out, fmt.Sprintf("identify %s %d", strings.TrimPrefix(k, "identify_"), n))
		}
	}
	slices.Sort(out)
	return out
}
