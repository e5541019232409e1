//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The systemd unit asks for what the daemon does (Type=notify with a
// watchdog, SIGTERM for a clean stop), keeps its hardening, and its
// ExecStart is a command line the daemon accepts: run with the unit's own
// flags, on the installed config (the embedded default's file), it starts.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("systemd/storeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = v
		}
	}
	for k, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "KillSignal": "SIGTERM", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "StateDirectory": "storeagent", "PrivateTmp": "yes",
	} {
		if unit[k] != want {
			t.Errorf("%s=%q, want %q", k, unit[k], want)
		}
	}
	if unit["WatchdogSec"] == "" {
		t.Error("no WatchdogSec: a hung agent would never be restarted")
	}
	args := strings.Fields(unit["ExecStart"])
	if len(args) == 0 || args[0] != "@BINDIR@/storeagent" {
		t.Fatalf("ExecStart %q", unit["ExecStart"])
	}
	// The unit's flags, with its paths moved into a temp dir.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	def, err := os.ReadFile("../../firmware-config/default.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The API's loopback port may be taken on a test machine: the socket
	// alone is enough here.
	doc := strings.Replace(string(def), `listen = "127.0.0.1:8780"`, `listen = "127.0.0.1:0"`, 1)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("/etc/storeagent/agent.toml", cfg, "/var/lib/storeagent", filepath.Join(dir, "state"))
	var flags []string
	for _, a := range args[1:] {
		flags = append(flags, r.Replace(a))
	}
	cmd, log := startAgent(t, flags...)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the unit's command line: %v\n%s", err, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
