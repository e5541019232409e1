package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// compactView is `storectl compact --json`.
type compactView struct {
	Source string `json:"source"`
	localapi.CompactResult
}

func (a *app) compactCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Compact the store file (erased data leaves the disk), with a progress bar",
		Long: `Rewrite the store file's live records into a fresh file and rename it over the
old one: the bytes of erased customers leave the disk, and the file shrinks.
The agent does this by itself within store.compact_within of an erasure; run
it by hand to reclaim space, or before handing a device over.

Writers wait while it runs (about a second per 100 MB of live data). With the
daemon running the daemon compacts; when it is down storectl compacts the
file itself. The progress bar goes to stderr.`,
		Example: `  storectl compact`,
		Args:    noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			bar := newProgress(a.stderr, "compacting")
			v, err := a.compact(cmd.Context(), bar.update)
			bar.done()
			if err != nil {
				return err
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			_, err = fmt.Fprintf(a.stdout, "compacted %s: %s -> %s, %d records, in %s\n", v.Path,
				support.Bytes(v.BeforeBytes), support.Bytes(v.AfterBytes), v.Records, support.Duration(time.Duration(v.TookMs)*time.Millisecond))
			return err
		}),
	}
}

func (a *app) compact(ctx context.Context, progress func(done, total uint64)) (compactView, error) {
	c, err := a.daemon(ctx)
	if err == nil {
		res, err := c.Compact(ctx, progress)
		return compactView{Source: sourceDaemon, CompactResult: res}, err
	}
	if !down(err) {
		return compactView{}, err
	}
	off, err := a.openOffline(true, err)
	if err != nil {
		return compactView{}, err
	}
	defer off.Close()
	fmt.Fprintf(a.stderr, "storectl: storeagent is not running: compacting the store file itself (%s)\n", off.db.Path())
	owner, _ := os.Stat(off.db.Path())
	res, err := off.db.Compact(ctx, progress)
	if err != nil {
		return compactView{}, err
	}
	keepOwner(off.db.Path(), owner)
	return compactView{Source: sourceStore, CompactResult: localapi.CompactResult{
		Path: off.db.Path(), BeforeBytes: res.Before, AfterBytes: res.After, Records: res.Keys, TookMs: res.Took.Milliseconds(),
	}}, nil
}

// progress draws a progress bar on a terminal, or a line per tenth on
// anything else (a log, a test).
type progress struct {
	w     io.Writer
	label string
	tty   bool
	shown int // tenths shown, when not a terminal
	drawn bool
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

const barWidth = 30

func (p *progress) update(done, total uint64) {
	if total == 0 {
		return
	}
	pct := int(min(done*100/total, 100))
	if p.tty {
		n := pct * barWidth / 100
		fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %d/%d records", p.label, strings.Repeat("#", n), strings.Repeat(" ", barWidth-n), pct, done, total)
		p.drawn = true
		return
	}
	if tenth := pct / 10; tenth > p.shown || !p.drawn {
		p.shown, p.drawn = tenth, true
		fmt.Fprintf(p.w, "%s: %d%% (%d/%d records)\n", p.label, pct, done, total)
	}
}

func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
