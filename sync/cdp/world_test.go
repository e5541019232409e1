package cdp_test

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/cdp"
	"github.com/storeagent/storeagent/sync/central"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// world is a real mosquitto and a real central (cdpsim's package), for
// agents to sync with.
type world struct {
	broker     *brokertest.Broker
	key        ed25519.PrivateKey
	centralDir string
	central    *central.Central
	stop       func()
	// agentURL is where agents reach the broker when it is not the
	// broker itself: a road with latency to it (brokertest.Broker.Delay).
	agentURL string
}

// quiet is the logger of the parts under test: silent, or on stderr with
// DEBUGLOG=1 to see why a fault test failed.
func quiet() *slog.Logger {
	if os.Getenv("DEBUGLOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func centralKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("storeagent test central"))
	return ed25519.NewKeyFromSeed(seed[:])
}

func startWorld(t testing.TB, customers int) *world {
	t.Helper()
	w := &world{broker: brokertest.Start(t), key: centralKey(), centralDir: t.TempDir()}
	w.startCentral(t, customers)
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *world) startCentral(t testing.TB, customers int) {
	t.Helper()
	c, err := central.New(central.Config{
		Broker: w.broker.URL, Tenant: "acme", Store: "s1", Key: w.key, TenantKey: agenttest.TenantKey,
		DataDir: w.centralDir, Customers: customers, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("central did not connect")
	}
	w.central = c
	w.stop = func() { cancel(); <-done; c.Close() }
}

func (w *world) syncConfig(t testing.TB, agentID string) cdp.Config {
	t.Helper()
	v, err := wire.NewVerifier(w.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return cdp.Config{
		Scope:    wire.Scope{Tenant: "acme", Store: "s1", Agent: agentID},
		Verifier: v,
		Version:  "test",
		Link:     link.Config{Broker: cmp.Or(w.agentURL, w.broker.URL), BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, KeepAlive: 5 * time.Second},
	}
}

// node is an agent with its store and its session, running.
type node struct {
	a    *agent.Agent
	db   *store.DB
	s    *cdp.Sync
	stop func()
}

func (w *world) startNode(t testing.TB, dbPath string, key []byte) *node {
	t.Helper()
	db := storetest.OpenAt(t, dbPath, store.Options{Key: key})
	a := agenttest.NewOn(t, db)
	s, err := cdp.New(w.syncConfig(t, "a1"), db, a, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { a.Run(ctx); done <- struct{}{} }()
	n := &node{a: a, db: db, s: s}
	var once sync.Once
	n.stop = func() { once.Do(func() { cancel(); <-done; <-done; db.Close() }) }
	t.Cleanup(n.stop)
	return n
}

// agentReport is the central's view of agent a1.
func (w *world) agentReport() central.AgentReport {
	for _, r := range w.central.Report().Agents {
		if r.Agent == "a1" {
			return r
		}
	}
	return central.AgentReport{}
}

// waitUnique waits until the central holds n unique events of a1.
func (w *world) waitUnique(t *testing.T, n uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := w.agentReport()
		if r.Unique >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("central has %d unique events of a1, want %d (report %+v)", r.Unique, n, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received lists the messageIds the central accepted from a1, in order.
func (w *world) received(t *testing.T) []string {
	t.Helper()
	var ids []string
	err := central.ReadEvents(w.centralDir, func(e central.ReceivedEvent) error {
		if e.Agent == "a1" {
			ids = append(ids, e.MessageID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// exactlyOnceInOrder checks the central's record against the events the
// agent acknowledged, in capture order: each present once, in order, and
// nothing else but what may have been captured without the ack being seen.
func exactlyOnceInOrder(t *testing.T, got, acked []string, unseen map[string]bool) {
	t.Helper()
	pos := map[string]int{}
	for i, id := range acked {
		pos[id] = i
	}
	seen := map[string]bool{}
	last := -1
	for _, id := range got {
		if seen[id] {
			t.Fatalf("event %s recorded twice", id)
		}
		seen[id] = true
		p, ok := pos[id]
		if !ok {
			if !unseen[id] {
				t.Fatalf("event %s was never captured", id)
			}
			continue
		}
		if p < last {
			t.Fatalf("event %d arrived after event %d: out of capture order", p, last)
		}
		last = p
	}
	for _, id := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged event %s never reached the central", id)
		}
	}
}

func keyFile(t testing.TB, dir string) []byte {
	t.Helper()
	k, _, err := store.LoadOrCreateKeyFile(filepath.Join(dir, "store.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
