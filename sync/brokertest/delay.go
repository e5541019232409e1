package brokertest

import (
	"net"
	"sync"
	"time"
)

// Delay puts a long road between a client and the broker: a TCP proxy on
// a free loopback port to b that holds every byte for oneWay in each
// direction, as the link from a store to a broker in the cloud would (a
// round trip of 2*oneWay; latency only, no loss, no bandwidth cap). It
// returns the proxy's URL for paho. Connections are made through it as
// long as the test runs; a broker restart ends them as it would the
// direct ones.
func (b *Broker) Delay(oneWay time.Duration) string {
	b.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	b.t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			broker, err := net.Dial("tcp", b.addr)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, broker)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); delayPipe(broker, client, oneWay) }()
			go func() { defer wg.Done(); delayPipe(client, broker, oneWay) }()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// delayPipe copies src to dst, each read delivered oneWay after it
// arrived, in order. When either side ends, both are closed.
func delayPipe(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	q := make(chan chunk, 1<<14)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		for range q { // let the reader finish
		}
	}()
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(oneWay), data: buf[:n]}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}
