package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const (
	// inlineClientID is mochi's id for the agent's own client; no device
	// may take it.
	inlineClientID = mqtt.InlineClientId
	// maxPacket bounds an MQTT packet the broker reads. It is above
	// MaxPayload so that a payload slightly too large is still answered
	// with too_large; past it the broker drops the connection unread.
	maxPacket = 4 * MaxPayload
	// sessionExpiry bounds how long the broker keeps the session of a
	// device that asked for a persistent one (seconds).
	sessionExpiry = 3600
)

// runEmbedded runs the broker inside the agent, with the agent's own
// inline client subscribed to every device's request topics.
func (b *Bus) runEmbedded(ctx context.Context) error {
	srv := mqtt.New(&mqtt.Options{
		InlineClient:           true,
		Capabilities:           capabilities(),
		Logger:                 slog.New(&brokerLog{next: b.log.Handler(), minLevel: slog.LevelWarn, isDevice: b.isDevice}),
		SysTopicResendInterval: 60, // $SYS is for no one here: the ACL refuses it to every device
	})
	if err := srv.AddHook(&brokerHook{b: b}, nil); err != nil {
		return fmt.Errorf("bus: broker hook: %w", err)
	}
	ln, err := b.listen()
	if err != nil {
		return err
	}
	if err := srv.AddListener(listeners.NewNet("devices", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("bus: broker listener: %w", err)
	}
	for i, f := range b.topics.filters() {
		// Called in the publishing device's connection goroutine: enqueue
		// never blocks it.
		handler := func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			b.enqueue(pk.TopicName, pk.Payload, pk.Origin)
		}
		if err := srv.Subscribe(f, i+1, handler); err != nil {
			srv.Close()
			return fmt.Errorf("bus: subscribe %s: %w", f, err)
		}
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("bus: start broker: %w", err)
	}
	addr := ln.Addr()
	b.addr.Store(&addr)
	b.stats.connected.Store(true)
	b.setReady()
	b.log.Info("broker listening", "address", addr.String(), "tls", b.tls != nil, "devices", len(b.devices))

	b.serve(ctx, inlineTransport{srv})
	// Once the broker is closed every device is disconnected and every
	// connection goroutine has returned, so no callback runs after it;
	// what is still queued then will never be answered.
	b.stats.connected.Store(false)
	closeBroker(srv)
	b.drain()
	b.log.Info("broker stopped")
	return nil
}

// closeBroker stops the broker and waits for its connection goroutines.
// mochi's own Close disconnects clients through Clients.GetByListener,
// which takes the clients' read lock twice and deadlocks when a device
// disconnects in between (mochi v2.7.9, seen in our tests). So the
// listener is closed first, with a closer that takes the lock once; Close
// then finds it closed and has no client left to disconnect.
func closeBroker(srv *mqtt.Server) {
	srv.Listeners.CloseAll(func(listener string) {
		for _, cl := range srv.Clients.GetAll() {
			if cl.Net.Listener == listener && !cl.Net.Inline && !cl.Closed() {
				srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
	srv.Close()
}

// capabilities are mochi's defaults, narrowed to what devices need.
func capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumPacketSize = maxPacket
	c.MaximumSessionExpiryInterval = sessionExpiry
	c.MaximumQos = 1 // requests and answers are QoS 0 or 1
	// A retained request would be replayed to the agent's subscription at
	// the next start, and would keep a customer's identifier in the
	// broker's memory: the broker retains nothing.
	c.RetainAvailable = 0
	// The ACL allows each device its own topics by exact name: no
	// wildcards, no shared subscriptions, and no topic aliases, which
	// would let a PUBLISH reach a topic not named in it.
	c.WildcardSubAvailable = 0
	c.SharedSubAvailable = 0
	c.TopicAliasMaximum = 0
	return c
}

func (b *Bus) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", b.cfg.Embedded.Listen)
	if err != nil {
		return nil, fmt.Errorf("bus: listen on %s (bus.embedded.listen): %w", b.cfg.Embedded.Listen, err)
	}
	if b.tls != nil {
		ln = tls.NewListener(ln, b.tls)
	}
	return ln, nil
}

func (b *Bus) isDevice(id string) bool { _, ok := b.devices[id]; return ok }

// inlineTransport answers through mochi's inline client, which bypasses
// the ACL; the broker still checks, per subscriber, that a device may read
// the topic before delivering.
type inlineTransport struct{ srv *mqtt.Server }

func (t inlineTransport) publish(topic string, payload []byte) error {
	return t.srv.Publish(topic, payload, false, 1)
}

// brokerHook authenticates devices and confines each to its own topics.
// Its methods run in mochi's connection goroutines: they read only what
// New built and count with atomics, so they never wait.
type brokerHook struct {
	mqtt.HookBase
	b *Bus
}

func (h *brokerHook) ID() string { return "storeagent-devices" }

func (h *brokerHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck,
		mqtt.OnSessionEstablished,
		mqtt.OnDisconnect,
	}, []byte{b})
}

// dummy is compared against when the username is unknown, so that a
// wrong username takes as long as a wrong password.
var dummy = digest(sha256.Sum256([]byte("no such device")))

// OnConnectAuthenticate lets a device in with its username and password,
// compared in constant time, and only under its own id as client id: a
// device that could take another's client id would take over its session.
// A will is refused: the broker publishes wills without an ACL check.
func (h *brokerHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	d, known := h.b.byUser[string(pk.Connect.Username)]
	want := dummy
	if known {
		want = d.password
	}
	got := digest(sha256.Sum256(pk.Connect.Password))
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	reason := ""
	switch {
	case !known || !match || !pk.Connect.PasswordFlag:
		reason = "bad credentials"
	case pk.Connect.ClientIdentifier != d.ID:
		reason = "client id is not the device id"
	case pk.Connect.WillFlag:
		reason = "will not allowed"
	default:
		return true
	}
	h.b.stats.authFailures.Add(1)
	if known {
		h.b.log.Warn("device refused", "device", d.ID, "reason", reason)
	} else {
		h.b.log.Warn("connection refused", "reason", reason, "remote", cl.Net.Remote)
	}
	return false
}

// OnACLCheck lets a device publish to its own request topics that its kind
// may use, and read its own answer topics, by exact name.
func (h *brokerHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	d, ok := h.b.devices[cl.ID]
	if ok && h.b.allowed(d, topic, write) {
		return true
	}
	h.b.stats.denied.Add(1)
	access := "subscribe"
	if write {
		access = "publish"
	}
	// The topic is not logged: it is whatever the device sent.
	h.b.log.Warn("device denied", "device", deviceOrUnknown(d), "access", access)
	return false
}

func (b *Bus) allowed(d *device, topic string, write bool) bool {
	for k := range numTopics {
		if !d.Kind.may(k) {
			continue
		}
		if write && topic == b.topics.request(d.ID, k) {
			return true
		}
		if !write && k.answered() && topic == b.topics.reply(d.ID, k) {
			return true
		}
	}
	return false
}

func deviceOrUnknown(d *device) string {
	if d == nil {
		return "unknown"
	}
	return d.ID
}

func (h *brokerHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	n := h.b.stats.devices.Add(1)
	h.b.log.Info("device connected", "device", cl.ID, "connections", n)
}

func (h *brokerHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	n := h.b.stats.devices.Add(-1)
	h.b.log.Info("device disconnected", "device", cl.ID, "connections", n, "err", err)
}
