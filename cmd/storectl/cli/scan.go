package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tarm/serial"

	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
)

// scanFlags are the flags of `storectl scan`.
type scanFlags struct {
	port       string
	count      int
	duration   time.Duration
	baud       int
	terminator string
	aim        bool
	prefix     string
	suffix     string
}

func (a *app) scanCmd() *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan --port PORT",
		Short: "Live scan test: print every frame a scanner sends, decoded, identifier masked",
		Long: `Live scan test. Scan cards at the scanner and watch each frame decoded: its
symbology (when the scanner sends AIM identifiers), whether it is a valid
customer identifier or why not (bad_check_digit, bad_length, ...), its check
digit, and the identifier masked (loyalty:•••••••••13): never the clear code.
Frames the line garbled are shown as rejects (noise, too_long, half_frame).

PORT is a scanner's name from the config ([[scanner]] name) or a device path.
When storeagent runs and owns the port, scan shows the daemon's own view of it,
with what the agent made of each scan (known, unknown, invalid). Otherwise
storectl opens the port itself, with the port's settings from the config, or
the defaults and the flags below for a port the config does not list.

Stops on Ctrl-C, after --count frames, or after --duration.`,
		Example: `  storectl scan --port till-1
  storectl scan --port /dev/ttyACM0 --baud 115200 --aim
  storectl scan --port till-1 --count 1 --json`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			if f.port == "" {
				return usage("scan needs --port: a scanner's name from the config, or a device path")
			}
			ctx := cmd.Context()
			if f.duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, f.duration)
				defer cancel()
			}
			return a.scan(ctx, cmd, f)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.port, "port", "", "the scanner's `name` in the config, or its device path")
	fl.IntVar(&f.count, "count", 0, "stop after `N` frames (0: until Ctrl-C)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fl.IntVar(&f.baud, "baud", 0, "line speed, for a port opened directly (default: the config's, else 9600)")
	fl.StringVar(&f.terminator, "terminator", "", "frame terminator CR, LF or CRLF, for a port opened directly (default: the config's, else CR)")
	fl.BoolVar(&f.aim, "aim", false, "the scanner sends AIM symbology identifiers, for a port opened directly")
	fl.StringVar(&f.prefix, "prefix", "", "prefix to strip, for a port opened directly")
	fl.StringVar(&f.suffix, "suffix", "", "suffix to strip, for a port opened directly")
	return cmd
}

// errEnough ends a scan once --count frames were shown.
var errEnough = errors.New("enough frames")

func (a *app) scan(ctx context.Context, cmd *cobra.Command, f scanFlags) error {
	shown := 0
	emit := func(ev localapi.ScanEvent) error {
		if err := a.printScan(ev); err != nil {
			return err
		}
		if ev.Event != localapi.ScanWatching {
			shown++
		}
		if f.count > 0 && shown >= f.count {
			return errEnough
		}
		return nil
	}
	err := a.scanDaemon(ctx, f.port, emit)
	var why string
	switch {
	case localapi.IsUnknownPort(err):
		why = "storeagent does not own " + f.port
	case down(err):
		why = "storeagent is not running"
	default:
		return scanEnd(ctx, err)
	}
	return scanEnd(ctx, a.scanDirect(ctx, cmd, f, why, emit))
}

// scanEnd turns how a scan ended into the command's result: Ctrl-C,
// --duration and --count are a normal end.
func scanEnd(ctx context.Context, err error) error {
	if errors.Is(err, errEnough) || ctx.Err() != nil {
		return nil
	}
	return err
}

// scanDaemon streams the daemon's view of a port it owns.
func (a *app) scanDaemon(ctx context.Context, port string, emit func(localapi.ScanEvent) error) error {
	c, err := a.daemon(ctx)
	if err != nil {
		return err
	}
	w, err := c.WatchScans(ctx, port)
	if err != nil {
		return err
	}
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	for {
		ev, err := w.Next()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return failed("storeagent stopped: the scan stream ended")
		}
		if err != nil {
			return err
		}
		if ev.Event == localapi.ScanWatching {
			fmt.Fprintf(a.stderr, "storectl: watching %s (%s) through storeagent: scan a card, Ctrl-C to stop\n", ev.Port, ev.Path)
		}
		if err := emit(ev); err != nil {
			return err
		}
	}
}

