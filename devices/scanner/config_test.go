package scanner

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Name, c.Path = "front", "/dev/ttyUSB0"
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantKey string // empty: valid
		wantMsg string // the whole message, when set
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "zero fields take defaults", edit: func(c *Config) { *c = Config{Name: "front", Path: "COM3"} }},
		{name: "every setting", edit: func(c *Config) {
			c.Baud, c.Parity, c.StopBits, c.Terminator = 115200, ParityEven, 2, TerminatorCRLF
			c.Prefix, c.Suffix, c.AIM, c.MaxFrame = "\x02", "\x03", true, 6
			c.InterByteTimeout, c.Debounce, c.ReopenMin, c.ReopenMax = 20*time.Millisecond, 0, time.Second, time.Second
		}},
		{name: "bad baud", edit: func(c *Config) { c.Baud = 12345 }, wantKey: "baud", wantMsg: `scanner "front": baud 12345 not supported`},
		{name: "negative baud", edit: func(c *Config) { c.Baud = -9600 }, wantKey: "baud"},
		{name: "no name", edit: func(c *Config) { c.Name = "" }, wantKey: "name"},
		{name: "name with space", edit: func(c *Config) { c.Name = "front desk" }, wantKey: "name"},
		{name: "name too long", edit: func(c *Config) { c.Name = strings.Repeat("a", 33) }, wantKey: "name"},
		{name: "no path", edit: func(c *Config) { c.Path = "" }, wantKey: "path", wantMsg: `scanner "front": path must be set`},
		{name: "unknown parity", edit: func(c *Config) { c.Parity = "Even" }, wantKey: "parity"},
		{name: "unknown stop bits", edit: func(c *Config) { c.StopBits = 3 }, wantKey: "stop_bits"},
		{name: "unknown terminator", edit: func(c *Config) { c.Terminator = "cr" }, wantKey: "terminator"},
		{name: "prefix with cr", edit: func(c *Config) { c.Prefix = "A\r" }, wantKey: "prefix"},
		{name: "suffix with lf", edit: func(c *Config) { c.Suffix = "\n" }, wantKey: "suffix"},
		{name: "prefix too long", edit: func(c *Config) { c.Prefix = strings.Repeat("#", 17) }, wantKey: "prefix"},
		{name: "negative max frame", edit: func(c *Config) { c.MaxFrame = -1 }, wantKey: "max_frame"},
		{name: "huge max frame", edit: func(c *Config) { c.MaxFrame = 1 << 20 }, wantKey: "max_frame"},
		{name: "max frame with no room for code", edit: func(c *Config) { c.AIM, c.Prefix, c.MaxFrame = true, "ab", 5 }, wantKey: "max_frame"},
		{name: "inter byte timeout too short", edit: func(c *Config) { c.InterByteTimeout = 5 * time.Millisecond }, wantKey: "inter_byte_timeout"},
		{name: "negative debounce", edit: func(c *Config) { c.Debounce = -time.Second }, wantKey: "debounce"},
		{name: "reopen min too short", edit: func(c *Config) { c.ReopenMin = time.Millisecond }, wantKey: "reopen_min"},
		{name: "reopen max below min", edit: func(c *Config) { c.ReopenMin, c.ReopenMax = 2*time.Second, time.Second }, wantKey: "reopen_max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate: got %v, want a *ConfigError for %s", err, tt.wantKey)
			}
			if ce.Key != tt.wantKey {
				t.Errorf("Validate: key %q (%v), want %q", ce.Key, err, tt.wantKey)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("Validate: %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestConfigValidateNamesEveryBadKey(t *testing.T) {
	c := validConfig()
	c.Baud, c.Terminator = 1, "NUL"
	err := c.Validate()
	for _, key := range []string{"baud 1", "terminator \"NUL\""} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate: %v, want it to name %s", err, key)
		}
	}
}

func TestLineSettingsPerOS(t *testing.T) {
	tests := []struct {
		name     string
		parity   Parity
		stopBits StopBits
		goos     string
		wantKey  string
	}{
		{name: "mark on windows", parity: ParityMark, stopBits: 1, goos: "windows"},
		{name: "space on windows", parity: ParitySpace, stopBits: 1, goos: "windows"},
		{name: "1.5 stop bits on windows", parity: ParityNone, stopBits: 1.5, goos: "windows"},
		{name: "mark on linux", parity: ParityMark, stopBits: 1, goos: "linux", wantKey: "parity"},
		{name: "space on darwin", parity: ParitySpace, stopBits: 1, goos: "darwin", wantKey: "parity"},
		{name: "1.5 stop bits on linux", parity: ParityOdd, stopBits: 1.5, goos: "linux", wantKey: "stop_bits"},
		{name: "odd with 2 stop bits on linux", parity: ParityOdd, stopBits: 2, goos: "linux"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Parity, c.StopBits = tt.parity, tt.stopBits
			err := c.checkLineSettings(tt.goos)
			var ce *ConfigError
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("checkLineSettings: %v", err)
			case tt.wantKey != "" && (!errors.As(err, &ce) || ce.Key != tt.wantKey):
				t.Fatalf("checkLineSettings: %v, want an error for %s", err, tt.wantKey)
			}
		})
	}
}
