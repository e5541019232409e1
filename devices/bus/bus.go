package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storeagent/storeagent/agent"
)

// Core is the subset of *agent.Agent the bus calls: identification,
// capture and consent. Nothing else of the agent is reachable from a device.
type Core interface {
	Identify(ctx context.Context, req agent.IdentifyRequest) (agent.Identity, error)
	Capture(ctx context.Context, req agent.CaptureRequest) (agent.CaptureResult, error)
	SetConsent(ctx context.Context, req agent.ConsentRequest) (agent.ConsentResult, error)
}

var _ Core = (*agent.Agent)(nil)

// ErrRunning is returned by Run when the Bus is already running.
var ErrRunning = errors.New("bus already running")

// device is a configured device, as the bus uses it.
type device struct {
	DeviceConfig
	password digest // embedded mode: SHA-256 of the password
}

// message is one request handed from a broker callback to a worker.
type message struct {
	device  string
	kind    topicKind
	payload []byte // nil when size is over MaxPayload: only the size is kept
	size    int
}

// transport publishes answers: the embedded broker's inline client, or the
// paho client of the store's broker.
type transport interface {
	publish(topic string, payload []byte) error
}

// Bus is the device MQTT bus: it receives the devices' requests, asks the
// agent core, and answers each device on its own reply topic.
type Bus struct {
	cfg    Config
	core   Core
	log    *slog.Logger
	topics topics

	devices  map[string]*device // by id; read-only after New
	byUser   map[string]*device // by username, embedded mode; read-only after New
	tls      *tls.Config        // embedded: the listener's; external: the client's, for a TLS URL
	password string             // external: the agent's password

	queues  []chan message // one per worker; never closed, so a late callback cannot panic
	stats   *counters
	running atomic.Bool
	ready   chan struct{} // closed once serving
	once    sync.Once     // closes ready
	addr    atomic.Pointer[net.Addr]
}