// scanDirect opens the port itself and reads it with the scanner
// package's frame reader.
func (a *app) scanDirect(ctx context.Context, cmd *cobra.Command, f scanFlags, why string, emit func(localapi.ScanEvent) error) error {
	sc, rules, err := a.portConfig(cmd, f)
	if err != nil {
		return err
	}
	fr, err := scanner.NewFrameReader(sc)
	if err != nil {
		return usage("%v", err)
	}
	port, err := serial.OpenPort(sc.SerialConfig())
	if err != nil {
		return failed("open %s: %v (check the path; the user needs the dialout group; storeagent must not hold it)", sc.Path, err)
	}
	defer port.Close()
	fmt.Fprintf(a.stderr, "storectl: %s: reading %s directly: scan a card, Ctrl-C to stop\n", why, sc.Path)
	if err := emit(localapi.ScanEvent{Event: localapi.ScanWatching, At: a.opts.Now(), Port: sc.Name, Path: sc.Path}); err != nil {
		return err
	}
	return readFrames(ctx, port, fr, func(fr scanner.Frame) error {
		return emit(support.DescribeFrame(fr, sc.Name, sc.Path, rules))
	})
}

// readFrames reads the port until ctx ends, the port goes away, or fn
// fails.
func readFrames(ctx context.Context, port io.Reader, fr *scanner.FrameReader, fn func(scanner.Frame) error) error {
	buf := make([]byte, 256)
	quick := 0 // empty reads in a row that returned at once: a device that is gone
	for ctx.Err() == nil {
		start := time.Now()
		n, err := port.Read(buf)
		now := time.Now()
		for _, frame := range fr.Feed(now, buf[:n]) {
			if err := fn(frame); err != nil {
				return err
			}
		}
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return failed("read the port: %v", err)
		case n == 0 && now.Sub(start) < scanner.ReadTimeout/2:
			if quick++; quick >= 3 {
				return failed("the port went away (unplugged?)")
			}
		default:
			quick = 0
		}
	}
	return ctx.Err()
}

// portConfig is the port's framing: from its [[scanner]] section when the
// config lists it, else the defaults, with the flags on top.
func (a *app) portConfig(cmd *cobra.Command, f scanFlags) (scanner.Config, ident.Rules, error) {
	cfg, err := a.config()
	if err != nil {
		if a.flags.config != "" {
			return scanner.Config{}, ident.Rules{}, err
		}
		cfg = firmwareconfig.Default()
	}
	sc, found := scanner.DefaultConfig(), false
	for _, s := range cfg.Scanners {
		if s.Name == f.port || s.Path == f.port {
			sc, found = s.Scanner(), true
		}
	}
	if !found {
		if !strings.ContainsAny(f.port, `/\`) && !strings.HasPrefix(strings.ToUpper(f.port), "COM") {
			return sc, cfg.Ident, failed("no scanner named %q in the config: give its device path (--port /dev/ttyACM0), or --config FILE", f.port)
		}
		sc.Name, sc.Path = filepath.Base(f.port), f.port
	}
	fl := cmd.Flags()
	if fl.Changed("baud") {
		sc.Baud = f.baud
	}
	if fl.Changed("terminator") {
		sc.Terminator = scanner.Terminator(strings.ToUpper(f.terminator))
	}
	if fl.Changed("aim") {
		sc.AIM = f.aim
	}
	if fl.Changed("prefix") {
		sc.Prefix = f.prefix
	}
	if fl.Changed("suffix") {
		sc.Suffix = f.suffix
	}
	sc.Debounce = 0 // a technician scanning the same card twice wants to see it twice
	if err := sc.Validate(); err != nil {
		return sc, cfg.Ident, usage("%v", err)
	}
	return sc, cfg.Ident, nil
}

// printScan prints one event: a line of JSON with --json, else a line for
// people (the watching event goes to stderr as a header instead).
func (a *app) printScan(ev localapi.ScanEvent) error {
	if a.flags.json {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(append(b, '\n'))
		return err
	}
	if ev.Event == localapi.ScanWatching {
		return nil
	}
	_, err := fmt.Fprintln(a.stdout, scanLine(ev))
	return err
}

// scanLine is one frame for people:
//
//	15:04:05.000  till-1  Code 128  valid    loyalty:•••••••••13  check digit ok  agent: known
func scanLine(ev localapi.ScanEvent) string {
	head := fmt.Sprintf("%s  %-8s  %-10s", ev.At.Local().Format("15:04:05.000"), ev.Port, cmp.Or(ev.Symbology, "-"))
	if ev.Event == localapi.ScanReject {
		line := head + "  reject   " + ev.Reject
		if ev.Count > 1 {
			line += fmt.Sprintf(" x%d", ev.Count)
		}
		if ev.Bytes > 0 {
			line += fmt.Sprintf(" (%d bytes)", ev.Bytes)
		}
		return line
	}
	verdict := "valid  "
	parts := []string{ev.Identifier}
	if !ev.Valid {
		verdict = "invalid"
		parts = append(parts, ev.Reason)
	}
	if ev.CheckDigit != "" {
		parts = append(parts, "check digit "+ev.CheckDigit)
	}
	if ev.Outcome != "" {
		parts = append(parts, "agent: "+ev.Outcome)
	}
	return head + "  " + verdict + "  " + strings.Join(parts, "  ")
}
