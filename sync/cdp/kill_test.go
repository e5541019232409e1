package cdp_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// TestMain makes the test binary a syncing agent when the kill test asks.
func TestMain(m *testing.M) {
	if os.Getenv("CDP_CHILD_DB") != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child runs an agent syncing with the broker named in its environment. In
// capture mode it captures as fast as it can from 4 goroutines and prints
// "try <id>" before and "ack <seq> <id>" after each capture; it runs until
// killed.
func child() int {
	key, _ := hex.DecodeString(os.Getenv("CDP_CHILD_KEY"))
	pub, _ := hex.DecodeString(os.Getenv("CDP_CHILD_CENTRAL"))
	db, err := store.Open(os.Getenv("CDP_CHILD_DB"), store.Options{Key: key})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	cfg := agenttest.Config()
	a, err := agent.New(db, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	v, _ := wire.NewVerifier(ed25519.PublicKey(pub))
	s, err := cdp.New(cdp.Config{
		Scope: wire.Scope{Tenant: "acme", Store: "s1", Agent: "a1"}, Verifier: v, Version: "child",
		Link: link.Config{Broker: os.Getenv("CDP_CHILD_BROKER"), BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond},
	}, db, a, quiet())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	go s.Run(context.Background())
	if os.Getenv("CDP_CHILD_MODE") == "capture" {
		var mu sync.Mutex
		for w := range 4 {
			go func() {
				for i := 0; ; i++ {
					id := newID()
					mu.Lock()
					os.Stdout.WriteString("try " + id + "\n")
					mu.Unlock()
					res, err := a.Capture(context.Background(), agent.CaptureRequest{MessageID: id, Event: "Order Completed",
						AnonymousID: "v", Device: "pos-1", Properties: map[string]any{"w": w, "i": i}})
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(4)
					}
					mu.Lock()
					fmt.Fprintf(os.Stdout, "ack %d %s\n", res.Seq, id)
					mu.Unlock()
				}
			}()
		}
	}
	select {}
}

var idMu sync.Mutex

func newID() string {
	idMu.Lock()
	defer idMu.Unlock()
	return event.NewID()
}

// An agent killed with SIGKILL in the middle of capturing and draining,
// then restarted, delivers every event it acknowledged exactly once, in
// capture order; the only others the central may hold are events captured
// whose ack the kill swallowed.
func TestKilledMidDrain(t *testing.T) {
	w := startWorld(t, 0)
	dir := t.TempDir()
	key := keyFile(t, dir)
	env := []string{
		"CDP_CHILD_DB=" + filepath.Join(dir, "store.db"), "CDP_CHILD_KEY=" + hex.EncodeToString(key),
		"CDP_CHILD_CENTRAL=" + hex.EncodeToString(w.key.Public().(ed25519.PublicKey)), "CDP_CHILD_BROKER=" + w.broker.URL,
	}
	var acked []captured
	tried := map[string]bool{}
	for round := range 3 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), append(env, "CDP_CHILD_MODE=capture")...)
		out, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read everything the child prints until it dies: tries and acks
		// printed after the 1500th ack still count, or an event captured
		// then would look like one that never was.
		var mu sync.Mutex
		enough := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			n := 0
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				mu.Lock()
				switch {
				case len(f) == 2 && f[0] == "try":
					tried[f[1]] = true
				case len(f) == 3 && f[0] == "ack":
					var seq uint64
					fmt.Sscan(f[1], &seq)
					acked = append(acked, captured{seq, f[2]})
					if n++; n == 1500 {
						close(enough)
					}
				}
				mu.Unlock()
			}
		}()
		select {
		case <-enough:
		case <-done:
			t.Fatalf("round %d: child stopped before 1500 acknowledgements; stderr: %s", round, stderr.String())
		}
		// Kill once the central has some of this round, so the drain is
		// under way and batches are in flight.
		mu.Lock()
		half := uint64(len(acked)) / 2
		mu.Unlock()
		w.waitUnique(t, half, 30*time.Second)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
	}
	// A last run only drains.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append(env, "CDP_CHILD_MODE=drain")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	w.waitUnique(t, uint64(len(acked)), 60*time.Second)
	time.Sleep(500 * time.Millisecond) // stragglers captured without an ack
	ids := inOrder(acked)
	unseen := map[string]bool{}
	for id := range tried {
		unseen[id] = true
	}
	exactlyOnceInOrder(t, w.received(t), ids, unseen)
	t.Logf("3 kills, %d acknowledged events delivered once each, in order", len(ids))
}
