package cdp_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/cdp"
	"github.com/storeagent/storeagent/sync/central"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// fillBacklog puts n valid events in the outbox, as a day offline would.
func fillBacklog(b *testing.B, db *store.DB, n int) {
	for start := 0; start < n; start += 5000 {
		err := db.Update(func(tx *store.Tx) error {
			for i := start; i < min(start+5000, n); i++ {
				ev := &event.Event{
					MessageID: event.NewID(), Type: event.Track, Event: "Product Viewed", AnonymousID: "visitor",
					OriginalTimestamp: time.Now().UnixMilli(), Properties: map[string]any{"sku": fmt.Sprintf("SKU-%06d", i), "price": 12.5},
					Context: event.Context{Store: "s1", Agent: "a1", Device: "pos-1", Purpose: "analytics",
						Consent: event.Consent{CategoryPreferences: map[string]bool{"analytics": true}}},
				}
				p, err := ev.Encode()
				if err != nil {
					return err
				}
				if _, err := tx.AppendOutbox(store.Entry{Class: store.Telemetry, Label: "analytics", Payload: p}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrain measures how fast a backlog of 200,000 events drains
// through mosquitto to the central, with the central's signed acks and the
// outbox deletes. Two baselines run on the same broker in the same run:
//
//   - naive: the drain most agents do, one event per MQTT message at QoS 1,
//     waiting for each PUBACK, then deleting it from the same kind of
//     outbox (so trusting the broker's PUBACK, which this agent never does);
//   - puback: the bare loop of one message, one PUBACK, with no outbox at
//     all, the network's floor for one-at-a-time.
//
// Run it with -benchtime=1x.
func BenchmarkDrain(b *testing.B) {
	for range b.N {
		broker := brokertest.Start(b, "set_tcp_nodelay true")
		base := baselineRate(b, broker.URL, 10_000)
		naive := naiveDrainRate(b, broker.URL, 2000)
		reportDrain(b, drainRate(b, broker.URL, broker.URL, 200_000), naive, base)
	}
}

// BenchmarkDrainWAN is BenchmarkDrain with the broker where a store's
// broker is, across a WAN: 25 ms each way between the agent and the broker
// (the central sits next to the broker). Here the round trip, not the CPU,
// bounds a drain that waits for anything per message; the agent keeps a
// window of batches on the wire.
func BenchmarkDrainWAN(b *testing.B) {
	const oneWay = 25 * time.Millisecond
	for range b.N {
		broker := brokertest.Start(b, "set_tcp_nodelay true")
		road := broker.Delay(oneWay)
		base := baselineRate(b, road, 20)
		naive := naiveDrainRate(b, road, 20)
		reportDrain(b, drainRate(b, road, broker.URL, 200_000), naive, base)
	}
}

func reportDrain(b *testing.B, rate, naive, base float64) {
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(naive, "naive-events/s")
	b.ReportMetric(base, "puback-events/s")
	b.ReportMetric(rate/naive, "x-naive")
	b.ReportMetric(rate/base, "x-puback")
}

// drainRate fills an outbox with backlog events and returns how many a
// second the agent, connected to agentURL, drains to a central connected
// to centralURL, until the central has acked every one.
func drainRate(b *testing.B, agentURL, centralURL string, backlog int) float64 {
	key := centralKey()
	c, err := central.New(central.Config{Broker: centralURL, Tenant: "acme", Store: "s1", Key: key,
		TenantKey: tenantKeyForBench, DataDir: b.TempDir(), IDsOnly: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cdone := make(chan struct{})
	go func() { defer close(cdone); c.Run(ctx) }()
	defer func() { cancel(); <-cdone; c.Close() }()
	<-c.Ready()

	db := storetest.Open(b, store.Options{Outbox: store.OutboxLimits{MaxRecords: 2 * uint64(backlog), MaxBytes: 1 << 30}})
	fillBacklog(b, db, backlog)
	a := newBenchAgent(b, db)
	s, err := cdp.New(benchSyncConfig(b, agentURL, key), db, a, quiet())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sdone := make(chan struct{})
	go func() { defer close(sdone); s.Run(ctx) }()
	defer func() { cancel(); <-sdone }()
	for s.Status().Uplink.AckedThrough < uint64(backlog) {
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	var unique uint64
	for _, r := range c.Report().Agents {
		unique += r.Unique
	}
	if unique != uint64(backlog) {
		b.Fatalf("central holds %d unique events, want %d", unique, backlog)
	}
	b.ReportMetric(el.Seconds(), "drain-s")
	return float64(backlog) / el.Seconds()
}

// naiveDrainRate drains n events from an outbox one at a time: read one,
// publish it alone at QoS 1, wait for the PUBACK, delete it. Events per
// second.
func naiveDrainRate(b *testing.B, broker string, n int) float64 {
	db := storetest.Open(b, store.Options{})
	fillBacklog(b, db, n)
	cl := connect(b, broker, "naive")
	defer cl.Disconnect(100)
	start := time.Now()
	for from := uint64(0); ; {
		recs, err := db.ReadOutbox(from, 1, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if tok := cl.Publish("cdp/v1/acme/up/s1/naive/events", 1, false, recs[0].Payload); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		if _, err := db.DeleteOutboxRange(recs[0].Seq, recs[0].Seq); err != nil {
			b.Fatal(err)
		}
		from = recs[0].Seq + 1
	}
	return float64(n) / time.Since(start).Seconds()
}

func connect(b *testing.B, broker, id string) mqtt.Client {
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true))
	if tok := cl.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	return cl
}

// baselineRate publishes n events one per message at QoS 1, waiting for
// each PUBACK, and returns events per second.
func baselineRate(b *testing.B, broker string, n int) float64 {
	cl := connect(b, broker, "baseline")
	defer cl.Disconnect(100)
	ev := wire.Event{MessageID: event.NewID(), Type: wire.EventTrack, Event: "Product Viewed", AnonymousID: "visitor",
		OriginalTimestamp: time.Now().UnixMilli(), Properties: map[string]any{"sku": "SKU-000001", "price": 12.5},
		Context: wire.Context{Store: "s1", Agent: "a1", Device: "pos-1", Purpose: "analytics", Consent: wire.Consent{CategoryPreferences: map[string]bool{"analytics": true}}}}
	payload, err := wire.EncodeEvent(ev)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range n {
		if tok := cl.Publish("bench/baseline", 1, false, payload); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

var tenantKeyForBench = []byte("0123456789abcdef0123456789abcdef")

func newBenchAgent(b *testing.B, db *store.DB) *agent.Agent {
	cfg := agentConfigWithKey(tenantKeyForBench)
	cfg.MaxProfiles = 3_000_000
	a, err := agent.New(db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func benchSyncConfig(b *testing.B, broker string, key ed25519.PrivateKey) cdp.Config {
	v, err := wire.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	return cdp.Config{
		Scope: wire.Scope{Tenant: "acme", Store: "s1", Agent: "a1"}, Verifier: v, Version: "bench",
		Link: link.Config{Broker: broker, BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second},
	}
}

// BenchmarkSnapshot1M measures a fresh agent receiving the central's
// baseline of one million customers by snapshot over mosquitto, from
// connect to the switch of the cache, and the agent's peak heap while
// applying it. The same is measured for 100,000 customers in the same run:
// memory is flat when the peak does not grow with the snapshot (the ratio
// stays near 1). cdpsim runs as its own process, so its memory is not
// counted. Run it with -benchtime=1x.
func BenchmarkSnapshot1M(b *testing.B) {
	for range b.N {
		bin, keys := buildSim(b)
		small := applySnapshot(b, bin, keys, 100_000)
		big := applySnapshot(b, bin, keys, 1_000_000)
		b.ReportMetric(big.el.Seconds(), "apply-s")
		b.ReportMetric(1e6/big.el.Seconds(), "profiles/s")
		b.ReportMetric(big.peakMiB, "peak-heap-MiB")
		b.ReportMetric(small.peakMiB, "peak-heap-100k-MiB")
		b.ReportMetric(big.peakMiB/small.peakMiB, "x-heap-1m-vs-100k")
	}
}

type snapshotRun struct {
	el      time.Duration
	peakMiB float64
}

// buildSim builds cdpsim and makes its keys.
func buildSim(b *testing.B) (bin, keys string) {
	dir := b.TempDir()
	bin = filepath.Join(dir, "cdpsim")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/cdpsim").CombinedOutput(); err != nil {
		b.Fatalf("build cdpsim: %v\n%s", err, out)
	}
	keys = filepath.Join(dir, "keys")
	if out, err := exec.Command(bin, "keygen", "--dir", keys).CombinedOutput(); err != nil {
		b.Fatalf("keygen: %v\n%s", err, out)
	}
	return bin, keys
}

// applySnapshot starts a broker and a cdpsim of n customers, and times a
// fresh agent from connect until its cache holds the snapshot.
func applySnapshot(b *testing.B, bin, keys string, customers int) snapshotRun {
	broker := brokertest.Start(b, "set_tcp_nodelay true")
	dir := b.TempDir()
	sim := exec.Command(bin, "serve", "--broker", broker.URL, "--tenant", "acme", "--store", "s1", "--keys", keys,
		"--data", filepath.Join(dir, "data"), "--customers", fmt.Sprint(customers), "--control", "127.0.0.1:0")
	out, _ := sim.StdoutPipe()
	sim.Stderr = os.Stderr
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { sim.Process.Kill(); sim.Wait() }()
	bufio.NewReader(out).ReadString('\n') // the control address: it is up
	priv, tenantKey := loadSimKeys(b, keys)

	db := storetest.Open(b, store.Options{InitialMmapSize: 1 << 30, Outbox: store.OutboxLimits{MaxRecords: 100_000, MaxBytes: 1 << 28}})
	cfg := agentConfigWithKey(tenantKey)
	cfg.MaxProfiles = 2 * uint64(customers)
	a, err := agent.New(db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	s, err := cdp.New(benchSyncConfig(b, broker.URL, priv), db, a, quiet())
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var peak atomic.Uint64
	stopSampling := sampleHeap(&peak)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	for s.Status().Downlink.Snapshots == 0 {
		if time.Since(start) > 10*time.Minute {
			b.Fatal("no snapshot after 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(start)
	stopSampling()
	st, _ := a.CacheStats()
	if st.Profiles != uint64(customers) {
		b.Fatalf("cache holds %d profiles after the snapshot, want %d", st.Profiles, customers)
	}
	cancel()
	<-done
	return snapshotRun{el: el, peakMiB: float64(peak.Load()) / (1 << 20)}
}

func sampleHeap(peak *atomic.Uint64) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-t.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

func loadSimKeys(b *testing.B, dir string) (ed25519.PrivateKey, []byte) {
	k, err := central.LoadKeys(dir)
	if err != nil {
		b.Fatal(err)
	}
	return k.Central, k.Tenant
}

// agentConfigWithKey is the test agent's config under another tenant key.
func agentConfigWithKey(key []byte) agent.Config {
	cfg := agenttest.Config()
	cfg.TenantKey = key
	return cfg
}

// BenchmarkCatchUp measures an agent catching up on the central's changes
// after a time offline: 5,000 consent changes published while it was
// away, applied from connect until its cursor reaches the last one (the
// broker's backlog for its session and the central's reply to its sync
// request, both). The baseline, in the same run, is the same number of
// changes applied one per transaction, as each change of the stream alone
// would be: one fsync each. Run it with -benchtime=1x.
func BenchmarkCatchUp(b *testing.B) {
	const changes = 5000
	for range b.N {
		w := startWorld(b, 50)
		dir := b.TempDir()
		key := keyFile(b, dir)
		path := filepath.Join(dir, "store.db")
		n := w.startNode(b, path, key)
		first, err := w.central.Customers().Customer(0)
		if err != nil {
			b.Fatal(err)
		}
		waitFor(b, "the baseline snapshot", func() bool { return identify(n, first.Loyalty).Known })
		n.stop()
		var last uint64
		for i := range changes {
			c, err := w.central.Customers().Customer(i % 50)
			if err != nil {
				b.Fatal(err)
			}
			last, err = w.central.Publish(context.Background(), "s1", catchUpChange(c.Profile, i))
			if err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		n = w.startNode(b, path, key)
		for cur, _ := n.a.Cursor(); cur < last; cur, _ = n.a.Cursor() {
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("cursor %d of %d after 5 minutes", cur, last)
			}
			time.Sleep(2 * time.Millisecond)
		}
		rate := changes / time.Since(start).Seconds()
		n.stop()

		base := oneByOneRate(b, w, 1000)
		b.ReportMetric(rate, "changes/s")
		b.ReportMetric(base, "one-per-tx-changes/s")
		b.ReportMetric(rate/base, "x-one-per-tx")
	}
}

func catchUpChange(profile string, i int) *wire.ConsentChange {
	status := []wire.ConsentStatus{wire.StatusGranted, wire.StatusWithdrawn}[i%2]
	return &wire.ConsentChange{Profile: profile, Purposes: map[string]wire.ConsentEntry{
		"marketing": {Status: status, Basis: wire.BasisConsent, At: time.Now().UnixMilli()}}}
}

// oneByOneRate applies n such changes to a fresh agent, each in its own
// transaction, and returns changes per second.
func oneByOneRate(b *testing.B, w *world, n int) float64 {
	db := storetest.Open(b, store.Options{})
	a := agenttest.NewOn(b, db)
	changes := make([]agent.Change, n)
	for i := range changes {
		c, err := w.central.Customers().Customer(i % 50)
		if err != nil {
			b.Fatal(err)
		}
		wc := catchUpChange(c.Profile, i)
		changes[i] = agent.Change{Seq: uint64(i + 1), Kind: agent.ChangeConsent, Profile: c.Profile,
			Consent: map[string]consent.Entry{"marketing": {Status: consent.Status(wc.Purposes["marketing"].Status), At: wc.Purposes["marketing"].At}}}
	}
	start := time.Now()
	for _, ch := range changes {
		if res, err := a.Apply(context.Background(), ch); err != nil || res != agent.Applied {
			b.Fatalf("apply %d: %v %v", ch.Seq, res, err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
