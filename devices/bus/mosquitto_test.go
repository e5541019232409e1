package bus

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// mosquitto is a real broker on a free loopback port, started and stopped
// by the test that asked for it. It is the one place that runs mosquitto.
type mosquitto struct {
	t      testing.TB
	bin    string
	conf   string
	port   int
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startMosquitto starts mosquitto with testdata/mosquitto.conf on a free
// loopback port, and stops it when the test ends; listenerOptions are
// added under the listener line (certfile, keyfile). Without mosquitto the
// test is skipped, unless $CI is set: then it fails.
func startMosquitto(t testing.TB, listenerOptions ...string) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/mosquitto")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto not found, and CI is set: install it (apt-get install mosquitto)")
		}
		t.Skip("mosquitto not found: install it (apt-get install mosquitto) to run the external-mode tests")
	}
	base, err := os.ReadFile(filepath.Join("testdata", "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{t: t, bin: bin, port: freePort(t)}
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := append(base, fmt.Sprintf("listener %d 127.0.0.1\n", m.port)...)
	if os.Geteuid() == 0 {
		// As root mosquitto switches to the user mosquitto, who may not
		// read the test's temporary files (its certificate): stay root.
		conf = append(conf, "user root\n"...)
	}
	for _, o := range listenerOptions {
		conf = append(conf, o+"\n"...)
	}
	if err := os.WriteFile(m.conf, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (m *mosquitto) url() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

// start runs the broker and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	m.stderr = new(bytes.Buffer)
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.stop()
			m.t.Fatalf("mosquitto not listening on %d within 5s: %v\n%s", m.port, err, m.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the broker; a second stop does nothing.
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}
