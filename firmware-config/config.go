// Package firmwareconfig is the agent's configuration: the TOML schema, its
// strict decoding and validation, and the documented profiles per device
// kind (pos.toml, kiosk.toml, speaker.toml, gateway.toml) with the embedded
// default that runs with no file at all.
//
// It sits beside cmd: only commands import it. It never opens a file other
// than the one it is asked to load, never starts anything, and never holds a
// secret inline: keys are read from files named here (or the environment,
// for broker passwords), by the packages that use them.
//
// The invariant its tests protect: a config with a typo, an unknown key, a
// wrong type or a bad value is refused with an error naming the file, the
// line and the key, before the agent touches its store.
package firmwareconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/store"
)

// Config is the whole configuration of one agent.
type Config struct {
	// Kind is the device kind: pos, kiosk, speaker or gateway.
	Kind     string           `toml:"kind"`
	Agent    AgentSection     `toml:"agent"`
	Ident    ident.Rules      `toml:"identifiers"`
	Policy   PolicySection    `toml:"policy"`
	Store    StoreSection     `toml:"store"`
	Sync     SyncSection      `toml:"sync"`
	API      localapi.Config  `toml:"api"`
	Bus      BusSection       `toml:"bus"`
	Scanners []ScannerSection `toml:"scanner"`
	Log      LogSection       `toml:"log"`
	Metrics  MetricsSection   `toml:"metrics"`
}

// AgentSection names this agent on the wire (PROTOCOL.md topics) and sets
// the domain core's bounds.
type AgentSection struct {
	Tenant  string `toml:"tenant"`
	StoreID string `toml:"store_id"`
	ID      string `toml:"id"`
	// TenantKeyFile holds the key identifiers are hashed with, shared with
	// the central (32 bytes, mode 0600). Empty: <dir>/tenant.key, generated
	// at first start, which only suits an agent with no central.
	TenantKeyFile  string   `toml:"tenant_key_file"`
	CriticalEvents []string `toml:"critical_events"`
	// IdentifyingProperties are removed with identity; empty means the
	// built-in list (email, phone, name, address, loyalty number...).
	IdentifyingProperties []string `toml:"identifying_properties"`
	MaxProfiles           uint64   `toml:"max_profiles"`
	LocalTTL              Duration `toml:"local_ttl"`
	PendingMaxAge         Duration `toml:"pending_max_age"`
}

// PolicySection is the purpose policy until the central sends one.
type PolicySection struct {
	Default  string            `toml:"default"`
	Purposes []consent.Purpose `toml:"purpose"`
	Events   map[string]string `toml:"events"`
}

