//go:build !windows

package scanner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storeagent/storeagent/devices/scanner"
	"github.com/storeagent/storeagent/store/storetest"
)

// The daemon wires the agent in through this interface.
var _ scanner.Handler = scanner.HandlerFunc(nil)

func testConfig(path string) scanner.Config {
	c := scanner.DefaultConfig()
	c.Name, c.Path = "till-1", path
	c.InterByteTimeout = 150 * time.Millisecond
	c.Debounce = 0
	c.ReopenMin, c.ReopenMax = 20*time.Millisecond, 100*time.Millisecond
	return c
}

// running is a Scanner whose Run goroutine the test owns.
type running struct {
	*scanner.Scanner
	scans <-chan scanner.Scan
	logs  *storetest.LogBuffer
	stop  func() // cancels Run and waits for it; idempotent
}

// startScanner runs a Scanner for cfg until the test ends, or until stop.
// Good scans arrive on scans; logs are kept at debug level.
func startScanner(t *testing.T, cfg scanner.Config, h scanner.Handler) *running {
	t.Helper()
	scans := make(chan scanner.Scan, 64)
	if h == nil {
		h = scanner.HandlerFunc(func(ctx context.Context, s scanner.Scan) {
			select {
			case scans <- s:
			case <-ctx.Done():
			}
		})
	}
	logs := &storetest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sc, err := scanner.New(cfg, h, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v at shutdown, want nil", err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("Run did not return within 2s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return &running{Scanner: sc, scans: scans, logs: logs, stop: stop}
}

func (r *running) next(t *testing.T) scanner.Scan {
	t.Helper()
	select {
	case s := <-r.scans:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("no scan within 5s; stats %+v", r.Stats())
		return scanner.Scan{}
	}
}

func (r *running) waitFor(t *testing.T, what string, cond func(scanner.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond(r.Stats()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not %s within 5s; stats %+v", what, r.Stats())
}

func connected(s scanner.Stats) bool { return s.Connected }

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
}

// checkRejects compares the non-zero reject counters with want.
func checkRejects(t *testing.T, s scanner.Stats, want map[scanner.Reason]uint64) {
	t.Helper()
	for r, n := range s.Rejects {
		if n != want[r] {
			t.Errorf("rejects %s = %d, want %d (all: %v)", r, n, want[r], s.Rejects)
		}
	}
}

func TestScannerReadsGoodFrames(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*scanner.Config)
		write    string
		wantCode string
		wantSym  string
	}{
		{name: "9600 8N1 CR", edit: func(c *scanner.Config) { c.Baud = 9600 }, write: "4006381333931\r", wantCode: "4006381333931"},
		{name: "19200 8E1 LF with AIM", edit: func(c *scanner.Config) {
			c.Baud, c.Parity, c.Terminator, c.AIM = 19200, scanner.ParityEven, scanner.TerminatorLF, true
		}, write: "]E04006381333931\n", wantCode: "4006381333931", wantSym: "EAN-13"},
		{name: "115200 8O2 CRLF with prefix and suffix", edit: func(c *scanner.Config) {
			c.Baud, c.Parity, c.StopBits, c.Terminator = 115200, scanner.ParityOdd, 2, scanner.TerminatorCRLF
			c.Prefix, c.Suffix = "\x02", "\x03"
		}, write: "\x02LOYALTY-0042\x03\r\n", wantCode: "LOYALTY-0042"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pty := startPTYPair(t)
			cfg := testConfig(pty.B)
			tt.edit(&cfg)
			sc := startScanner(t, cfg, nil)
			sc.waitFor(t, "connected", connected)

			before := time.Now().UnixMilli()
			write(t, pty.openA(), tt.write)
			got := sc.next(t)
			if got.Code != tt.wantCode || got.Symbology.Name != tt.wantSym || got.Port != "till-1" {
				t.Errorf("scan code %q symbology %q port %q, want %q %q till-1", got.Code, got.Symbology.Name, got.Port, tt.wantCode, tt.wantSym)
			}
			if after := time.Now().UnixMilli(); got.UnixMilli < before || got.UnixMilli > after {
				t.Errorf("scan time %d outside [%d, %d]", got.UnixMilli, before, after)
			}
			if s := sc.Stats(); s.Frames != 1 || s.LastFrame.IsZero() {
				t.Errorf("stats frames %d last frame %v, want 1 and set", s.Frames, s.LastFrame)
			}
			checkRejects(t, sc.Stats(), nil)
		})
	}
}

