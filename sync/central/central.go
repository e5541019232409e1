package central

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"

	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

// Central is the reference central CDP. New opens its data directory and
// rebuilds its state; Run connects to the broker and serves until its
// context ends; Close releases the files. Publish, Snapshot and Report
// work with or without Run.
type Central struct {
	cfg       Config
	log       *slog.Logger
	signer    *wire.Signer
	verifier  *wire.Verifier
	customers Customers
	lock      *os.File

	// The recorder goroutine owns journal, journalErr and seen while Run
	// runs; New and Close own them otherwise.
	journal    *logFile
	journalErr error
	seen       map[[idSize]byte]struct{}

	mu     sync.Mutex  // guards uplink and durable
	uplink uplinkState // as recorded, durable or not: the recorder's
	// durable is the uplink's report as of the last journal fsync: what
	// Report shows, so that nothing it counts is missing from the files.
	durable struct {
		agents       []AgentReport
		unattributed map[string]uint64
	}

	storesMu sync.Mutex           // guards stores (each storeLog has its own lock)
	stores   map[string]*storeLog // by store id

	pace     atomic.Uint64
	dropAcks atomic.Int64
	live     liveCounters

	inbox     chan *inbound
	client    atomic.Pointer[mqtt.Client] // set while Run runs
	connected atomic.Bool
	running   atomic.Bool
	runDone   chan struct{}  // closed when Run returns
	syncQ     []chan syncJob // one queue per sync worker
	onConnect chan struct{}
	ready     chan struct{} // closed at the first subscription
	readyOnce sync.Once
	closed    atomic.Bool
}

type liveCounters struct {
	acksSent, ackMessages, acksDropped  atomic.Uint64
	inboxOverflow, syncOverflow         atomic.Uint64
	publishErrors, syncs, snapshotsSent atomic.Uint64
}

// meta is the data directory's identity, in cdpsim.json.
type meta struct {
	Format    int    `json:"format"`
	Tenant    string `json:"tenant"`
	Customers int    `json:"customers"`
	Seed      uint64 `json:"seed"`
	KeyID     string `json:"keyId"`
}

const metaFormat = 1

// New validates cfg, opens (or creates) the data directory and rebuilds
// the central's state from it: every agent's lastAccepted and counters, the
// set of messageIds seen, each store's seq and profile state. It touches no
// network. A torn tail left by a crash is dropped (logged); any other
// damage fails with ErrCorrupt. A data directory made for another tenant,
// baseline or key fails with ErrDataMismatch.
func New(cfg Config) (*Central, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signer, err := wire.NewSigner(cfg.Key)
	if err != nil {
		return nil, configError("key", err.Error())
	}
	verifier, err := wire.NewVerifier(cfg.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, configError("key", err.Error())
	}
	c := &Central{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "cdpsim"),
		signer:    signer,
		verifier:  verifier,
		customers: Customers{TenantKey: cfg.TenantKey, N: cfg.Customers, Seed: cfg.Seed},
		seen:      map[[idSize]byte]struct{}{},
		uplink:    newUplinkState(),
		stores:    map[string]*storeLog{},
		inbox:     make(chan *inbound, inboxSize),
		runDone:   make(chan struct{}),
		onConnect: make(chan struct{}, 1),
		ready:     make(chan struct{}),
	}
	c.syncQ = make([]chan syncJob, cfg.SyncWorkers)
	for i := range c.syncQ {
		c.syncQ[i] = make(chan syncJob, syncQueueSize)
	}
	c.pace.Store(cfg.Pace)
	if err := c.open(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Central) open() error {
	dir := c.cfg.DataDir
	if err := os.MkdirAll(filepath.Join(dir, changesDir), 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	c.lock = lock
	if err := c.checkMeta(); err != nil {
		return err
	}
	c.journal, err = openLogFile(filepath.Join(dir, journalName), magicJournal, c.log, c.replay)
	if err != nil {
		return err
	}
	names, err := storeNames(dir)
	if err != nil {
		return err
	}
	for _, s := range names {
		sl, err := openStoreLog(c, s)
		if err != nil {
			return err
		}
		c.stores[s] = sl
	}
	c.mu.Lock()
	c.markDurable()
	c.mu.Unlock()
	c.log.Info("data directory opened", "dir", dir, "agents", len(c.uplink.agents), "events_seen", len(c.seen), "stores", len(c.stores))
	return nil
}

// markDurable takes the report shown from the uplink as recorded. Call it
// with c.mu held, when the journal is synced.
func (c *Central) markDurable() {
	c.durable.agents, c.durable.unattributed = c.uplink.report()
}

// replay applies one journal record at open.
func (c *Central) replay(_ int64, payload []byte) error {
	r, err := decodeJournalRecord(payload)
	if err != nil {
		return err
	}
	for _, id := range r.ids() {
		c.seen[id] = struct{}{}
	}
	c.uplink.apply(&r)
	return nil
}

// checkMeta writes cdpsim.json for a new directory, or checks that an
// existing one was made with the same tenant, baseline and key.
func (c *Central) checkMeta() error {
	want := meta{Format: metaFormat, Tenant: c.cfg.Tenant, Customers: c.cfg.Customers, Seed: c.cfg.Seed, KeyID: c.signer.KeyID()}
	got, err := readMeta(c.cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return writeMeta(c.cfg.DataDir, want)
	}
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s was made for tenant %s, %d customers, seed %d, key %s; use another data directory",
			ErrDataMismatch, c.cfg.DataDir, got.Tenant, got.Customers, got.Seed, got.KeyID)
	}
	return nil
}

