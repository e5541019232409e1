// Package cli is storectl, the field technician's command line: status,
// doctor, a live scan test, the outbox, sync, compaction, config checks,
// support bundles and support lookups, all without showing personal data.
//
// It is thin: each command asks the running daemon over its local API
// (localapi.Client) and prints the answer; when the daemon is down it
// reads the store file read-only (store.OpenReadOnly) through the same
// packages the daemon uses (cmd/internal/support, cmd/internal/doctor) and
// says so on stderr. Commands that need the daemon say what to do instead.
//
// # Output and exit codes
//
// stdout holds the command's output and nothing else; diagnostics go to
// stderr. --json prints the same as JSON for scripts, whose readers must
// ignore fields they do not know. Exit codes: 0 ok; 1 a check failed or the
// command failed; 2 a usage error; 3 the daemon is unreachable and nothing
// could stand in for it.
//
// # What it must never do
//
// Print an identifier, a user id, an attribute value or an event's
// properties: identifiers are masked (ident.ID.Mask), ids become short
// keyed hashes (support.Masker), values are never read. It never writes to
// the store except to compact it or to record a lookup in the audit log
// when the daemon is down.
//
// Its tests run every command against a real daemon (a child process)
// and against the same state directory once the daemon has stopped,
// compare the human output with golden files (testdata/golden, -update to
// rewrite), decode the JSON output, and prove that seeded names, e-mail
// addresses and loyalty numbers appear in no output, no bundle and no log.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK          = 0 // done
	ExitFailed      = 1 // a check failed, or the command failed
	ExitUsage       = 2 // bad flags or arguments
	ExitUnreachable = 3 // the daemon is unreachable and nothing could stand in for it
)

// Options are what Run needs from the process.
type Options struct {
	Version string    // storectl's build
	Stdin   io.Reader // default os.Stdin
	Stdout  io.Writer // default os.Stdout
	Stderr  io.Writer // default os.Stderr
	// Now is the clock of human output; default time.Now.
	Now func() time.Time
}

// exitError ends a command with an exit code. A nil err means the command
// already said what it had to.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// failed ends the command with ExitFailed.
func failed(format string, args ...any) error {
	return &exitError{code: ExitFailed, err: fmt.Errorf(format, args...)}
}

// usage ends the command with ExitUsage.
func usage(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// unreachable ends the command with ExitUnreachable.
func unreachable(format string, args ...any) error {
	return &exitError{code: ExitUnreachable, err: fmt.Errorf(format, args...)}
}

// Run runs storectl with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, opts Options) int {
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &app{opts: opts, stdout: opts.Stdout, stderr: opts.Stderr}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(opts.Stdin)
	root.SetOut(opts.Stdout)
	root.SetErr(opts.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exitCode(cmd, err)
}

// exitCode prints err and maps it to an exit code. Every error a command
// returns is an *exitError (see wrap); anything else comes from cobra's
// parsing of flags and arguments: a usage error.
func (a *app) exitCode(cmd *cobra.Command, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(a.stderr, "storectl:", ee.err)
		}
		if ee.code == ExitUsage && cmd != nil {
			fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return ee.code
	}
	fmt.Fprintln(a.stderr, "storectl:", err)
	path := "storectl"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", path)
	return ExitUsage
}

// wrap turns a command's function into a RunE whose errors all carry an
// exit code: ExitFailed unless the function chose another. A cancelled
// context (Ctrl-C) is reported as an interruption.
func (a *app) wrap(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		if cmd.Context().Err() != nil {
			return &exitError{code: ExitFailed, err: errors.New("interrupted")}
		}
		return &exitError{code: ExitFailed, err: err}
	}
}
