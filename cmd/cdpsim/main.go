// Command cdpsim is the reference central CDP: the peer of the store
// agents in integration tests, benchmarks and the demo. All its logic is in
// sync/central; main parses flags, wires and prints.
//
// Shutdown order of `cdpsim serve`, on SIGINT or SIGTERM: the control API
// stops taking requests, the central finishes the commit group it holds
// (journal fsync, acks) and disconnects from the broker, then the data
// files are closed.
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/storeagent/storeagent/sync/central"
	"github.com/storeagent/storeagent/sync/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "cdpsim:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errUsage marks a command line error whose message was printed already.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const usage = `cdpsim is the reference central CDP: it acknowledges the store agents'
event batches, publishes signed changes and answers their sync requests over
MQTT. It is the peer for integration tests, benchmarks and the demo.

Usage: cdpsim <command> [flags]

Commands:
  keygen     write the central's key pair and a tenant key into a directory
  serve      run the central against a broker, with a control API on loopback
  report     print what a central received (from its data directory, or live)
  customers  print synthetic customers (loyalty numbers, e-mails) for drivers
  change     ask a running central for a change: erase, consent, restrict,
             profile or policy
  snapshot   push a snapshot to one agent through a running central
  pace       show or set the pace (ms between batches) put in every ack

Run "cdpsim <command> --help" for a command's flags. Output meant for
scripts goes to stdout; logs and errors go to stderr.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"keygen": keygen, "serve": serve, "report": report, "customers": customers,
		"change": change, "snapshot": snapshot, "pace": pace,
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cdpsim: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// newFlags returns a flag set whose --help goes to stdout and whose errors
// go to stderr, with the command's description.
func newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("cdpsim "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: cdpsim %s %s\n\n%s\n", name, synopsis, about)
		if hasFlags(fs) {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args; --help prints the usage to stdout and ends the
// command successfully (errHelpShown), a bad flag prints it to stderr.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelpShown
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n", fs.Name(), err)
		fs.SetOutput(stderr)
		fs.Usage()
		return errUsage
	}
	return nil
}

// errHelpShown ends a command after --help; run turns it into success.
var errHelpShown = errors.New("help shown")

func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.SetOutput(stderr)
	fs.Usage()
	return errUsage
}

func helped(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func keygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "--dir DIR", "Writes a new central key pair and tenant key into DIR (created 0700):\n"+
		"  central.key  Ed25519 private key, PEM, mode 0600: signs every downlink message\n"+
		"  central.pub  its public key, PEM: goes into every agent's config\n"+
		"  tenant.key   32-byte tenant key, hex, mode 0600: agents hold the same\n"+
		"Existing key files are never replaced. Prints the key id.")
	dir := fs.String("dir", "", "directory for the key files (required)")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if *dir == "" || fs.NArg() > 0 {
		return usageError(fs, stderr, "--dir is required and no arguments are taken")
	}
	k, err := central.GenerateKeys(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key id %s\n", wire.KeyID(k.Central.Public().(ed25519.PublicKey)))
	for _, f := range []string{central.KeyFile, central.PublicKeyFile, central.TenantKeyFile} {
		fmt.Fprintln(stdout, filepath.Join(*dir, f))
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "--tenant T --store S --keys DIR --data DIR [flags]",
		"Runs the central: subscribes to the tenant's uplink on the broker, records and\n"+
			"acknowledges event batches, answers sync requests, and serves the control API\n"+
			"on a loopback address. Prints one line on stdout once ready: the control\n"+
			"API's address (useful with --control 127.0.0.1:0). Logs go to stderr.")
	var cfg central.Config
	fs.StringVar(&cfg.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	fs.StringVar(&cfg.Tenant, "tenant", "", "tenant id (required)")
	fs.StringVar(&cfg.Store, "store", "", "default store of the control API's changes (required)")
	keys := fs.String("keys", "", "directory written by cdpsim keygen (required)")
	fs.StringVar(&cfg.DataDir, "data", "", "data directory: journal and change logs (required)")
	fs.IntVar(&cfg.Customers, "customers", 1000, "synthetic customers in the baseline (0: no baseline)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the synthetic customers")
	control := fs.String("control", "127.0.0.1:8790", "control API address, loopback only (\"off\" disables it)")
	fs.StringVar(&cfg.ClientID, "client-id", "", "MQTT client id (default cdpsim-<tenant>)")
	fs.StringVar(&cfg.Username, "username", "", "MQTT username")
	passwordFile := fs.String("password-file", "", "file holding the MQTT password")
	fs.Uint64Var(&cfg.Pace, "pace", 0, "initial pace in ms put in every ack")
	fs.BoolVar(&cfg.IDsOnly, "ids-only", false, "keep only event ids, not bodies (long benchmarks)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() > 0 || cfg.Tenant == "" || cfg.Store == "" || *keys == "" || cfg.DataDir == "" {
		return usageError(fs, stderr, "--tenant, --store, --keys and --data are required")
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	cfg.Logger = log
	k, err := central.LoadKeys(*keys)
	if err != nil {
		return err
	}
	cfg.Key, cfg.TenantKey = k.Central, k.Tenant
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return fmt.Errorf("password file: %w", err)
		}
		cfg.Password = strings.TrimSpace(string(b))
	}
	c, err := central.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	g, gctx := errgroup.WithContext(ctx)
	if *control != "off" && *control != "" {
		ln, err := central.ListenControl(*control)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, ln.Addr().String())
		srv := central.NewControlServer(c, log)
		g.Go(func() error { return srv.Run(gctx, ln) })
	}
	g.Go(func() error { return c.Run(gctx) })
	if err := g.Wait(); err != nil {
		return err
	}
	return c.Close()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func report(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", "--data DIR | --control ADDR [--json]",
		"Prints, per agent, the events received, unique, duplicates, out of order,\n"+
			"gaps, invalid and the last accepted sequence number, and per store the\n"+
			"change stream. --data reads the data directory (cdpsim may be running or\n"+
			"not); --control asks a running cdpsim, with its live counters.")
	data := fs.String("data", "", "data directory of a cdpsim")
	control := fs.String("control", "", "control API address of a running cdpsim")
	asJSON := fs.Bool("json", false, "print JSON (fields are only ever added)")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() > 0 || (*data == "") == (*control == "") {
		return usageError(fs, stderr, "give --data or --control")
	}
	var (
		r   central.Report
		err error
	)
	if *data != "" {
		r, err = central.ReadReport(*data)
	} else {
		r, err = (&central.ControlClient{Addr: *control}).Report(ctx)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	return r.WriteText(stdout)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func customers(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("customers", "--keys DIR --n N [--seed S] [--from I] [--count K] [--json]",
		"Prints synthetic customers as serve --customers N --seed S generates them,\n"+
			"for demo and test drivers: one line per customer, tab-separated: index,\n"+
			"profile id, loyalty number, e-mail, consents. These identifiers are synthetic.\n"+
			"--json prints one JSON object per line, with the idents in hex.")
	keys := fs.String("keys", "", "directory written by cdpsim keygen (its tenant.key)")
	n := fs.Int("n", 1000, "customers in the baseline, as given to serve --customers")
	seed := fs.Uint64("seed", 1, "seed, as given to serve --seed")
	from := fs.Int("from", 0, "first index to print")
	count := fs.Int("count", 10, "how many customers to print")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() > 0 || *keys == "" || *n < 1 || *from < 0 || *count < 0 || *from >= *n {
		return usageError(fs, stderr, "--keys is required, and 0 <= --from < --n")
	}
	tk, err := central.LoadTenantKey(filepath.Join(*keys, central.TenantKeyFile))
	if err != nil {
		return err
	}
	gen := central.Customers{TenantKey: tk, N: *n, Seed: *seed}
	enc := json.NewEncoder(stdout)
	for i := *from; i < min(*n, *from+*count); i++ {
		cu, err := gen.Customer(i)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := enc.Encode(cu); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\n", cu.Index, cu.Profile, cu.Loyalty, cu.Email, consentText(cu)); err != nil {
			return err
		}
	}
	return nil
}

func consentText(cu central.Customer) string {
	var parts []string
	for _, p := range []string{central.PurposeLoyalty, central.PurposeMarketing, central.PurposeAnalytics, central.PurposeService} {
		parts = append(parts, p+"="+string(cu.Consent[p].Status))
	}
	return strings.Join(parts, ",")
}

// changeFlags are the flags every kind of `cdpsim change` takes.
type changeFlags struct {
	control, store, profile string
	customer                int
	asJSON                  bool
}

func (f *changeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.control, "control", "127.0.0.1:8790", "control API address of the running cdpsim")
	fs.StringVar(&f.store, "store", "", "store whose stream gets the change (default: serve's --store)")
	fs.StringVar(&f.profile, "profile", "", "profile id")
	fs.IntVar(&f.customer, "customer", -1, "index of a synthetic customer, instead of --profile")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

const changeAbout = `Asks a running cdpsim for the next change of a store's stream; prints its seq.
Kinds and their flags (the common flags may come before or after the kind):
  erase     --profile ID | --customer I
  restrict  --profile ID | --customer I [--lift]
  consent   --profile ID | --customer I --set PURPOSE=STATUS [--set ...]
            (STATUS: granted, denied, withdrawn, objected)
  profile   --profile ID | --customer I [--attr NAME:PURPOSE=VALUE ...]
            [--loyalty NUMBER] [--email ADDRESS] [--ident HEX ...] [--replace]
            [--version V] [--expires MS]
            (VALUE is JSON if it parses as JSON, else text; --attr replaces the
            attribute of that name and purpose and keeps the others unless
            --replace; clear identifiers are hashed by cdpsim, never stored)
  policy    --file FILE (JSON: {"purposes":[{"name":..,"basis":..}],"events":{..}})
            | --default`

func change(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var common changeFlags
	fs := newFlags("change", "[flags] KIND [kind flags]", changeAbout)
	common.register(fs)
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() == 0 {
		return usageError(fs, stderr, "a kind is required")
	}
	kind := fs.Arg(0)
	kfs := newFlags("change "+kind, "[flags]", changeAbout)
	first := common // registering again resets the fields to their defaults
	common.register(kfs)
	kfs.Set("control", first.control)
	kfs.Set("store", first.store)
	kfs.Set("profile", first.profile)
	kfs.Set("customer", strconv.Itoa(first.customer))
	kfs.Set("json", strconv.FormatBool(first.asJSON))
	var (
		sets, attrs, idents multiFlag
		lift, replace, def  bool
		loyalty, email      string
		file                string
		version             uint64
		expires             int64
	)
	switch kind {
	case "erase":
	case "restrict":
		kfs.BoolVar(&lift, "lift", false, "lift the restriction instead of restricting")
	case "consent":
		kfs.Var(&sets, "set", "PURPOSE=STATUS, repeatable")
	case "profile":
		kfs.Var(&attrs, "attr", "NAME:PURPOSE=VALUE, repeatable")
		kfs.Var(&idents, "ident", "an ident in hex, repeatable")
		kfs.StringVar(&loyalty, "loyalty", "", "a clear loyalty number to hash into an ident")
		kfs.StringVar(&email, "email", "", "a clear e-mail address to hash into an ident")
		kfs.BoolVar(&replace, "replace", false, "the --attr flags are the whole set of attributes")
		kfs.Uint64Var(&version, "version", 0, "profile version (default: current + 1)")
		kfs.Int64Var(&expires, "expires", 0, "expiry, ms since the epoch (default: now + 30 days)")
	case "policy":
		kfs.StringVar(&file, "file", "", "JSON file of the policy")
		kfs.BoolVar(&def, "default", false, "publish the baseline's default policy")
	default:
		return usageError(fs, stderr, "unknown kind %q: want erase, restrict, consent, profile or policy", kind)
	}
	if err := parse(kfs, fs.Args()[1:], stdout, stderr); err != nil {
		return helped(err)
	}
	if kfs.NArg() > 0 {
		return usageError(kfs, stderr, "unexpected argument %q", kfs.Arg(0))
	}
	req := central.ChangeRequest{Store: common.store, Kind: kind, Profile: common.profile}
	if common.customer >= 0 {
		req.Customer = &common.customer
	}
	switch kind {
	case "restrict":
		restricted := !lift
		req.Restricted = &restricted
	case "consent":
		req.Purposes = map[string]central.ConsentRequest{}
		for _, s := range sets {
			p, st, ok := strings.Cut(s, "=")
			if !ok {
				return usageError(kfs, stderr, "--set %q: want PURPOSE=STATUS", s)
			}
			req.Purposes[p] = central.ConsentRequest{Status: st}
		}
	case "profile":
		req.Loyalty, req.Email, req.Idents, req.Replace = loyalty, email, idents, replace
		req.Version, req.Expires = version, expires
		for _, a := range attrs {
			ar, ok := parseAttr(a)
			if !ok {
				return usageError(kfs, stderr, "--attr %q: want NAME:PURPOSE=VALUE", a)
			}
			req.Attrs = append(req.Attrs, ar)
		}
	case "policy":
		p, err := policyOf(file, def)
		if err != nil {
			return usageError(kfs, stderr, "%v", err)
		}
		req.Policy = p
	}
	res, err := (&central.ControlClient{Addr: common.control}).Change(ctx, req)
	if err != nil {
		return err
	}
	if common.asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "seq %d (%s, store %s)\n", res.Seq, res.Kind, res.Store)
	if !res.Published {
		fmt.Fprintln(stderr, "cdpsim: the change is logged but was not published (broker unreachable); agents get it when they sync")
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// parseAttr reads NAME:PURPOSE=VALUE; VALUE is JSON when it parses as
// JSON, else text.
func parseAttr(s string) (central.AttrRequest, bool) {
	key, value, ok := strings.Cut(s, "=")
	name, purpose, ok2 := strings.Cut(key, ":")
	if !ok || !ok2 {
		return central.AttrRequest{}, false
	}
	var v any = value
	var parsed any
	if json.Unmarshal([]byte(value), &parsed) == nil {
		v = parsed
	}
	return central.AttrRequest{Name: name, Purpose: purpose, Value: v}, true
}

func policyOf(file string, def bool) (*central.PolicyRequest, error) {
	if def == (file != "") {
		return nil, errors.New("give --file or --default")
	}
	if def {
		p := central.DefaultPolicy()
		out := &central.PolicyRequest{Events: p.Events}
		for _, pu := range p.Purposes {
			out.Purposes = append(out.Purposes, central.PurposeRequest{Name: pu.Name, Basis: string(pu.Basis)})
		}
		return out, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p central.PolicyRequest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy file %s: %w", file, err)
	}
	return &p, nil
}

func snapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("snapshot", "--agent A [--store S] [--control ADDR] [--json]",
		"Pushes a snapshot of the store's state to one agent, unasked, and prints how\n"+
			"many chunks and changes it took once the broker has them all.")
	control := fs.String("control", "127.0.0.1:8790", "control API address of the running cdpsim")
	store := fs.String("store", "", "the agent's store (default: serve's --store)")
	agent := fs.String("agent", "", "agent id (required)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	if fs.NArg() > 0 || *agent == "" {
		return usageError(fs, stderr, "--agent is required")
	}
	res, err := (&central.ControlClient{Addr: *control}).PushSnapshot(ctx, central.SnapshotRequest{Store: *store, Agent: *agent})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "snapshot at seq %d sent: chunks=%d changes=%d bytes=%d\n", res.To, res.Chunks, res.Changes, res.Bytes)
	return nil
}

func pace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pace", "[--control ADDR] [MS]",
		"Prints the pace (ms the agents wait between batches) that a running cdpsim\n"+
			"puts in every ack; with MS, sets it first. 0 is full speed.")
	control := fs.String("control", "127.0.0.1:8790", "control API address of the running cdpsim")
	if err := parse(fs, args, stdout, stderr); err != nil {
		return helped(err)
	}
	cl := &central.ControlClient{Addr: *control}
	var (
		ms  uint64
		err error
	)
	switch fs.NArg() {
	case 0:
		ms, err = cl.Pace(ctx)
	case 1:
		v, perr := strconv.ParseUint(fs.Arg(0), 10, 64)
		if perr != nil {
			return usageError(fs, stderr, "MS %q is not a number of milliseconds", fs.Arg(0))
		}
		ms, err = cl.SetPace(ctx, v)
	default:
		return usageError(fs, stderr, "at most one argument")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ms)
	return nil
}
