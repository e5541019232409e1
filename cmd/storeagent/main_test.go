package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
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
func startAgent(t *testing.T, args ...string) (*exec.Cmd, *storetest.LogBuffer) {
	t.Helper()
	cmd := agentCmd(args...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	log := &storetest.LogBuffer{}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
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
	return cmd, log
}

// testConfig writes a config for a daemon under test: its own state
// directory, the API on its socket and a free loopback port.
func testConfig(t *testing.T, extra string) (cfgPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "agent.toml")
	doc := "[api]\nlisten = \"127.0.0.1:0\"\n" + extra
	if err := os.WriteFile(cfgPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dir
}

// The daemon shuts down cleanly on SIGINT and SIGTERM: exit status 0 and
// the store's lock released, so the CLI can open it at once.
func TestCleanShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cfg, dir := testConfig(t, "")
			cmd, log := startAgent(t, "-config", cfg, "-state-dir", dir)
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
	cfg, _ := testConfig(t, "")
	out, err := agentCmd("-config", cfg, "-state-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Fatalf("loose key file: %v\n%s", err, out)
	}
}

// A POS talks to the running daemon over its socket: an unknown card gets
// an anonymous id, an event is acknowledged only once durable (it is in the
// store after the daemon stops), and status reports it queued.
func TestDaemonServesLocalAPI(t *testing.T) {
	cfg, dir := testConfig(t, "")
	cmd, log := startAgent(t, "-config", cfg, "-state-dir", dir)
	c := &localapi.Client{Socket: filepath.Join(dir, "api.sock")}
	ctx := context.Background()
	id, err := c.Identify(ctx, localapi.IdentifyRequest{Scan: "79927398713", Purpose: "loyalty", Device: "pos-1"})
	if err != nil || id.Known || id.AnonymousID == "" {
		t.Fatalf("identify: %+v %v\n%s", id, err, log)
	}
	res, err := c.Capture(ctx, localapi.EventRequest{Event: "Order Completed", AnonymousID: id.AnonymousID, Device: "pos-1",
		Properties: map[string]any{"total": 12.5}})
	if err != nil || res.Seq == 0 {
		t.Fatalf("capture: %+v %v", res, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Outbox.Records == 0 || st.Link.State != "disabled" || st.AgentID != "agent-01" {
		t.Fatalf("status: %+v %v", st, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	key, _ := store.LoadKeyFile(filepath.Join(dir, "store.key"))
	db, err := store.OpenReadOnly(filepath.Join(dir, "store.db"), store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var found bool
	db.View(func(tx *store.Tx) error {
		r, ok, _ := tx.OutboxRecord(res.Seq)
		found = ok && bytes.Contains(r.Payload, []byte(res.MessageID))
		return nil
	})
	if !found {
		t.Fatal("the acknowledged event is not in the store")
	}
}