func readMeta(dir string) (meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return meta{}, fmt.Errorf("%s is not a cdpsim data directory (no %s): %w", dir, metaName, err)
		}
		return meta{}, fmt.Errorf("read %s: %w", metaName, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil || m.Format != metaFormat || !wire.ValidID(m.Tenant) || m.Customers < 0 {
		return meta{}, fmt.Errorf("%w: %s", ErrCorrupt, filepath.Join(dir, metaName))
	}
	return m, nil
}

// writeMeta writes cdpsim.json atomically: a temporary file, fsync,
// rename, fsync of the directory.
func writeMeta(dir string, m meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", metaName, err)
	}
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", metaName, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaName)); err != nil {
		return fmt.Errorf("write %s: %w", metaName, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Close syncs and closes the data files and releases the data directory.
// Call it once Run has returned; the Central is unusable after.
func (c *Central) Close() error {
	if c.running.Load() {
		select {
		case <-c.runDone:
		default:
			return errors.New("close: central is still running")
		}
	}
	if c.closed.Swap(true) {
		return nil
	}
	var errs []error
	if c.journal != nil {
		errs = append(errs, c.journal.close())
	}
	c.storesMu.Lock()
	for _, sl := range c.stores {
		errs = append(errs, sl.close())
	}
	c.storesMu.Unlock()
	if c.lock != nil {
		errs = append(errs, c.lock.Close())
	}
	return errors.Join(errs...)
}

// KeyID is the id of the central's signing key (wire.KeyID).
func (c *Central) KeyID() string { return c.signer.KeyID() }

// Customers returns the generator of the baseline's customers.
func (c *Central) Customers() Customers { return c.customers }

func (c *Central) nowMs() int64 { return c.cfg.Now().UnixMilli() }

// SetPace sets the pace, in ms, that every following Ack carries: the
// agents wait that long between batches. 0 is full speed.
func (c *Central) SetPace(ms uint64) { c.pace.Store(ms) }

// Pace returns the current pace in ms.
func (c *Central) Pace() uint64 { return c.pace.Load() }

// Ready is closed once Run has connected and subscribed to the uplink for
// the first time.
func (c *Central) Ready() <-chan struct{} { return c.ready }

// Connected reports whether the MQTT connection is up.
func (c *Central) Connected() bool { return c.connected.Load() }

// Report returns what the central received and published so far, with the
// live counters of the running process. What it counts as received is on
// disk: the uplink's counts are those of the journal's last fsync.
func (c *Central) Report() Report {
	var r Report
	c.mu.Lock()
	r.Agents = make([]AgentReport, 0, len(c.durable.agents))
	for i := range c.durable.agents {
		r.Agents = append(r.Agents, c.durable.agents[i].clone())
	}
	r.Unattributed = maps.Clone(c.durable.unattributed)
	c.mu.Unlock()
	c.storesMu.Lock()
	stores := make([]*storeLog, 0, len(c.stores))
	for _, sl := range c.stores {
		stores = append(stores, sl)
	}
	c.storesMu.Unlock()
	for _, sl := range stores {
		if sr, ok := sl.report(); ok {
			r.Stores = append(r.Stores, sr)
		}
	}
	sortStores(r.Stores)
	l := &c.live
	r.Live = &LiveReport{
		Connected: c.connected.Load(), Pace: c.pace.Load(), Customers: c.cfg.Customers,
		AcksSent: l.acksSent.Load(), AckMessages: l.ackMessages.Load(), AcksDropped: l.acksDropped.Load(),
		AcksPending: max(c.dropAcks.Load(), 0), InboxOverflow: l.inboxOverflow.Load(), SyncOverflow: l.syncOverflow.Load(),
		PublishErrors: l.publishErrors.Load(), Syncs: l.syncs.Load(), Snapshots: l.snapshotsSent.Load(),
	}
	return r
}

// Run connects to the broker, subscribes to the tenant's uplink and
// serves until ctx ends: it records and acknowledges event batches,
// answers SyncRequests and keeps presence. It returns nil when ctx is
// cancelled, or the error that stopped it (a journal write that failed, a
// broker that refuses the subscription). Run may be called once.
//
// Shutdown order: the recorder finishes the group it holds (journal fsync,
// Acks, PUBACKs) and stops; the sync workers stop (a snapshot being sent is
// cut short: the agent asks again); then the client disconnects. Messages
// still in the inbox were not PUBACKed, so the broker delivers them again
// to the next session.
func (c *Central) Run(ctx context.Context) error {
	if c.cfg.Broker == "" {
		return configError("broker", "missing")
	}
	if c.closed.Load() || !c.running.CompareAndSwap(false, true) {
		return errors.New("run: central already ran or is closed")
	}
	defer close(c.runDone)
	client := mqtt.NewClient(c.clientOptions())
	c.client.Store(&client)
	defer func() {
		c.client.Store(nil)
		c.connected.Store(false)
		client.Disconnect(250)
	}()

	g, gctx := errgroup.WithContext(ctx)
	work, ordered := make(chan *inbound, orderedSize), make(chan *inbound, orderedSize)
	g.Go(func() error { return c.sequence(gctx, work, ordered) })
	for range max(runtime.GOMAXPROCS(0), 2) {
		g.Go(func() error { return c.decodeLoop(gctx, work) })
	}
	g.Go(func() error { return c.recordLoop(gctx, ordered) })
	for _, q := range c.syncQ {
		g.Go(func() error { return c.syncLoop(gctx, q) })
	}
	g.Go(func() error { return c.session(gctx, client) })
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error("central stopped", "err", err)
		return err
	}
	c.log.Info("central stopped")
	return nil
}

