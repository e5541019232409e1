package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storeagent/storeagent/store"
)

// TestMain lets the tests run this package's main as a real child process.
func TestMain(m *testing.M) {
	if os.Getenv("STOREAGENT_TEST_MAIN") == "1" {
		os.Args = append([]string{"storeagent"}, strings.Fields(os.Getenv("STOREAGENT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func agentCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "STOREAGENT_TEST_MAIN=1", "STOREAGENT_TEST_ARGS="+strings.Join(args, " "))
	return cmd
}

// startAgent starts the daemon and waits for its "started" log line.
func startAgent(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := agentCmd(args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var log bytes.Buffer
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "storeagent started") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not start; log:\n%s", log.String())
	}
	return cmd, &log
}

// The daemon shuts down cleanly on SIGINT and SIGTERM: exit status 0 and
// the store's lock released, so the CLI can open it at once.
func TestCleanShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd, log := startAgent(t, "-state-dir", dir)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %v: %v\n%s", sig, err, log)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no exit 10s after %v", sig)
			}
			key, err := store.LoadKeyFile(filepath.Join(dir, "store.key"))
			if err != nil {
				t.Fatalf("generated key file: %v", err)
			}
			db, err := store.OpenReadOnly(filepath.Join(dir, "store.db"), store.Options{Key: key})
			if err != nil {
				t.Fatalf("store still locked after exit: %v", err)
			}
			db.Close()
		})
	}
}

func TestRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "site.toml")
	os.WriteFile(cfg, []byte("kind = \"pos\"\n[store]\nmax_fil_mb = 3\n"), 0o644)
	out, err := agentCmd("-config", cfg, "-state-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "site.toml:3: store.max_fil_mb: unknown key") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "store.db")); !os.IsNotExist(err) {
		t.Fatal("a bad config still created the store")
	}
}

func TestRefusesLooseKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "store.key")
	os.WriteFile(key, bytes.Repeat([]byte("ab"), 32), 0o644)
	os.Chmod(key, 0o644)
	out, err := agentCmd("-state-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Fatalf("loose key file: %v\n%s", err, out)
	}
}