// New returns a Bus for cfg, with zero fields defaulted, over the agent
// core. It fails with the errors of cfg.Validate, and with a *ConfigError
// naming the key when a password file, environment variable, certificate or
// CA file cannot be read. A nil log discards logs.
func New(cfg Config, core Core, log *slog.Logger) (*Bus, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if core == nil {
		return nil, errors.New("bus: nil agent core")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		cfg:     cfg,
		core:    core,
		log:     log.With("component", "bus"),
		topics:  newTopics(cfg.StoreID),
		devices: make(map[string]*device, len(cfg.Devices)),
		byUser:  make(map[string]*device, len(cfg.Devices)),
		queues:  make([]chan message, cfg.Workers),
		stats:   newCounters(),
		ready:   make(chan struct{}),
	}
	for i := range b.queues {
		b.queues[i] = make(chan message, cfg.QueueLen)
	}
	if err := b.loadSecrets(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Bus) loadSecrets() error {
	var errs []error
	for i, dc := range b.cfg.Devices {
		d := &device{DeviceConfig: dc}
		if b.cfg.Mode == ModeEmbedded {
			var err error
			if d.password, err = devicePassword(fmt.Sprintf("bus.device[%d].", i), dc); err != nil {
				errs = append(errs, err)
			}
			b.byUser[d.Username] = d
		}
		b.devices[d.ID] = d
	}
	var err error
	switch ext := b.cfg.External; {
	case b.cfg.Mode == ModeEmbedded:
		b.tls, err = serverTLS(b.cfg.Embedded)
	case brokerSchemes[schemeOf(ext.Broker)]:
		b.tls, err = clientTLS(ext)
	}
	errs = append(errs, err)
	if b.cfg.Mode == ModeExternal && b.cfg.External.PasswordFile != "" {
		b.password, err = password("bus.external.password_file", b.cfg.External.PasswordFile)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters. It is safe to call from any
// goroutine, while Run runs or not.
func (b *Bus) Stats() Stats { return b.stats.snapshot(b.cfg.Mode) }

// Ready is closed once the bus serves: the embedded broker listens, or the
// agent first connected and subscribed to the store's broker.
func (b *Bus) Ready() <-chan struct{} { return b.ready }

// Addr returns the embedded broker's listening address once Ready is
// closed (the port it picked, when Listen's port is 0), else nil.
func (b *Bus) Addr() net.Addr {
	if p := b.addr.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *Bus) setReady() { b.once.Do(func() { close(b.ready) }) }

// Run serves the bus until ctx is cancelled.
//
//  1. Run returns nil once ctx is cancelled, after every goroutine it
//     started has stopped and the broker (embedded) or the connection
//     (external) is closed; cancellation is the only way to stop it. It
//     returns ErrRunning at once if the Bus is already running, and an
//     error if the embedded broker cannot listen.
//  2. In external mode a broker that is down, at start or later, is
//     retried with capped exponential backoff for as long as ctx lives:
//     the agent works offline and the devices come back with the broker.
//  3. Broker callbacks never wait: each request goes to the queue of the
//     worker of its device (Config.Workers, Config.QueueLen), and is
//     dropped and counted when that queue is full. A device's requests are
//     answered in the order they arrived.
//  4. An event or a consent change is acknowledged only after the agent
//     made it durable; a request in progress at cancellation is answered
//     with CodeUnavailable, if the broker still takes the answer.
func (b *Bus) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer b.running.Store(false)
	if b.cfg.Mode == ModeExternal {
		return b.runExternal(ctx)
	}
	return b.runEmbedded(ctx)
}

// serve runs the workers until ctx ends, and waits for them.
func (b *Bus) serve(ctx context.Context, tr transport) {
	var wg sync.WaitGroup
	for _, q := range b.queues {
		wg.Go(func() { b.work(ctx, q, tr) })
	}
	wg.Wait()
}

// drain counts what is left in the queues once the broker stopped calling
// back, as dropped.
func (b *Bus) drain() {
	for _, q := range b.queues {
		for n := len(q); n > 0; n-- {
			<-q
			b.stats.dropped.Add(1)
		}
	}
}

// enqueue is called from broker callbacks, one per request. It never
// blocks: a request for a full queue is dropped and counted. origin is the
// client the broker says published it, or "" when the broker does not say.
func (b *Bus) enqueue(topic string, payload []byte, origin string) {
	id, kind, ok := b.topics.parse(topic)
	if !ok || (origin != "" && origin != id) {
		b.stats.reject(CodeBadTopic)
		return
	}
	b.stats.messages[kind].Add(1)
	// The payload is not copied: mochi and paho hand each message a slice
	// of its own, which nothing writes to afterwards.
	m := message{device: id, kind: kind, payload: payload, size: len(payload)}
	if len(payload) > MaxPayload {
		m.payload = nil // answered too_large; not worth its memory in the queue
	}
	select {
	case b.queueOf(id) <- m:
	default:
		b.stats.dropped.Add(1)
	}
}

// queueOf picks the worker of a device, always the same one.
func (b *Bus) queueOf(device string) chan message {
	h := fnv.New32a()
	h.Write([]byte(device))
	return b.queues[h.Sum32()%uint32(len(b.queues))]
}

func (b *Bus) work(ctx context.Context, q <-chan message, tr transport) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-q:
			b.process(ctx, m, tr)
		}
	}
}

// process answers one request and publishes the answer.
func (b *Bus) process(ctx context.Context, m message, tr transport) {
	start := time.Now()
	answer, rej := b.answer(ctx, m)
	outcome := "ok"
	if rej != nil {
		b.stats.reject(rej.code)
		outcome = string(rej.code)
	}
	log := b.log.With("device", m.device, "topic", m.kind.String(), "outcome", outcome)
	if answer != nil && m.kind.answered() {
		if err := tr.publish(b.topics.reply(m.device, m.kind), answer); err != nil {
			b.stats.answerErrors.Add(1)
			log.Warn("answer not delivered", "err", err)
			return
		}
		b.stats.answers.Add(1)
	}
	log.Debug("request handled", "ms", time.Since(start).Milliseconds())
}