// clientOptions are paho's options, each chosen for the central's job.
func (c *Central) clientOptions() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	o.AddBroker(c.cfg.Broker)
	o.SetClientID(c.cfg.ClientID)
	o.SetUsername(c.cfg.Username)
	o.SetPassword(c.cfg.Password)
	// PROTOCOL.md is MQTT 3.1.1; no silent fallback to 3.1.
	o.SetProtocolVersion(4)
	// A persistent session: while cdpsim restarts, the broker queues the
	// agents' QoS 1 uplink for it, as a real central's durable subscription
	// would. Whatever arrives twice is deduplicated by messageId.
	o.SetCleanSession(false)
	// Order matters: paho calls the handler in its router goroutine, in
	// arrival order. With false, each message gets its own goroutine and two
	// batches of one agent could reach the inbox swapped, which would look
	// like a gap. The handler only does a non-blocking channel send, which
	// is what this mode requires.
	o.SetOrderMatters(true)
	// PUBACK after the journal fsync, not on receipt: a delivered message
	// is either durable here or delivered again to the next session, and
	// the broker's in-flight window (max_inflight_messages) becomes flow
	// control instead of an unbounded inbox.
	o.SetAutoAckDisabled(true)
	// Messages queued in the persistent session arrive right after CONNACK,
	// before Subscribe has registered a route: the default handler takes
	// them.
	o.SetDefaultPublishHandler(c.onMessage)
	// Fast failure detection and recovery: cdpsim is a test peer, and a
	// broker restart in a fault test should cost seconds, not minutes.
	o.SetKeepAlive(15 * time.Second)
	o.SetPingTimeout(5 * time.Second)
	o.SetConnectTimeout(5 * time.Second)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(5 * time.Second)
	// Keep trying the first connection too: a demo script may start cdpsim
	// before the broker.
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(time.Second)
	// A Publish never blocks the recorder forever on a stalled connection.
	o.SetWriteTimeout(10 * time.Second)
	// Store: paho's default memory store. It holds our QoS 1 publishes
	// until PUBACK and resends them after a reconnect within the process;
	// durability is the journal's and the change logs' job, and Acks are
	// regenerated when agents re-send.
	o.SetOnConnectHandler(func(mqtt.Client) {
		c.connected.Store(true)
		select {
		case c.onConnect <- struct{}{}:
		default:
		}
	})
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		c.connected.Store(false)
		c.log.Warn("broker connection lost; reconnecting", "err", err)
	})
	return o
}

