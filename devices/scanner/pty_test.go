//go:build !windows

package scanner_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ptyPair is two pseudo-terminals joined by socat, standing in for a
// serial cable: the test writes to A as the scanner hardware would, and the
// Scanner under test opens B as its port. socat unlinks both links when it
// stops, so stop and start make the port vanish and come back at the same
// path, like a scanner unplugged and plugged in again.
//
// This is the one place that starts socat.
type ptyPair struct {
	t      testing.TB
	socat  string
	dir    string
	A, B   string // symlinks to the two pty slaves
	cancel context.CancelFunc
	cmd    *exec.Cmd
}

// newPTYPair returns a pair whose links do not exist yet; call start. It
// skips the test when socat is missing, except under CI, where it fails.
func newPTYPair(t testing.TB) *ptyPair {
	t.Helper()
	socat, err := exec.LookPath("socat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("socat not found (%v): CI must run the pty tests; install socat", err)
		}
		t.Skipf("socat not found (%v): install socat to run the pty tests", err)
	}
	dir := t.TempDir()
	p := &ptyPair{t: t, socat: socat, dir: dir, A: filepath.Join(dir, "a"), B: filepath.Join(dir, "b")}
	t.Cleanup(p.stop)
	return p
}

// startPTYPair returns a started pair.
func startPTYPair(t testing.TB) *ptyPair {
	t.Helper()
	p := newPTYPair(t)
	p.start()
	return p
}

// start runs socat and waits until both links exist and it is shuttling
// bytes.
func (p *ptyPair) start() {
	p.t.Helper()
	if p.cmd != nil {
		p.t.Fatal("ptyPair: start while socat runs")
	}
	for _, link := range []string{p.A, p.B} {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.t.Fatalf("remove stale link: %v", err)
		}
	}
	logPath := filepath.Join(p.dir, "socat.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		p.t.Fatalf("create socat log: %v", err)
	}
	defer logFile.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, p.socat, "-d", "-d",
		"pty,raw,echo=0,link="+p.A, "pty,raw,echo=0,link="+p.B)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGTERM lets socat unlink its links; WaitDelay kills it if it hangs.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		p.t.Fatalf("start socat: %v", err)
	}
	p.cmd, p.cancel = cmd, cancel
	p.waitReady(logPath)
}

func (p *ptyPair) waitReady(logPath string) {
	p.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		log, _ := os.ReadFile(logPath)
		_, errA := os.Stat(p.A)
		_, errB := os.Stat(p.B)
		if errA == nil && errB == nil && strings.Contains(string(log), "starting data transfer loop") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	p.t.Fatalf("socat not ready after 5s; its log:\n%s", log)
}

// stop ends socat, which removes both links. It is safe to call when socat
// is not running.
func (p *ptyPair) stop() {
	if p.cmd == nil {
		return
	}
	p.cancel()
	_ = p.cmd.Wait() // killed by our signal: the exit status says nothing
	p.cmd, p.cancel = nil, nil
}

// openA opens the hardware side for writing; it is closed at cleanup.
func (p *ptyPair) openA() *os.File {
	p.t.Helper()
	f, err := os.OpenFile(p.A, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		p.t.Fatalf("open pty %s: %v", p.A, err)
	}
	p.t.Cleanup(func() { f.Close() })
	return f
}