func TestScannerRejectsNoiseAndResynchronises(t *testing.T) {
	pty := startPTYPair(t)
	sc := startScanner(t, testConfig(pty.B), nil)
	sc.waitFor(t, "connected", connected)

	write(t, pty.openA(), "\x00\x07\xff\xfe\x1b[2Jgarbage\r5012345678900\r")
	if got := sc.next(t); got.Code != "5012345678900" {
		t.Fatalf("scan %q after noise, want 5012345678900", got.Code)
	}
	checkRejects(t, sc.Stats(), map[scanner.Reason]uint64{scanner.RejectNoise: 1})
}

func TestScannerJoinsFragments(t *testing.T) {
	pty := startPTYPair(t)
	sc := startScanner(t, testConfig(pty.B), nil)
	sc.waitFor(t, "connected", connected)

	w := pty.openA()
	for _, part := range []string{"50", "12345", "6", "78900\r"} {
		write(t, w, part)
		time.Sleep(30 * time.Millisecond) // well inside the 150 ms inter-byte timeout
	}
	if got := sc.next(t); got.Code != "5012345678900" {
		t.Fatalf("scan %q from fragments, want 5012345678900", got.Code)
	}
	checkRejects(t, sc.Stats(), nil)
}

func TestScannerDiscardsHalfFrame(t *testing.T) {
	pty := startPTYPair(t)
	sc := startScanner(t, testConfig(pty.B), nil)
	sc.waitFor(t, "connected", connected)

	w := pty.openA()
	write(t, w, "4006") // and the rest never comes
	sc.waitFor(t, "counting a half frame", func(s scanner.Stats) bool { return s.Rejects[scanner.RejectHalfFrame] == 1 })
	write(t, w, "123\r")
	if got := sc.next(t); got.Code != "123" {
		t.Fatalf("scan %q after a half frame, want 123", got.Code)
	}
	checkRejects(t, sc.Stats(), map[scanner.Reason]uint64{scanner.RejectHalfFrame: 1})
}

func TestScannerReopensVanishedPort(t *testing.T) {
	pty := startPTYPair(t)
	sc := startScanner(t, testConfig(pty.B), nil)
	sc.waitFor(t, "connected", connected)
	write(t, pty.openA(), "1111\r")
	if got := sc.next(t); got.Code != "1111" {
		t.Fatalf("scan %q, want 1111", got.Code)
	}

	pty.stop() // the scanner is unplugged
	sc.waitFor(t, "disconnected", func(s scanner.Stats) bool { return !s.Connected && s.LastError != "" })
	pty.start() // and plugged in again, at the same path
	sc.waitFor(t, "reconnected", func(s scanner.Stats) bool { return s.Connected && s.Reopens >= 1 })

	write(t, pty.openA(), "2222\r")
	if got := sc.next(t); got.Code != "2222" {
		t.Fatalf("scan %q after reconnecting, want 2222", got.Code)
	}
}

func TestScannerWaitsForMissingDevice(t *testing.T) {
	pty := newPTYPair(t) // not plugged in yet
	sc := startScanner(t, testConfig(pty.B), nil)
	sc.waitFor(t, "failing to open", func(s scanner.Stats) bool {
		return s.OpenFailures >= 2 && !s.Connected && strings.Contains(s.LastError, "open serial port")
	})

	pty.start()
	sc.waitFor(t, "connected", connected)
	write(t, pty.openA(), "3333\r")
	if got := sc.next(t); got.Code != "3333" {
		t.Fatalf("scan %q, want 3333", got.Code)
	}
	if s := sc.Stats(); s.Reopens != 0 {
		t.Errorf("reopens %d after the first successful open, want 0", s.Reopens)
	}
}

