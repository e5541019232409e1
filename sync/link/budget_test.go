package link

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// Past the receive budget, route waits until a consumer's ack makes room,
// and no longer than receiveWait: flow control without a deadlock.
func TestReceiveBudgetWaitsForRoom(t *testing.T) {
	l, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "t"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l.waitRoom(receiveBudget) // nothing unhandled: anything fits, at once
	l.unhandled.Store(receiveBudget - 10)
	done := make(chan time.Duration)
	start := time.Now()
	go func() { l.waitRoom(100); done <- time.Since(start) }()
	select {
	case <-done:
		t.Fatal("took a message past the budget without waiting")
	case <-time.After(200 * time.Millisecond):
	}
	l.unhandled.Add(-1000) // a consumer acked
	l.room <- struct{}{}
	if d := <-done; d > receiveWait {
		t.Fatalf("waited %v after room was made", d)
	}
	l.unhandled.Store(receiveBudget)
	start = time.Now()
	l.waitRoom(1)
	if d := time.Since(start); d < receiveWait || d > receiveWait+time.Second {
		t.Fatalf("waited %v with no room ever made, want about %v", d, receiveWait)
	}
}
