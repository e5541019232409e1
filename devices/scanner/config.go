package scanner

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Parity is the parity bit setting of a serial line.
type Parity string

// Parity settings. Mark and space exist only on Windows: the Linux and POSIX
// drivers of github.com/tarm/serial refuse them.
const (
	ParityNone  Parity = "none"
	ParityOdd   Parity = "odd"
	ParityEven  Parity = "even"
	ParityMark  Parity = "mark"
	ParitySpace Parity = "space"
)

// StopBits is the number of stop bits: 1, 2, or 1.5 on Windows only
// (github.com/tarm/serial cannot set 1.5 anywhere else).
type StopBits float64

// Terminator names the bytes that end a frame.
type Terminator string

// Frame terminators.
const (
	TerminatorCR   Terminator = "CR"   // "\r", the factory default of most scanners
	TerminatorLF   Terminator = "LF"   // "\n"
	TerminatorCRLF Terminator = "CRLF" // "\r\n"
)

// Limits enforced by Validate. They keep a typo from turning into a frame
// buffer of gigabytes or a timeout that can never fire.
const (
	maxNameLen    = 32
	maxAffixLen   = 16
	maxFrameLimit = 8192
	minInterByte  = 20 * time.Millisecond // below this, USB-serial latency timers (FTDI: 16 ms) split good frames
	maxInterByte  = 10 * time.Second
	maxDebounce   = time.Minute
	minReopen     = 10 * time.Millisecond
	maxReopen     = 10 * time.Minute
)

// supportedBauds are the rates the Linux driver of github.com/tarm/serial
// knows; the Windows driver takes any rate, so this list holds everywhere.
var supportedBauds = []int{
	50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
	1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
}

// Config is the runtime configuration of one scanner port. It is decoded from
// a [[scanner]] section (see README.md); the TOML key of each field is given
// in brackets. A zero field takes its value from [DefaultConfig], except
// where its comment says otherwise.
type Config struct {
	// Name is a short label for logs and metrics [name]. Required.
	Name string
	// Path is the device: /dev/ttyUSB0, /dev/ttyACM0, COM3 [path]. Required.
	Path string
	// Baud is the line speed [baud].
	Baud int
	// Parity is the parity bit [parity].
	Parity Parity
	// StopBits is the number of stop bits [stop_bits].
	StopBits StopBits
	// Terminator ends every frame [terminator].
	Terminator Terminator
	// Prefix is stripped from the start of a frame when present [prefix].
	// Empty means none.
	Prefix string
	// Suffix is stripped from the end of a frame when present [suffix].
	// Empty means none.
	Suffix string
	// AIM says the scanner sends an AIM symbology identifier ("]E0") at the
	// start of every frame [aim]. A frame without one is then rejected.
	AIM bool
	// MaxFrame is the longest frame in bytes, counted as received (prefix,
	// AIM identifier and suffix included, terminator excluded) [max_frame].
	MaxFrame int
	// InterByteTimeout is how long a partial frame may stall before it is
	// discarded as a half frame [inter_byte_timeout].
	InterByteTimeout time.Duration
	// Debounce is the window in which the same code, scanned again, is
	// delivered only once [debounce]. Zero turns debouncing off; it is not
	// replaced by the default.
	Debounce time.Duration
	// ReopenMin is the first delay before reopening a port that failed
	// [reopen_min]. The delay doubles up to ReopenMax [reopen_max].
	ReopenMin time.Duration
	ReopenMax time.Duration
}

// DefaultConfig returns the defaults for every field but Name and Path. A
// config decoder should start from it, so that a key absent from the file
// keeps its default and an explicit "0s" debounce stays off.
func DefaultConfig() Config {
	return Config{
		Baud:             9600,
		Parity:           ParityNone,
		StopBits:         1,
		Terminator:       TerminatorCR,
		MaxFrame:         512,
		InterByteTimeout: 200 * time.Millisecond,
		Debounce:         time.Second,
		ReopenMin:        250 * time.Millisecond,
		ReopenMax:        5 * time.Second,
	}
}

// withDefaults fills the zero fields for which zero is not a meaningful
// setting. Debounce is left alone: zero there means off.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Baud == 0 {
		c.Baud = d.Baud
	}
	if c.Parity == "" {
		c.Parity = d.Parity
	}
	if c.StopBits == 0 {
		c.StopBits = d.StopBits
	}
	if c.Terminator == "" {
		c.Terminator = d.Terminator
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.InterByteTimeout == 0 {
		c.InterByteTimeout = d.InterByteTimeout
	}
	if c.ReopenMin == 0 {
		c.ReopenMin = d.ReopenMin
	}
	if c.ReopenMax == 0 {
		c.ReopenMax = d.ReopenMax
	}
	return c
}

