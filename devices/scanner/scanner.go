package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storeagent/storeagent/devices/internal/backoff"
	"github.com/tarm/serial"
)

// Handler receives the good scans of a port. The daemon wires it to the
// agent (identify for a purpose, or record an event); the scanner knows
// nothing of either.
type Handler interface {
	// HandleScan is called from one goroutine, one scan at a time, in the
	// order the scans were read. It must return promptly: see Scanner.Run.
	HandleScan(ctx context.Context, s Scan)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, s Scan)

// HandleScan calls f(ctx, s).
func (f HandlerFunc) HandleScan(ctx context.Context, s Scan) { f(ctx, s) }

// Scan is one good frame read from a port.
type Scan struct {
	Port      string    // Config.Name of the port
	Code      string    // the scanned text; may be personal data: never log it
	Symbology Symbology // zero unless Config.AIM is on
	UnixMilli int64     // when the frame's terminator arrived, in ms since the Unix epoch
}

// String describes s without its code.
func (s Scan) String() string {
	return fmt.Sprintf("scan{port=%s symbology=%q code_len=%d}", s.Port, s.Symbology, len(s.Code))
}

// LogValue keeps the code out of logs.
func (s Scan) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("port", s.Port),
		slog.String("symbology", s.Symbology.Name),
		slog.Int("code_len", len(s.Code)),
	)
}

// ErrRunning is returned by Run when the Scanner is already running.
var ErrRunning = errors.New("scanner already running")

const (
	// ReadTimeout bounds each read, so the read loop wakes up to expire
	// half frames and to notice cancellation. On Linux it becomes VTIME,
	// counted in tenths of a second: 100 ms is the shortest there is.
	ReadTimeout = 100 * time.Millisecond
	// hangupReads is how many instant empty reads in a row mean the device
	// is gone (see hangupDetector).
	hangupReads = 3
	// queueLen is how many scans may wait for a slow handler. A scanner is a
	// human-speed device: 16 scans is many seconds of scanning.
	queueLen    = 16
	readBufSize = 256
)

// errHangup is why a connection ends when the device stopped answering
// without an error of its own.
var errHangup = errors.New("device hung up")

// Scanner reads one serial port and hands its good scans to a Handler.
type Scanner struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	frames  *FrameReader // used only by the goroutine in Run
	stats   *counters
	running atomic.Bool // set while Run runs, to refuse a second Run
}

// New returns a Scanner for cfg, with zero fields defaulted. It fails with
// the errors of cfg.Validate. A nil log discards logs.
func New(cfg Config, h Handler, log *slog.Logger) (*Scanner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("scanner %q: nil handler", cfg.Name)
	}
	fr, err := NewFrameReader(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{
		cfg:     cfg,
		handler: h,
		log:     log.With("component", "scanner", "port", cfg.Name),
		frames:  fr,
		stats:   newCounters(cfg),
	}, nil
}

// Stats returns a snapshot of the port's counters. It is safe to call from
// any goroutine, while Run runs or not.
func (s *Scanner) Stats() Stats { return s.stats.snapshot() }

// Run opens the port, reads frames and hands good scans to the Handler until
// ctx is cancelled.
//
//  1. Run returns nil once ctx is cancelled, within about 100 ms (one read
//     timeout) and once a HandleScan call in progress has returned;
//     cancellation is the only way to stop it and is not an error. It
//     returns ErrRunning at once if the Scanner is already running.
//  2. A port that is missing at start, or fails later (read error, device
//     unplugged), is closed and reopened with capped exponential backoff
//     with jitter (Config.ReopenMin to ReopenMax), for as long as ctx lives.
//     Stats tells whether it is connected and what went wrong last.
//  3. The read loop never waits for the handler: good scans go through a
//     queue of 16 to a goroutine that calls HandleScan with ctx. When the
//     queue is full the scan is dropped and counted in Stats.Dropped, and
//     so are scans still queued at shutdown.
func (s *Scanner) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	queue := make(chan Scan, queueLen)
	var wg sync.WaitGroup
	wg.Go(func() { s.dispatch(ctx, queue) })
	s.keepOpen(ctx, queue)
	wg.Wait()
	s.stats.dropped(len(queue))
	return nil
}

// dispatch hands queued scans to the handler until ctx is done.
func (s *Scanner) dispatch(ctx context.Context, queue <-chan Scan) {
	for {
		select {
		case <-ctx.Done():
			return
		case sc := <-queue:
			s.handler.HandleScan(ctx, sc)
		}
	}
}

