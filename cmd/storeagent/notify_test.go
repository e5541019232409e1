//go:build unix

package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under systemd (Type=notify, WatchdogSec), the daemon says READY=1 with
// its pid once it serves, feeds the watchdog at half its period while the
// store answers, and says STOPPING=1 on SIGTERM. The socket is a real
// unixgram socket, as systemd's.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // fed every 100 ms
	cfg, dir := testConfig(t, "")
	cmd, log := startAgent(t, "-config", cfg, "-state-dir", dir)

	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q from the daemon; log:\n%s", want, log)
			}
		}
	}
	ready := next("READY=1")
	if !strings.Contains(ready, fmt.Sprintf("MAINPID=%d", cmd.Process.Pid)) {
		t.Fatalf("READY without the daemon's pid: %q", ready)
	}
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1")
}