func TestScannerDropsScansWhenHandlerIsBehind(t *testing.T) {
	const sent = 20
	release := make(chan struct{})
	var handled atomic.Int64
	slow := scanner.HandlerFunc(func(ctx context.Context, s scanner.Scan) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		handled.Add(1)
	})
	pty := startPTYPair(t)
	sc := startScanner(t, testConfig(pty.B), slow)
	sc.waitFor(t, "connected", connected)

	var frames strings.Builder
	for i := range sent {
		fmt.Fprintf(&frames, "C%02d\r", i)
	}
	write(t, pty.openA(), frames.String())
	// The read loop keeps reading while the handler is stuck on the first
	// scan: all frames are read, 16 wait in the queue, the rest are dropped.
	sc.waitFor(t, "reading every frame", func(s scanner.Stats) bool { return s.Frames == sent })
	if d := sc.Stats().Dropped; d < 3 || d > 4 {
		t.Errorf("dropped %d, want 3 or 4 (one in the handler or not yet, 16 queued)", d)
	}
	checkRejects(t, sc.Stats(), nil)

	close(release)
	sc.waitFor(t, "draining the queue", func(s scanner.Stats) bool { return handled.Load()+int64(s.Dropped) == sent })
}

func TestScannerKeepsCodesOutOfLogsAndStats(t *testing.T) {
	const code = "4006381333931"
	pty := startPTYPair(t)
	cfg := testConfig(pty.B)
	cfg.AIM, cfg.Debounce, cfg.MaxFrame = true, time.Minute, 20
	sc := startScanner(t, cfg, nil)
	sc.waitFor(t, "connected", connected)

	// good, duplicate, missing AIM, too long, noise: each is logged.
	write(t, pty.openA(), "]E0"+code+"\r]E0"+code+"\r"+code+"\r]E0"+code+code+"\r\x01"+code+"\r")
	sc.next(t)
	sc.waitFor(t, "counting every frame", func(s scanner.Stats) bool { return s.Frames+sumRejects(s) == 5 })
	sc.stop()

	stats, err := json.Marshal(sc.Stats())
	if err != nil {
		t.Fatalf("marshal stats: %v", err)
	}
	logs := sc.logs.String()
	for what, text := range map[string]string{"logs": logs, "stats": string(stats)} {
		if strings.Contains(text, code[3:]) {
			t.Errorf("%s hold the scanned code:\n%s", what, text)
		}
	}
	for _, want := range []string{`"msg":"frame read"`, `"code_len":13`, `"symbology":"EAN-13"`, `"reason":"duplicate"`, `"component":"scanner"`, `"port":"till-1"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if !strings.Contains(string(stats), `"duplicate":1`) {
		t.Errorf("stats JSON lacks reject counts by name: %s", stats)
	}
}

func sumRejects(s scanner.Stats) uint64 {
	var n uint64
	for _, c := range s.Rejects {
		n += c
	}
	return n
}

func TestRunStopsOnCancelAndRunsOnce(t *testing.T) {
	cfg := testConfig(filepath.Join(t.TempDir(), "ttyUSB9"))
	sc, err := scanner.New(cfg, scanner.HandlerFunc(func(context.Context, scanner.Scan) {}), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()

	for sc.Stats().OpenFailures == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := sc.Run(ctx); !errors.Is(err, scanner.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v, want nil at shutdown", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancellation")
	}
	if s := sc.Stats(); s.Connected || !strings.Contains(s.LastError, "no such file") {
		t.Errorf("stats %+v, want disconnected with the open error", s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := testConfig("/dev/ttyUSB0")
	cfg.Baud = 12345
	_, err := scanner.New(cfg, scanner.HandlerFunc(func(context.Context, scanner.Scan) {}), nil)
	var ce *scanner.ConfigError
	if !errors.As(err, &ce) || ce.Key != "baud" {
		t.Fatalf("New: %v, want a ConfigError for baud", err)
	}
	if _, err := scanner.New(testConfig("/dev/ttyUSB0"), nil, nil); err == nil {
		t.Fatal("New with a nil handler: no error")
	}
}
