// Package brokertest starts a real mosquitto broker for tests: on a free
// loopback port, with its own config in t.TempDir(), stopped by t.Cleanup.
// It is the one place that knows how to run a test broker.
//
// When mosquitto is not installed the test is skipped with a message saying
// so, except under CI (the environment variable CI is set), where a missing
// broker fails the test: CI must never skip its point.
package brokertest

import (
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

// Broker is a running mosquitto.
type Broker struct {
	t    testing.TB
	bin  string
	conf string
	Port int
	// Addr is host:port; URL is tcp://host:port for paho.
	Addr string
	URL  string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *os.File
}

// Path finds mosquitto, or skips (fails under CI).
func Path(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("mosquitto not installed; CI must install it (.ci/run)")
	}
	t.Skip("mosquitto not installed (apt-get install -y mosquitto): skipping broker test")
	return ""
}

// Start starts a broker with extra config lines appended to a minimal one
// (anonymous access, no persistence, large messages allowed).
func Start(t testing.TB, extra ...string) *Broker {
	t.Helper()
	b := &Broker{t: t, bin: Path(t), Port: freePort(t)}
	b.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port))
	b.URL = "tcp://" + b.Addr
	dir := t.TempDir()
	b.conf = filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nmax_inflight_messages 0\n", b.Port)
	for _, l := range extra {
		conf += l + "\n"
	}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	b.log = lf
	b.start()
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(b.log.Name())
	b.t.Fatalf("mosquitto did not listen on %s; log:\n%s", b.Addr, log)
}

// Stop stops the broker; it may be started again with Restart.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.cmd = nil
}

// Restart starts a stopped broker again on the same port.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
