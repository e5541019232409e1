package main

import (
	"fmt"
	"log/slog"
	"net"
	"slices"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// broker is the embedded MQTT broker between the store and the central:
// the store's WAN link. Stop and Start again make the link go down and
// come back, on the same address. It keeps no state across a restart, like
// a broker run without persistence: the central resubscribes at every
// connect and the agent re-sends what was not acknowledged.
//
// It is owned by run's goroutine: Start and Stop are never called at once.
type broker struct {
	addr string // 127.0.0.1:PORT, chosen at the first Start
	log  *slog.Logger
	srv  *mochi.Server // nil while stopped
}

// URL is the broker's address for paho.
func (b *broker) URL() string { return "tcp://" + b.addr }

// Start listens (on a free loopback port the first time, on the same one
// after) and serves every client: the demo's broker authenticates no one.
func (b *broker) Start() error {
	if b.srv != nil {
		return nil
	}
	addr := b.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	b.addr = ln.Addr().String()
	srv := mochi.New(&mochi.Options{Logger: b.log, InlineClient: false})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		ln.Close()
		return fmt.Errorf("broker: auth hook: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("wan", ln)); err != nil {
		ln.Close()
		return fmt.Errorf("broker: listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.srv = srv
	return nil
}

// Stop closes the broker and every connection through it.
//
// mochi's own Close disconnects clients through Clients.GetByListener,
// which can deadlock when a client disconnects meanwhile (mochi v2.7.9; see
// devices/bus closeBroker): the listener is closed first, with a closer
// that takes the clients' lock once.
func (b *broker) Stop() {
	srv := b.srv
	if srv == nil {
		return
	}
	b.srv = nil
	srv.Listeners.CloseAll(func(listener string) {
		for _, cl := range srv.Clients.GetAll() {
			if cl.Net.Listener == listener && !cl.Net.Inline && !cl.Closed() {
				srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
	srv.Close()
}

// allowAll lets every client connect and use every topic: the demo's
// broker stands for a store's WAN, not for its security. (mochi's own
// hooks/auth would pull in a YAML module the project does not need.)
type allowAll struct{ mochi.HookBase }

func (*allowAll) ID() string { return "storedemo-allow-all" }

func (*allowAll) Provides(b byte) bool {
	return slices.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, b)
}

func (*allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool { return true }
