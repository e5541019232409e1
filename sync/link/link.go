// Package link is the MQTT connection to the central CDP: connecting with
// TLS and credentials, reconnecting with capped exponential backoff and
// jitter, publishing at QoS 1, and handing received messages to channels
// owned by their consumers.
//
// It owns the paho client and nothing else. It must never be the source of
// truth for anything: an event is in the outbox until the central's signed
// ack says otherwise, and a change is applied only by the downlink; what the
// link drops (a full consumer channel, a connection lost mid-flight) the
// protocol recovers by re-sending or re-syncing. It must never block inside
// a paho callback.
//
// The invariant its tests protect: 9, offline-first. Publish fails fast
// with ErrOffline when there is no connection, and Run keeps reconnecting
// until its context ends.
package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ErrOffline is returned by Publish when the link is not connected.
var ErrOffline = errors.New("link offline")

// Config configures the connection.
type Config struct {
	// Broker is the broker's URL: tcp://host:1883, or ssl://host:8883 for TLS.
	Broker   string
	ClientID string // stable per agent: the broker keeps its session by it

	Username string
	// PasswordFile holds the password; PasswordEnv names a variable that
	// does. Never inline.
	PasswordFile string
	PasswordEnv  string

	CAFile     string // trust these CAs instead of the system's
	CertFile   string // client certificate, for mutual TLS
	KeyFile    string
	ServerName string // TLS server name, when it differs from the host

	KeepAlive      time.Duration // default 30s
	ConnectTimeout time.Duration // default 10s
	BackoffMin     time.Duration // first reconnect delay, default 500ms
	BackoffMax     time.Duration // cap, default 30s

	// Will is published by the broker if the link dies without a goodbye.
	// It is asked for at every connection, so it can carry a fresh time.
	Will func() Message
	// Goodbye is published before a clean disconnect.
	Goodbye func() Message
}

// Message is an MQTT message.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool

	ack func() // the PUBACK of a received message
}