// SyncSection is the link to the central CDP. Disabled, the agent works
// offline and keeps everything in its outbox.
type SyncSection struct {
	Enabled      bool     `toml:"enabled"`
	Broker       string   `toml:"broker"`
	ClientID     string   `toml:"client_id"`
	Username     string   `toml:"username"`
	PasswordFile string   `toml:"password_file"`
	PasswordEnv  string   `toml:"password_env"`
	CAFile       string   `toml:"ca_file"`
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`
	ServerName   string   `toml:"server_name"`
	CentralKeys  []string `toml:"central_keys"` // PEM public keys of the central
	KeepAlive    Duration `toml:"keepalive"`
	BackoffMin   Duration `toml:"backoff_min"`
	BackoffMax   Duration `toml:"backoff_max"`
	BatchEvents  int      `toml:"batch_events"`
	Window       int      `toml:"window"`
	AckTimeout   Duration `toml:"ack_timeout"`
	MaxPace      Duration `toml:"max_pace"`
}

// StoreSection configures the local database.
type StoreSection struct {
	// Dir holds the database and the generated keys. Empty: $STATE_DIRECTORY
	// (systemd), else $XDG_STATE_HOME/storeagent, else
	// ~/.local/state/storeagent (%LocalAppData%\storeagent on Windows).
	Dir string `toml:"dir"`
	// KeyFile is the at-rest key (32 bytes, mode 0600). Empty: <dir>/store.key,
	// generated at first start.
	KeyFile         string        `toml:"key_file"`
	InitialMmapMB   int           `toml:"initial_mmap_mb"`
	MaxFileMB       int           `toml:"max_file_mb"`
	LockTimeout     Duration      `toml:"lock_timeout"`
	CompactWithin   Duration      `toml:"compact_within"`
	Outbox          OutboxSection `toml:"outbox"`
	AuditMaxEntries uint64        `toml:"audit_max_entries"`
}

// OutboxSection bounds the outbox (DESIGN.md invariant 8).
type OutboxSection struct {
	MaxRecords      uint64 `toml:"max_records"`
	MaxMB           uint64 `toml:"max_mb"`
	ReservedPercent int    `toml:"reserved_percent"`
	MaxEventKB      int    `toml:"max_event_kb"`
}

// LogSection configures log/slog output.
type LogSection struct {
	Format string `toml:"format"` // text or json
	Level  string `toml:"level"`  // debug, info, warn, error
}

// MetricsSection serves Prometheus metrics (cmd/internal/metrics). They
// carry no identifier, but they are for this device only: Listen must be a
// loopback address, and a collector on the store's network scrapes through
// a forwarder the site runs.
type MetricsSection struct {
	Enabled bool   `toml:"enabled"`
	Listen  string `toml:"listen"` // loopback host:port; port 0 picks a free one
}

// Duration is a time.Duration written as a Go duration string ("250ms").
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"250ms\" or \"15m\": %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Error is a configuration error: which file, which line, which key, what.
type Error struct {
	File string
	Line int    // 0 when the key is absent from the file (a default failed)
	Key  string // dotted, e.g. store.outbox.max_records
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
}

// Errors is every problem found in one file.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads and validates the file at path, on top of the embedded
// default (default.toml, whatever the file's kind): a file holds only what
// it changes, and a list it sets replaces the default's whole list.
func Load(path string) (*Config, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, doc)
}

// Parse decodes doc (named name in errors) strictly onto Default() and
// validates the result.
func Parse(name string, doc []byte) (*Config, error) {
	c := Default()
	if err := decodeStrict(doc, c); err != nil {
		return nil, decodeErrors(name, err)
	}
	if err := c.Validate(); err != nil {
		return nil, locate(name, doc, err)
	}
	return c, nil
}

func decodeStrict(doc []byte, c *Config) error {
	return toml.NewDecoder(bytes.NewReader(doc)).DisallowUnknownFields().Decode(c)
}

func decodeErrors(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		out := make(Errors, 0, len(strict.Errors))
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, _ := de.Position()
			out = append(out, &Error{File: name, Line: line, Key: strings.Join(de.Key(), "."), Msg: "unknown key (a typo? see firmware-config/README.md)"})
		}
		return out
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return Errors{{File: name, Line: line, Key: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")}}
	}
	return Errors{{File: name, Msg: err.Error()}}
}

// locate turns Validate's key errors into file:line errors.
func locate(name string, doc []byte, err error) error {
	var ve Errors
	if !errors.As(err, &ve) {
		return Errors{{File: name, Msg: err.Error()}}
	}
	lines := keyLines(doc)
	for _, e := range ve {
		e.File = name
		e.Line = lines[e.Key]
	}
	return ve
}

// StateDir resolves the state directory (see StoreSection.Dir).
func (c *Config) StateDir() (string, error) {
	if c.Store.Dir != "" {
		return c.Store.Dir, nil
	}
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0], nil
	}
	if runtime.GOOS == "windows" {
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "storeagent"), nil
		}
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "storeagent"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set store.dir in the config: %w", err)
	}
	return filepath.Join(home, ".local", "state", "storeagent"), nil
}

// KeyFilePath is the at-rest key file: store.key_file or <state dir>/store.key.
func (c *Config) KeyFilePath(stateDir string) string {
	if c.Store.KeyFile != "" {
		return c.Store.KeyFile
	}
	return filepath.Join(stateDir, "store.key")
}

// StoreOptions are the store's options from this config.
func (c *Config) StoreOptions(key []byte, log *slog.Logger) store.Options {
	s := c.Store
	pct := uint64(s.Outbox.ReservedPercent)
	maxBytes := s.Outbox.MaxMB << 20
	return store.Options{
		Key:             key,
		LockTimeout:     s.LockTimeout.D(),
		InitialMmapSize: s.InitialMmapMB << 20,
		MaxFileBytes:    s.MaxFileMB << 20,
		AuditMax:        s.AuditMaxEntries,
		Logger:          log,
		Outbox: store.OutboxLimits{
			MaxRecords:      s.Outbox.MaxRecords,
			MaxBytes:        maxBytes,
			ReservedRecords: s.Outbox.MaxRecords * pct / 100,
			ReservedBytes:   maxBytes * pct / 100,
			MaxEntryBytes:   s.Outbox.MaxEventKB << 10,
		},
	}
}

// Logger builds the agent's slog logger writing to w.
func (l LogSection) Logger(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(l.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
