package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// lookupView is `storectl lookup --json`.
type lookupView struct {
	Running bool   `json:"running"`
	Source  string `json:"source"`
	localapi.LookupResult
}

func (a *app) lookupCmd() *cobra.Command {
	var req localapi.LookupRequest
	cmd := &cobra.Command{
		Use:   "lookup (--scan CODE | --kind KIND --value VALUE) --purpose PURPOSE",
		Short: "Masked, purpose-scoped view of one customer, for a support case; audited",
		Long: `Look one customer up for a support case: whether the agent knows them, whether
the purpose may process them, every purpose with the customer's decision, the
names of the attributes held for the purpose (values masked), and how many
identifiers and queued events there are. The identifier is shown masked and
the customer's id only as a short keyed hash (ref).

Every lookup is recorded in the agent's audit log (purpose, kind, known or
not; never the identifier). It queues no event for the central: a support
lookup is not a visit.

Give the identifier as a scan (--scan, what the scanner sends) or as a kind
(loyalty, email, phone, app) and value. "-" reads it from stdin, which keeps
it out of the shell history: echo is not needed, type it and press Enter.

With the daemon down, storectl opens the store file itself to record the
lookup in the audit log.`,
		Example: `  storectl lookup --scan - --purpose loyalty
  storectl lookup --kind email --value - --purpose marketing --json`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			if err := a.readIdentifier(cmd, &req); err != nil {
				return err
			}
			v, err := a.lookup(cmd.Context(), req)
			if err != nil {
				return lookupError(err)
			}
			if a.flags.json {
				return a.printJSON(v)
			}
			return a.printLookup(v)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Scan, "scan", "", "the scanned `code` (- reads it from stdin)")
	f.StringVar(&req.Kind, "kind", "", "the identifier's `kind`: loyalty, email, phone or app")
	f.StringVar(&req.Value, "value", "", "the identifier as typed (- reads it from stdin)")
	f.StringVar(&req.Purpose, "purpose", "", "the `purpose` the support case is about, such as loyalty or marketing (required)")
	return cmd
}

// readIdentifier checks the flags and reads "-" from stdin.
func (a *app) readIdentifier(cmd *cobra.Command, req *localapi.LookupRequest) error {
	switch {
	case req.Purpose == "":
		return usage("lookup needs --purpose")
	case req.Scan != "" && (req.Kind != "" || req.Value != ""):
		return usage("give --scan, or --kind and --value, not both")
	case req.Scan == "" && (req.Kind == "" || req.Value == ""):
		return usage("lookup needs --scan CODE, or --kind KIND and --value VALUE")
	}
	for _, p := range []*string{&req.Scan, &req.Value} {
		if *p != "-" {
			continue
		}
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && line == "" {
			return usage("nothing to read on stdin")
		}
		*p = strings.TrimRight(line, "\r\n")
	}
	return nil
}

// lookupError says what is wrong with the identifier or the purpose,
// never the value.
func lookupError(err error) error {
	switch {
	case localapi.IsInvalidIdentifier(err) || errors.Is(err, ident.ErrInvalid):
		reason := string(ident.ReasonOf(err))
		var ae *localapi.APIError
		if errors.As(err, &ae) {
			reason = ae.Reason
		}
		return failed("the identifier is not usable: %s", reason)
	case localapi.IsUnknownPurpose(err) || errors.Is(err, agent.ErrUnknownPurpose):
		return failed("no such purpose in the policy: storectl config show lists them")
	}
	return err
}

func (a *app) lookup(ctx context.Context, req localapi.LookupRequest) (lookupView, error) {
	return daemonOrStore(ctx, a, true, func(ctx context.Context, c *localapi.Client) (lookupView, error) {
		res, err := c.Lookup(ctx, req)
		return lookupView{Running: true, Source: sourceDaemon, LookupResult: res}, err
	}, func(off *offline) (lookupView, error) {
		if !off.keyKnown {
			return lookupView{}, unreachable("storeagent is not running, and the tenant key cannot be read by this user: run storectl as root or as the storeagent user")
		}
		fmt.Fprintf(a.stderr, "storectl: storeagent is not running: looked up in the store file itself, and recorded in its audit log (%s)\n", off.db.Path())
		res, err := support.Lookup(ctx, off.db, off.agentCfg, off.masker, req)
		return lookupView{Source: sourceStore, LookupResult: res}, err
	})
}

func (a *app) printLookup(v lookupView) error {
	r := v.LookupResult
	t := newTable(a.stdout)
	t.row("identifier", "%s", r.Identifier)
	who := "unknown: the agent holds no profile for it"
	if r.Known {
		who = "known, ref:" + r.Ref
		if r.Local {
			who += " (enrolled here, not yet known to the central)"
		}
	}
	t.row("customer", "%s", who)
	may := "permitted"
	if !r.Permitted {
		may = "not permitted"
	}
	if r.Restricted {
		may += ", processing restricted (nothing is shown to devices)"
	}
	if r.Pending {
		may += ", consent pending"
	}
	t.row("purpose", "%s: %s", r.Purpose, may)
	for i, p := range r.Purposes {
		key := ""
		if i == 0 {
			key = "purposes"
		}
		t.row(key, "%s", purposeLine(p))
	}
	if len(r.Attributes) == 0 {
		t.row("attributes", "none shown for %s", r.Purpose)
	}
	for i, at := range r.Attributes {
		key := ""
		if i == 0 {
			key = "attributes"
		}
		t.row(key, "%s (%s, %s): %s", at.Name, at.Purpose, at.Type, at.Value)
	}
	if r.OtherAttributes > 0 {
		t.row("", "%d more held for other purposes, not shown", r.OtherAttributes)
	}
	if r.Known {
		t.row("identifiers", "%d (kept only as keyed hashes)", r.Identifiers)
		t.row("events", "%d queued, %d held until consent is decided", r.QueuedEvents, r.HeldEvents)
	}
	if r.Audited {
		t.row("audit", "this lookup is recorded in the agent's audit log")
	}
	return t.flush()
}

func purposeLine(p localapi.LookupPurpose) string {
	may := "permitted"
	if !p.Permitted {
		may = "not permitted"
	}
	status := "no decision"
	if p.Status != "" {
		status = p.Status
		if p.Source != "" {
			status += " (" + p.Source
			if p.At > 0 {
				status += ", " + time.UnixMilli(p.At).UTC().Format("2006-01-02")
			}
			status += ")"
		}
	}
	return fmt.Sprintf("%-16s %-20s %-28s %s", p.Purpose, p.Basis, status, may)
}