// Ack acknowledges a received message to the broker. Call it once the
// message is handled: the broker keeps at most its in-flight limit of
// unacknowledged messages on the way to us (mosquitto's
// max_inflight_messages, 20 by default), which is the flow control that
// keeps a four-megabyte snapshot chunk stream from piling up in memory;
// and a message not yet handled when the agent dies is delivered again.
// It is safe to call more than once, and on a message that needs none.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// Validate checks the config, naming the key.
func (c *Config) Validate() error {
	switch {
	case c.Broker == "":
		return errors.New("sync.broker: empty")
	case !strings.HasPrefix(c.Broker, "tcp://") && !strings.HasPrefix(c.Broker, "ssl://") && !strings.HasPrefix(c.Broker, "tls://"):
		return fmt.Errorf("sync.broker %q: want tcp://host:port or ssl://host:port", c.Broker)
	case c.ClientID == "" || len(c.ClientID) > 128:
		return errors.New("sync.client_id: empty or over 128 characters")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("sync.cert_file and sync.key_file: set both or neither")
	case c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax:
		return errors.New("sync.backoff_min is above sync.backoff_max")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.KeepAlive <= 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	return c
}

// State is the link's state for status pages.
type State struct {
	Connected   bool      `json:"connected"`
	Broker      string    `json:"broker"`
	LastConnect time.Time `json:"lastConnect,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	Connects    uint64    `json:"connects"`
	Dropped     uint64    `json:"dropped"` // received messages dropped: a consumer was full
}

type sub struct {
	filter string
	ch     chan<- Message
}

// Link is one MQTT connection, reconnected for as long as Run runs.
type Link struct {
	cfg  Config
	tls  *tls.Config
	pass string
	log  *slog.Logger

	subs      []sub
	onConnect []func()

	mu     sync.Mutex // guards client and state
	client mqtt.Client
	gone   chan struct{} // closed when client's connection ends (see Publish)
	state  State

	connected atomic.Bool
	dropped   atomic.Uint64

	// Bytes handed to consumers and not yet acknowledged, and a signal
	// when an ack makes room (see route).
	unhandled atomic.Int64
	room      chan struct{}
}

// Flow control of received messages. A QoS 1 subscriber is protected by
// the broker's in-flight quota, but brokers differ (mosquitto 2.0.11 does
// not hold to max_inflight_messages) and a snapshot chunk is megabytes: a
// central faster than the agent would queue its whole snapshot in our
// memory. So route waits for room when more than receiveBudget bytes are
// unhandled: TCP then pushes back on the broker. It waits at most
// receiveWait per message, then takes it anyway, so nothing waiting on
// the router (a PUBACK for our own publish) can deadlock with it.
const (
	receiveBudget = 24 << 20
	receiveWait   = 2 * time.Second
)

// New checks cfg and prepares the link; Run connects.
func New(cfg Config, log *slog.Logger) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Link{cfg: cfg, log: log.With("component", "link"), state: State{Broker: redactURL(cfg.Broker)}, room: make(chan struct{}, 1)}
	var err error
	if l.pass, err = password(cfg); err != nil {
		return nil, err
	}
	if strings.HasPrefix(cfg.Broker, "ssl://") || strings.HasPrefix(cfg.Broker, "tls://") || cfg.CAFile != "" {
		if l.tls, err = tlsConfig(cfg); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func password(cfg Config) (string, error) {
	switch {
	case cfg.PasswordFile != "":
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("sync.password_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case cfg.PasswordEnv != "":
		v, ok := os.LookupEnv(cfg.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("sync.password_env: %s is not set", cfg.PasswordEnv)
		}
		return v, nil
	}
	return "", nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sync.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sync.ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sync.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Subscribe routes messages matching filter to ch, at QoS 1, on every
// connection. Call it before Run. A message that finds ch full is dropped
// and counted: the protocol recovers it (a change by re-sync, an ack by
// re-send), and the paho callback must never block.
func (l *Link) Subscribe(filter string, ch chan<- Message) {
	l.subs = append(l.subs, sub{filter: filter, ch: ch})
}

// OnConnect registers fn to run after every connection, once the
// subscriptions are in place. Call it before Run. fn runs on Run's
// goroutine: it must not block for long.
func (l *Link) OnConnect(fn func()) { l.onConnect = append(l.onConnect, fn) }

// State returns the link's state.
func (l *Link) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state
	s.Connected = l.connected.Load()
	s.Dropped = l.dropped.Load()
	return s
}

// Connected reports whether the link is up now.
func (l *Link) Connected() bool { return l.connected.Load() }

// Publish sends payload at QoS 1 and waits for the broker's PUBACK, or
// ctx. It fails at once with ErrOffline when there is no connection, and
// with ErrOffline when the connection ends before the PUBACK. A
// PUBACK only means the broker has it; delivery to the central is proved by
// the central's own signed ack, never by this.
func (l *Link) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	tok, gone, err := l.publish(topic, payload, retained)
	if err != nil {
		return err
	}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	case <-gone:
		// With a persistent session paho keeps the token of a publish in
		// flight for a reconnect of the same client, which never comes:
		// Run makes a new one. The caller re-sends.
		return ErrOffline
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send publishes payload at QoS 1 and returns once paho has it, without
// waiting for the broker's PUBACK. It is for a caller that proves delivery
// otherwise and keeps several messages in flight: the uplink, whose proof
// is the central's signed ack, and whose window would otherwise be one
// message per round trip to the broker (on a link with 50 ms to the
// broker, 20 batches a second, whatever the window). Messages sent in turn
// leave in that order on the one connection. It fails at once with
// ErrOffline when there is no connection; a publish lost later (the
// connection ends before its PUBACK) is the connection's loss, logged as
// such, and the caller's own timeout or the reconnect re-sends it.
func (l *Link) Send(topic string, payload []byte) error {
	tok, _, err := l.publish(topic, payload, false)
	if err != nil {
		return err
	}
	select {
	case <-tok.Done():
		return tok.Error() // acked already, or refused before it left
	default:
		return nil
	}
}

// publish hands payload to the current connection's client.
func (l *Link) publish(topic string, payload []byte, retained bool) (mqtt.Token, <-chan struct{}, error) {
	l.mu.Lock()
	c, gone := l.client, l.gone
	l.mu.Unlock()
	if c == nil || gone == nil || !l.connected.Load() {
		return nil, nil, ErrOffline
	}
	return c.Publish(topic, 1, retained, payload), gone, nil
}

// Run connects and keeps the link up until ctx ends, then says goodbye and
// disconnects. It returns nil when ctx is cancelled.
func (l *Link) Run(ctx context.Context) error {
	backoff := l.cfg.BackoffMin
	for ctx.Err() == nil {
		lost, err := l.connect(ctx)
		if err != nil {
			l.noteError(err)
			l.log.Debug("connect failed", "err", err, "retry_in", backoff)
			if !Sleep(ctx, jitter(backoff)) {
				break
			}
			backoff = min(2*backoff, l.cfg.BackoffMax)
			continue
		}
		backoff = l.cfg.BackoffMin
		select {
		case err := <-lost:
			l.connected.Store(false)
			l.endConnection()
			l.noteError(err)
			l.log.Warn("connection lost", "err", err)
		case <-ctx.Done():
		}
	}
	l.disconnect()
	return nil
}

// connect makes a fresh paho client (so the will can carry a fresh time)
// and connects it. The options, deliberately:
//   - CleanSession false, a stable ClientID: the broker keeps the session
//     and queues QoS 1 changes and acks for us while we are away.
//   - AutoReconnect and ConnectRetry off: Run reconnects, with jitter, so a
//     fleet of thousands of stores does not reconnect in lockstep after a
//     broker restart.
//   - OrderMatters true: callbacks run one at a time, in arrival order; ours
//     only hand the message to a channel, so they never block.
//   - The default in-memory store: unacked QoS 1 publishes may be re-sent
//     by paho on a reconnect of the same client, which is harmless (the
//     central drops repeated messageIds); durability is the outbox's job.
//   - MaxResumePubInFlight bounds what a resumed session floods a thin link
//     with. Our own publishes in flight are bounded by their callers: the
//     uplink's window of batches (see Send), one presence message.
//   - AutoAckDisabled: a message is acknowledged when its consumer has
//     handled it, never on arrival (see Message.Ack).
func (l *Link) connect(ctx context.Context) (<-chan error, error) {
	lost := make(chan error, 1)
	o := mqtt.NewClientOptions().
		AddBroker(l.cfg.Broker).
		SetClientID(l.cfg.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(l.cfg.KeepAlive / 2).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetWriteTimeout(l.cfg.ConnectTimeout).
		SetMaxResumePubInFlight(16).
		SetAutoAckDisabled(true). // consumers Ack once handled: see Message.Ack
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if l.cfg.Username != "" {
		o.SetUsername(l.cfg.Username).SetPassword(l.pass)
	}
	if l.tls != nil {
		o.SetTLSConfig(l.tls)
	}
	if l.cfg.Will != nil {
		w := l.cfg.Will()
		o.SetBinaryWill(w.Topic, w.Payload, 1, w.Retained)
	}
	c := mqtt.NewClient(o)
	if err := Wait(ctx, c.Connect(), l.cfg.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("connect %s: %w", redactURL(l.cfg.Broker), err)
	}
	for _, s := range l.subs {
		if err := Wait(ctx, c.Subscribe(s.filter, 1, l.route(s.ch)), l.cfg.ConnectTimeout); err != nil {
			c.Disconnect(0)
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	l.mu.Lock()
	l.client, l.gone = c, make(chan struct{})
	l.state.LastConnect = time.Now()
	l.state.Connects++
	l.mu.Unlock()
	l.connected.Store(true)
	l.log.Info("connected", "broker", redactURL(l.cfg.Broker))
	for _, fn := range l.onConnect {
		fn()
	}
	return lost, nil
}

// route is the paho callback of a subscription: wait for room (see
// receiveBudget), hand over, never do the work here. A message the
// consumer's channel has no place for is acknowledged at once and counted,
// or it would hold one of the broker's in-flight places for us until the
// connection ends.
func (l *Link) route(ch chan<- Message) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		// The payload is not copied: paho hands each message its own
		// buffer and never reuses it (a snapshot chunk is megabytes).
		size := int64(len(m.Payload()))
		l.waitRoom(size)
		l.unhandled.Add(size)
		var once sync.Once
		msg := Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained(),
			ack: func() {
				once.Do(func() {
					l.unhandled.Add(-size)
					select {
					case l.room <- struct{}{}:
					default:
					}
					m.Ack()
				})
			}}
		select {
		case ch <- msg:
		default:
			l.dropped.Add(1)
			msg.Ack()
		}
	}
}

// waitRoom waits, at most receiveWait, until size more bytes fit in the
// budget. Something always fits when nothing is unhandled.
func (l *Link) waitRoom(size int64) {
	var deadline <-chan time.Time
	for {
		u := l.unhandled.Load()
		if u == 0 || u+size <= receiveBudget {
			return
		}
		if deadline == nil {
			t := time.NewTimer(receiveWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-l.room:
		case <-deadline:
			l.log.Warn("receiving faster than handling: over the receive budget", "unhandled_bytes", u)
			return
		}
	}
}

// endConnection wakes every Publish waiting on the connection that ended.
func (l *Link) endConnection() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		close(l.gone)
		l.gone = nil
	}
}

func (l *Link) disconnect() {
	l.mu.Lock()
	c := l.client
	l.client = nil
	l.mu.Unlock()
	defer l.endConnection()
	if c == nil {
		return
	}
	if l.cfg.Goodbye != nil && l.connected.Load() {
		g := l.cfg.Goodbye()
		tok := c.Publish(g.Topic, 1, g.Retained, g.Payload)
		tok.WaitTimeout(2 * time.Second)
	}
	l.connected.Store(false)
	c.Disconnect(250)
}

func (l *Link) noteError(err error) {
	l.mu.Lock()
	l.state.LastError, l.state.LastErrorAt = err.Error(), time.Now()
	l.mu.Unlock()
}

// Wait waits for a paho token, ctx or d, whichever comes first: the one
// way this repo waits on paho (the link and the reference central).
func Wait(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("no answer from the broker in time")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter spreads a delay over [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redactURL drops user info from a broker URL before it is logged or shown.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}