// subscribeTimeout bounds the wait for a SUBACK.
const subscribeTimeout = 10 * time.Second

// session connects and (re)subscribes after every connect. Subscribing
// again is harmless with a persistent session and needed if the broker lost
// it (a broker restarted without persistence).
func (c *Central) session(ctx context.Context, client mqtt.Client) error {
	filter, err := wire.UplinkFilter(c.cfg.Tenant)
	if err != nil {
		return err
	}
	c.log.Info("connecting to the broker", "broker", c.cfg.Broker, "client_id", c.cfg.ClientID)
	tok := client.Connect()
	select {
	case <-ctx.Done():
		return nil
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("connect to %s: %w", c.cfg.Broker, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.onConnect:
		}
		// A subscribe that fails while the connection stays up (a broker
		// still starting) is tried again: waiting for the next connect
		// could wait forever, deaf to every agent.
		for {
			ok, err := c.subscribe(ctx, client, filter)
			if err != nil {
				return err
			}
			if ok || !client.IsConnectionOpen() || !link.Sleep(ctx, time.Second) {
				break
			}
		}
	}
}

// subscribe subscribes to the uplink; it reports false when the broker did
// not answer (the caller tries again), an error when it refused.
func (c *Central) subscribe(ctx context.Context, client mqtt.Client, filter string) (bool, error) {
	tok := client.Subscribe(filter, 1, c.onMessage)
	if err := link.Wait(ctx, tok, subscribeTimeout); err != nil {
		c.log.Warn("subscribe failed; trying again", "err", err)
		return false, nil
	}
	if qos, ok := tok.(*mqtt.SubscribeToken).Result()[filter]; ok && qos > 2 {
		return false, fmt.Errorf("broker refused the subscription to %s", filter)
	}
	c.log.Info("subscribed to the uplink", "filter", filter)
	c.readyOnce.Do(func() { close(c.ready) })
	return true, nil
}

// publish hands payload to the client at QoS 1, not retained. It returns
// nil when Run is not active or the client refuses the message at once (no
// connection); while paho reconnects it queues the message and sends it
// after.
func (c *Central) publish(topic string, payload []byte) mqtt.Token {
	p := c.client.Load()
	if p == nil {
		return nil
	}
	tok := (*p).Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			return nil
		}
	default:
	}
	return tok
}
