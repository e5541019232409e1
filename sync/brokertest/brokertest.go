// Package brokertest starts a real mosquitto for tests: the one helper
// through which every test that needs a broker gets one (sync/central,
// sync/cdp, cmd/cdpsim, devices/bus, the daemon's).
//
// A broker listens on a free loopback port with a minimal configuration
// written into t.TempDir() (listener on 127.0.0.1, anonymous clients, no
// persistence) and is stopped by t.Cleanup. Without mosquitto at
// /usr/sbin/mosquitto (or on PATH) the test is skipped with a message that
// says how to install it, unless the environment variable CI is set: then
// the test fails, because CI must run the MQTT tests.
//
// It must never be imported by non-test code.
package brokertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// DefaultPath is where Debian's mosquitto package installs the broker.
const DefaultPath = "/usr/sbin/mosquitto"

// Broker is a running mosquitto.
type Broker struct {
	// URL is the broker's address for paho: tcp://127.0.0.1:PORT.
	URL string
	// Addr is 127.0.0.1:PORT; Port the port alone.
	Addr string
	Port int

	t    testing.TB
	bin  string
	conf string
	addr string

	mu   sync.Mutex // guards cmd, done and out
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// Start starts a broker for t. extra lines are appended to the minimal
// configuration, right after the listener line, so they may set listener
// options: "certfile ...", "keyfile ..." for TLS, or general ones such as
// "set_tcp_nodelay true". Run as root, mosquitto keeps root (user root) so
// it can read files the test wrote.
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	bin := DefaultPath
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("mosquitto not found at %s or on PATH, and CI is set: the MQTT tests must run", DefaultPath)
			}
			t.Skipf("mosquitto not found at %s or on PATH: install it (apt-get install mosquitto) to run the MQTT tests", DefaultPath)
		}
	}
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	text := fmt.Sprintf("listener %d 127.0.0.1\n", port)
	for _, l := range extra {
		text += l + "\n"
	}
	// A large queue for persistent sessions, so fault tests that stop a
	// client mid-stream lose nothing to the broker's default limit of 1000.
	text += "allow_anonymous true\npersistence false\nmax_queued_messages 100000\n"
	if os.Geteuid() == 0 {
		text += "user root\n"
	}
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Broker{URL: "tcp://" + addr, Addr: addr, Port: port, t: t, bin: bin, conf: conf, addr: addr}
	b.start()
	t.Cleanup(b.Stop)
	return b
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs mosquitto and waits until its port accepts connections.
func (b *Broker) start() {
	b.t.Helper()
	out := &bytes.Buffer{}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.mu.Lock()
	b.cmd, b.done, b.out = cmd, done, out
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			b.t.Fatalf("mosquitto exited at start: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto does not listen on %s after 10s: %s", b.addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the broker (SIGTERM, then SIGKILL after 5 s). Clients lose
// their connection and, with no persistence, the broker forgets every
// session. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart stops the broker if it runs and starts it again on the same
// port, for fault tests ("broker stopped and restarted mid-drain").
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}
