package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier speaks systemd's notify protocol (sd_notify(3)) without cgo:
// one datagram per state to the unix socket named by $NOTIFY_SOCKET. Under
// a unit with Type=notify, systemd counts the agent started only once it
// says READY=1 (the store is open, the parts are built), and with
// WatchdogSec it restarts an agent that stops saying WATCHDOG=1. Without
// $NOTIFY_SOCKET (a console, Windows, a test) every call does nothing.
type notifier struct {
	addr *net.UnixAddr
	log  *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return &notifier{log: log}
	}
	if strings.HasPrefix(name, "@") { // an abstract socket
		name = "\x00" + name[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}, log: log}
}

// send sends one state; a failure is logged, never fatal: the agent works
// without its supervisor.
func (n *notifier) send(state string) {
	if n.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err == nil {
		_, err = c.Write([]byte(state))
		c.Close()
	}
	if err != nil {
		n.log.Warn("notify systemd", "state", strings.SplitN(state, "=", 2)[0], "err", err)
	}
}

func (n *notifier) ready(status string) {
	n.send(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=%s", os.Getpid(), status))
}

func (n *notifier) stopping() { n.send("STOPPING=1\nSTATUS=stopping") }

// watchdogInterval is how often to say WATCHDOG=1: half of $WATCHDOG_USEC,
// when the watchdog is on and meant for this process; 0 otherwise.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog says WATCHDOG=1 every interval while healthy answers nil, until
// ctx ends. An agent whose store no longer answers stays silent, and
// systemd restarts it: the supervisor sees a wedged agent, not only a dead
// one.
func (n *notifier) watchdog(ctx context.Context, every time.Duration, healthy func() error) {
	if n.addr == nil || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := healthy(); err != nil {
				n.log.Error("unhealthy: watchdog not fed", "err", err)
				continue
			}
			n.send("WATCHDOG=1")
		}
	}
}
