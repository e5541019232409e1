package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/storeagent/storeagent/cmd/internal/support"
)

// printJSON writes v, indented, to stdout.
func (a *app) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}

// table is aligned "key  value" output.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// row writes one row; a key of "" continues the row above.
func (t *table) row(key, format string, args ...any) {
	fmt.Fprintf(t.tw, "%s\t%s\n", key, fmt.Sprintf(format, args...))
}

func (t *table) flush() error { return t.tw.Flush() }

// when formats a time for people: local, to the second, and how long ago.
func (a *app) when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + support.Ago(t, a.opts.Now()) + ")"
}

// ago is support.Ago against storectl's clock.
func (a *app) ago(t time.Time) string { return support.Ago(t, a.opts.Now()) }

// plural is "1 event", "2 events".
func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// orNone is s, or "none".
func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}
