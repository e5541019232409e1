package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/cmd/storectl/cli"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// runCLI runs storectl with no daemon anywhere: a config of its own whose
// state directory holds what setup put there.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb storetest.LogBuffer
	code := cli.Run(context.Background(), args, cli.Options{Version: "test", Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// lonelyConfig is a config whose state directory is dir, its socket in it,
// and no TCP: storectl finds no daemon.
func lonelyConfig(t *testing.T) (cfg, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfg = filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[store]\ndir = %q\n[api]\nlisten = \"\"\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

func TestExitCodes(t *testing.T) {
	cfg, dir := lonelyConfig(t)
	key := filepath.Join(t.TempDir(), "new.key")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", []string{"statsu"}, cli.ExitUsage, `unknown command "statsu"`},
		{"unknown flag", []string{"status", "--verbose"}, cli.ExitUsage, "storectl status --help"},
		{"stray argument", []string{"status", "now"}, cli.ExitUsage, "takes no arguments"},
		{"scan without a port", []string{"scan"}, cli.ExitUsage, "--port"},
		{"lookup without a purpose", []string{"lookup", "--scan", "79927398713"}, cli.ExitUsage, "--purpose"},
		{"lookup with two identifiers", []string{"lookup", "--scan", "1", "--kind", "email", "--value", "x", "--purpose", "loyalty"}, cli.ExitUsage, "not both"},
		{"peek too many", []string{"outbox", "peek", "-n", "5000"}, cli.ExitUsage, "from 1 to 1000"},
		{"config check without a file", []string{"config", "check"}, cli.ExitUsage, "needs the config FILE"},
		{"config without a subcommand", []string{"config"}, cli.ExitUsage, "check FILE, or show"},
		{"bundle without -o", []string{"bundle"}, cli.ExitUsage, "-o FILE"},
		{"config check of a missing file", []string{"config", "check", filepath.Join(dir, "missing.toml")}, cli.ExitFailed, ""},
		{"no daemon, no store", []string{"--config", cfg, "status"}, cli.ExitUnreachable, "no store to read instead"},
		{"no daemon at the socket given", []string{"--config", cfg, "--socket", filepath.Join(dir, "x.sock"), "outbox"}, cli.ExitUnreachable, "cannot reach storeagent at " + filepath.Join(dir, "x.sock")},
		{"resync without a daemon", []string{"--config", cfg, "sync", "resync"}, cli.ExitUnreachable, "resync needs the running daemon"},
		{"doctor without a daemon", []string{"--config", cfg, "doctor"}, cli.ExitFailed, ""},
		{"scan of a port that is not in the config", []string{"--config", cfg, "scan", "--port", "till-9"}, cli.ExitFailed, "give its device path"},
		{"keygen", []string{"keygen", key}, cli.ExitOK, ""},
		{"keygen over a key", []string{"keygen", key}, cli.ExitFailed, "exists"},
		{"version without a daemon", []string{"--config", cfg, "version"}, cli.ExitOK, ""},
		{"completion", []string{"completion", "bash"}, cli.ExitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr should say %q:\n%s\nstdout:\n%s", r.code, tc.code, tc.stderr, r.stderr, r.stdout)
			}
		})
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keygen wrote %v %v", fi, err)
	}
}

// A store held by a process whose API does not answer: storectl cannot
// stand in for it, and says where to look.
func TestLockedStore(t *testing.T) {
	cfg, dir := lonelyConfig(t)
	key, err := store.GenerateKeyFile(filepath.Join(dir, "store.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "store.db"), store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := runCLI(t, "--config", cfg, "outbox")
	if r.code != cli.ExitUnreachable || !strings.Contains(r.stderr, "holds the store but its API does not answer") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	r = runCLI(t, "--config", cfg, "doctor")
	if r.code != cli.ExitFailed || !strings.Contains(r.stdout, "locked by another process") {
		t.Fatalf("doctor: exit %d:\n%s", r.code, r.stdout)
	}
}

// Every command's --help says what it does and shows examples a
// technician can copy.
func TestHelp(t *testing.T) {
	for _, cmd := range [][]string{
		{}, {"status"}, {"doctor"}, {"scan"}, {"outbox"}, {"outbox", "peek"}, {"sync"}, {"sync", "resync"},
		{"compact"}, {"config", "check"}, {"config", "show"}, {"bundle"}, {"lookup"}, {"version"}, {"keygen"},
	} {
		r := runCLI(t, append(cmd, "--help")...)
		if r.code != cli.ExitOK || !strings.Contains(r.stdout, "Examples:\n  storectl "+strings.Join(cmd, " ")) || r.stderr != "" {
			t.Errorf("storectl %s --help: exit %d\n%s%s", strings.Join(cmd, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := runCLI(t, "--help")
	for _, want := range []string{"--json", "--config", "--socket", "Exit codes", "doctor"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("storectl --help does not mention %s", want)
		}
	}
}