// keepOpen opens the port, serves it until it fails, and opens it again
// after a backoff delay, until ctx is done.
func (s *Scanner) keepOpen(ctx context.Context, queue chan<- Scan) {
	b := &backoff.Backoff{Min: s.cfg.ReopenMin, Max: s.cfg.ReopenMax}
	failures := 0 // open failures in a row
	for ctx.Err() == nil {
		port, err := s.open()
		if err != nil {
			failures++
			s.stats.openFailed(err, time.Now())
			// Warn once per outage: a scanner left unplugged must not
			// flood the log. Stats keeps the latest error.
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			s.pause(ctx, b, level, "open failed", err)
			continue
		}
		failures = 0
		up, err := s.serve(ctx, port, queue)
		if up >= s.cfg.ReopenMax {
			b.Reset() // it worked for a while: the next outage starts afresh
		}
		s.pause(ctx, b, slog.LevelWarn, "port lost", err)
	}
}

// pause logs why the port is down and sleeps for the next backoff delay,
// or until ctx is done.
func (s *Scanner) pause(ctx context.Context, b *backoff.Backoff, level slog.Level, msg string, err error) {
	if ctx.Err() != nil {
		return
	}
	d := b.Next()
	s.log.Log(ctx, level, msg, "err", err, "retry_in", d.Round(time.Millisecond).String())
	backoff.Sleep(ctx, d)
}

func (s *Scanner) open() (io.ReadCloser, error) {
	p, err := serial.OpenPort(s.cfg.SerialConfig())
	if err != nil {
		return nil, fmt.Errorf("open serial port: %w", err)
	}
	return p, nil
}

// SerialConfig is the port configuration the driver opens c's port with,
// reads bounded by ReadTimeout: for a tool that reads the port itself.
func (c Config) SerialConfig() *serial.Config {
	sc := &serial.Config{Name: c.Path, Baud: c.Baud, ReadTimeout: ReadTimeout, StopBits: serial.Stop1}
	switch c.StopBits {
	case 1.5:
		sc.StopBits = serial.Stop1Half
	case 2:
		sc.StopBits = serial.Stop2
	}
	sc.Parity = serialParity[c.Parity]
	return sc
}

var serialParity = map[Parity]serial.Parity{
	ParityNone: serial.ParityNone, ParityOdd: serial.ParityOdd, ParityEven: serial.ParityEven,
	ParityMark: serial.ParityMark, ParitySpace: serial.ParitySpace,
}

// serve reads an open port until it fails or ctx is done, then closes it.
// It returns how long the port was up and why it ended (nil when ctx is
// done).
func (s *Scanner) serve(ctx context.Context, port io.ReadCloser, queue chan<- Scan) (time.Duration, error) {
	start := time.Now()
	reopen := s.stats.open()
	s.log.Info("port opened", "path", s.cfg.Path, "baud", s.cfg.Baud, "reopen", reopen)

	err := s.readFrames(ctx, port, queue)
	if cerr := port.Close(); cerr != nil {
		s.log.Debug("close failed", "err", cerr)
	}
	now := time.Now()
	// A partial frame cannot continue on a new connection.
	if f, ok := s.frames.Flush(now); ok {
		s.handleFrame(f, queue)
	}
	s.stats.closed(err, now)
	return now.Sub(start), err
}

// readFrames reads until the port fails or ctx is done. Each read returns
// after at most ReadTimeout, which is when stalled half frames expire and
// cancellation is seen.
func (s *Scanner) readFrames(ctx context.Context, port io.Reader, queue chan<- Scan) error {
	buf := make([]byte, readBufSize)
	var hang hangupDetector
	for ctx.Err() == nil {
		start := time.Now()
		n, err := port.Read(buf)
		now := time.Now()
		for _, f := range s.frames.Feed(now, buf[:n]) {
			s.handleFrame(f, queue)
		}
		if err := hang.check(n, err, now.Sub(start)); err != nil {
			return err
		}
	}
	return nil
}

// handleFrame counts f and queues it for the handler when it is good,
// without ever waiting.
func (s *Scanner) handleFrame(f Frame, queue chan<- Scan) {
	s.stats.frame(f)
	if !f.OK() {
		s.log.Debug("frame rejected", "frame", f)
		return
	}
	s.log.Debug("frame read", "frame", f)
	select {
	case queue <- Scan{Port: s.cfg.Name, Code: f.Code, Symbology: f.Symbology, UnixMilli: f.At.UnixMilli()}:
	default:
		s.stats.dropped(1)
		s.log.Warn("scan dropped: handler is behind", "queue_len", queueLen)
	}
}

// hangupDetector tells a quiet line from a dead one. On Linux a read that
// times out (VTIME) returns 0 bytes and io.EOF, and so does a read from a
// device that is gone (a pty whose other side closed, a USB adapter that
// was unplugged and hung up): only the time the read took tells them apart.
// A dead device answers at once, every time.
type hangupDetector struct {
	quick int // empty reads in a row that returned well before ReadTimeout
}

func (h *hangupDetector) check(n int, err error, took time.Duration) error {
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read serial port: %w", err)
	}
	if n > 0 || took >= ReadTimeout/2 {
		h.quick = 0
		return nil
	}
	h.quick++
	if h.quick >= hangupReads {
		return errHangup
	}
	return nil
}
