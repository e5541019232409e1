package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/storeagent/storeagent/devices/internal/backoff"
)

const (
	// connectTimeout bounds one attempt to reach the store's broker,
	// TCP and TLS handshake and CONNACK included.
	connectTimeout = 5 * time.Second
	// opTimeout bounds waiting for a SUBACK or a PUBACK.
	opTimeout = 5 * time.Second
	// reconnectMin and reconnectMax bound the delay between attempts.
	reconnectMin = 250 * time.Millisecond
	reconnectMax = 30 * time.Second
	// quiesce is how long Disconnect lets in-flight work finish (ms).
	quiesce = 250
	qos     = 1 // requests and answers: at least once
)

// runExternal connects the agent to the store's broker as a client and
// keeps it connected, with backoff, until ctx ends.
func (b *Bus) runExternal(ctx context.Context) error {
	lost := make(chan error, 1)
	client := paho.NewClient(b.pahoOptions(ctx, lost))
	tr := &pahoTransport{client: client}

	var wg sync.WaitGroup
	wg.Go(func() { b.serve(ctx, tr) })
	b.keepConnected(ctx, client, lost)
	// ctx is done: the workers first, so that none is publishing while
	// the client goes; then what paho handed over meanwhile is counted.
	wg.Wait()
	b.stats.connected.Store(false)
	client.Disconnect(quiesce)
	b.drain()
	b.log.Info("bus stopped")
	return nil
}

// pahoOptions chooses paho's behaviour. lost receives why a connection
// ended; the callbacks below never block. Connections are opened by dial,
// bound to ctx.
func (b *Bus) pahoOptions(ctx context.Context, lost chan<- error) *paho.ClientOptions {
	ext := b.cfg.External
	o := paho.NewClientOptions().
		AddBroker(ext.Broker).
		SetClientID(ext.ClientID).
		SetUsername(ext.Username).
		SetPassword(b.password).
		SetTLSConfig(b.tls).
		// 3.1.1, stated: paho would otherwise retry a refused CONNECT as
		// 3.1, and a wrong password would be tried twice.
		SetProtocolVersion(4).
		// Clean session: the broker keeps nothing for the agent while it
		// is away. Requests sent meanwhile are stale (a speaker stopped
		// waiting long ago); devices retry what matters, and an event is
		// acknowledged only once durable, so nothing acknowledged is lost.
		// The price is to subscribe again after every connect, which
		// keepConnected does.
		SetCleanSession(true).
		// Order matters: paho calls the handler from one goroutine, in
		// arrival order, so a kiosk's events reach its worker in the order
		// it sent them. The handler must then never block, and it does
		// not: it only hands the message to a queue.
		SetOrderMatters(true).
		// No auto reconnect and no connect retry: paho would retry in
		// goroutines of its own that sleep through a cancellation, and
		// Run must stop them all when it returns. keepConnected retries
		// instead, with backoff, and stops at once on cancel.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			return b.dial(ctx, u)
		}).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		// A publish never waits longer than this for room to send.
		SetWriteTimeout(opTimeout).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	return o
}

// dial opens the connection to the broker. It is bound to ctx: a
// cancellation ends a dial, a TLS handshake or a wait for CONNACK at once,
// where paho would wait out its connect timeout in a goroutine that Run
// could not wait for.
func (b *Bus) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	d := &net.Dialer{Timeout: connectTimeout}
	var (
		conn net.Conn
		err  error
	)
	if brokerSchemes[u.Scheme] {
		conn, err = (&tls.Dialer{NetDialer: d, Config: b.tls}).DialContext(ctx, "tcp", u.Host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	return &ctxConn{Conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() })}, nil
}

// ctxConn is a connection closed when its context ends.
type ctxConn struct {
	net.Conn
	stop func() bool // unregisters the close on cancel
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// keepConnected connects and subscribes, then waits for the connection
// to be lost and starts again, until ctx ends.
func (b *Bus) keepConnected(ctx context.Context, client paho.Client, lost <-chan error) {
	bo := backoff.Backoff{Min: reconnectMin, Max: reconnectMax}
	connectedOnce := false
	for {
		select {
		case <-lost: // from a connection that failed before it was up
		default:
		}
		err := b.connect(ctx, client)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			delay := bo.Next()
			b.log.Warn("store broker unreachable", "err", err, "retry_in", delay.Round(time.Millisecond).String())
			if !backoff.Sleep(ctx, delay) {
				return
			}
			continue
		}
		bo.Reset()
		if connectedOnce {
			b.stats.reconnects.Add(1)
		}
		connectedOnce = true
		b.stats.connected.Store(true)
		b.setReady()
		b.log.Info("connected to store broker", "broker", b.cfg.External.Broker)
		select {
		case <-ctx.Done():
			return
		case err := <-lost:
			b.stats.connected.Store(false)
			b.log.Warn("store broker connection lost", "err", err)
		}
	}
}

// connect makes one attempt: CONNECT, then SUBSCRIBE to every device's
// request topics. A subscription the broker refuses (its ACL) is an error:
// the bus would otherwise look connected and hear nothing.
func (b *Bus) connect(ctx context.Context, client paho.Client) error {
	if err := wait(ctx, client.Connect(), connectTimeout+time.Second); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	filters := make(map[string]byte, numTopics)
	for _, f := range b.topics.filters() {
		filters[f] = qos
	}
	tok := client.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			// A retained request is one published before the agent
			// subscribed: stale, and not answered.
			b.stats.reject(CodeRetained)
			return
		}
		b.enqueue(m.Topic(), m.Payload(), "")
	})
	err := wait(ctx, tok, opTimeout)
	if err == nil {
		for f, granted := range tok.(*paho.SubscribeToken).Result() {
			if granted > qos {
				err = fmt.Errorf("broker refused subscription to %s (code %#x)", f, granted)
			}
		}
	}
	if err != nil {
		client.Disconnect(0)
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// wait waits for a paho token, ctx or timeout, whichever comes first.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("timed out")
	}
}

// pahoTransport answers through the agent's client of the store's broker.
type pahoTransport struct{ client paho.Client }

// publish waits for the PUBACK, so that a failure is counted; it runs in a
// worker, never in a paho callback.
func (t *pahoTransport) publish(topic string, payload []byte) error {
	tok := t.client.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(opTimeout) {
		return errors.New("no puback in time")
	}
	return tok.Error()
}

func schemeOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme
}