// ConfigError is a bad value in a scanner config. Key is the TOML key, so
// that the config loader can point at the file and line.
type ConfigError struct {
	Scanner string // Config.Name, possibly empty
	Key     string // TOML key, e.g. "baud"
	Problem string // e.g. "12345 not supported"
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("scanner %q: %s %s", e.Scanner, e.Key, e.Problem)
}

// Validate reports every bad field of c as it will be used, that is after
// zero fields took their defaults. The result joins one *ConfigError per bad
// field; use errors.As to get the first.
func (c Config) Validate() error {
	c = c.withDefaults()
	return errors.Join(slices.Concat(c.portErrors(), c.framingErrors(), c.reopenErrors())...)
}

func (c Config) bad(key, format string, args ...any) error {
	return &ConfigError{Scanner: c.Name, Key: key, Problem: fmt.Sprintf(format, args...)}
}

func (c Config) portErrors() []error {
	var errs []error
	if c.Name == "" || len(c.Name) > maxNameLen || strings.ContainsFunc(c.Name, notLabelRune) {
		errs = append(errs, c.bad("name", "must be 1 to %d letters, digits, '-', '_' or '.'", maxNameLen))
	}
	if c.Path == "" {
		errs = append(errs, c.bad("path", "must be set"))
	}
	if !slices.Contains(supportedBauds, c.Baud) {
		errs = append(errs, c.bad("baud", "%d not supported", c.Baud))
	}
	if err := c.checkLineSettings(runtime.GOOS); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkLineSettings takes the OS as an argument so that tests can check the
// Windows rules on Linux.
func (c Config) checkLineSettings(goos string) error {
	windows := goos == "windows"
	switch c.Parity {
	case ParityNone, ParityOdd, ParityEven:
	case ParityMark, ParitySpace:
		if !windows {
			return c.bad("parity", "%q not supported on %s", c.Parity, goos)
		}
	default:
		return c.bad("parity", "%q unknown: use none, odd, even, mark or space", c.Parity)
	}
	switch c.StopBits {
	case 1, 2:
	case 1.5:
		if !windows {
			return c.bad("stop_bits", "1.5 not supported on %s", goos)
		}
	default:
		return c.bad("stop_bits", "%g unknown: use 1, 2 or 1.5", float64(c.StopBits))
	}
	return nil
}

// framingErrors checks the fields the FrameReader uses.
func (c Config) framingErrors() []error {
	var errs []error
	switch c.Terminator {
	case TerminatorCR, TerminatorLF, TerminatorCRLF:
	default:
		errs = append(errs, c.bad("terminator", "%q unknown: use CR, LF or CRLF", c.Terminator))
	}
	errs = append(errs, c.checkAffix("prefix", c.Prefix), c.checkAffix("suffix", c.Suffix))
	if c.MaxFrame < 1 || c.MaxFrame > maxFrameLimit {
		errs = append(errs, c.bad("max_frame", "%d out of range 1 to %d", c.MaxFrame, maxFrameLimit))
	} else if c.MaxFrame <= c.overhead() {
		errs = append(errs, c.bad("max_frame", "%d leaves no room for a code after prefix, suffix and aim identifier", c.MaxFrame))
	}
	if c.InterByteTimeout < minInterByte || c.InterByteTimeout > maxInterByte {
		errs = append(errs, c.bad("inter_byte_timeout", "%s out of range %s to %s", c.InterByteTimeout, minInterByte, maxInterByte))
	}
	if c.Debounce < 0 || c.Debounce > maxDebounce {
		errs = append(errs, c.bad("debounce", "%s out of range 0s to %s", c.Debounce, maxDebounce))
	}
	return errs
}

// checkAffix refuses CR and LF in a prefix or suffix: a terminator byte
// inside one would end the frame early, so it could never be stripped.
func (c Config) checkAffix(key, v string) error {
	if len(v) > maxAffixLen {
		return c.bad(key, "longer than %d bytes", maxAffixLen)
	}
	if strings.ContainsAny(v, "\r\n") {
		return c.bad(key, "must not contain CR or LF")
	}
	return nil
}

// overhead is the number of bytes of a frame that are not code.
func (c Config) overhead() int {
	n := len(c.Prefix) + len(c.Suffix)
	if c.AIM {
		n += aimIdentifierLen
	}
	return n
}

func (c Config) reopenErrors() []error {
	var errs []error
	if c.ReopenMin < minReopen || c.ReopenMin > maxReopen {
		errs = append(errs, c.bad("reopen_min", "%s out of range %s to %s", c.ReopenMin, minReopen, maxReopen))
	}
	if c.ReopenMax < c.ReopenMin || c.ReopenMax > maxReopen {
		errs = append(errs, c.bad("reopen_max", "%s out of range reopen_min (%s) to %s", c.ReopenMax, c.ReopenMin, maxReopen))
	}
	return errs
}

func notLabelRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case r == '-', r == '_', r == '.':
		return false
	}
	return true
}
