package link

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/sync/brokertest"
)

// Over a road with a 200 ms round trip to the broker, Publish takes at
// least the round trip (it waits for the PUBACK) and Send does not: eight
// Sends leave before the first PUBACK could be back, and arrive in the
// order they were sent.
func TestSendKeepsMessagesInFlight(t *testing.T) {
	const oneWay = 100 * time.Millisecond
	broker := brokertest.Start(t)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("watcher"))
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	got := make(chan string, 100)
	if tok := sub.Subscribe("road/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	l, err := New(Config{Broker: broker.Delay(oneWay), ClientID: "store"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Send("road/x", []byte("early")); err != ErrOffline {
		t.Fatalf("Send before the link is up: %v, want ErrOffline", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !l.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("link not connected through the road after 10s")
		}
	}

	start := time.Now()
	if err := l.Publish(ctx, "road/p", []byte("p"), false); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*oneWay {
		t.Fatalf("Publish returned in %v, before a PUBACK could cross a %v round trip", d, 2*oneWay)
	}
	if m := <-got; m != "p" {
		t.Fatalf("got %q, want p", m)
	}

	const n = 8
	start = time.Now()
	for i := range n {
		if err := l.Send("road/s", fmt.Appendf(nil, "s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d >= oneWay {
		t.Fatalf("%d Sends took %v: they waited for PUBACKs (one way is %v)", n, d, oneWay)
	}
	for i := range n {
		select {
		case m := <-got:
			if want := fmt.Sprintf("s%d", i); m != want {
				t.Fatalf("message %d is %q, want %q: out of order", i, m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d messages", i, n)
		}
	}
}
