package firmwareconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/storeagent/storeagent/devices/bus"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
)

// ScannerSection is one [[scanner]]: a serial port (devices/scanner/README.md)
// and what its scans are for.
type ScannerSection struct {
	Name             string    `toml:"name"`
	Path             string    `toml:"path"`
	Baud             int       `toml:"baud"`
	Parity           string    `toml:"parity"`
	StopBits         float64   `toml:"stop_bits"`
	Terminator       string    `toml:"terminator"`
	Prefix           string    `toml:"prefix"`
	Suffix           string    `toml:"suffix"`
	AIM              bool      `toml:"aim"`
	MaxFrame         int       `toml:"max_frame"`
	InterByteTimeout Duration  `toml:"inter_byte_timeout"`
	Debounce         *Duration `toml:"debounce"` // nil: left out, the default stands`
	ReopenMin        Duration  `toml:"reopen_min"`
	ReopenMax        Duration  `toml:"reopen_max"`
	// Use is identify (default) or event; Purpose is what an identify
	// answers for; Event names the track event of a recorded code; Device
	// is the till or kiosk the scanner belongs to (default: the agent's id).
	Use     string `toml:"use"`
	Purpose string `toml:"purpose"`
	Event   string `toml:"event"`
	Device  string `toml:"device"`
}

// Scanner is the port's runtime config: DefaultConfig overlaid with what
// the section sets (a duration of 0 keeps the default, except debounce,
// where 0 turns it off: a key left out keeps the default).
func (s ScannerSection) Scanner() scanner.Config {
	c := scanner.DefaultConfig()
	c.Name, c.Path, c.AIM = s.Name, s.Path, s.AIM
	setIf(&c.Baud, s.Baud)
	setIf(&c.Parity, scanner.Parity(s.Parity))
	setIf(&c.StopBits, scanner.StopBits(s.StopBits))
	setIf(&c.Terminator, scanner.Terminator(s.Terminator))
	c.Prefix, c.Suffix = s.Prefix, s.Suffix
	setIf(&c.MaxFrame, s.MaxFrame)
	setIf(&c.InterByteTimeout, s.InterByteTimeout.D())
	setIf(&c.ReopenMin, s.ReopenMin.D())
	setIf(&c.ReopenMax, s.ReopenMax.D())
	if s.Debounce != nil {
		c.Debounce = s.Debounce.D()
	}
	return c
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// Consumer is what the section's scans are for.
func (c *Config) Consumer(s ScannerSection) scanner.ConsumerConfig {
	device := s.Device
	if device == "" {
		device = c.Agent.ID
	}
	return scanner.ConsumerConfig{Use: scanner.Use(s.Use), Purpose: s.Purpose, Event: s.Event, Device: device, Rules: c.Ident}
}

func (cfg *Config) scannerCheck(c *checker) {
	names := map[string]bool{}
	for i, s := range cfg.Scanners {
		key := fmt.Sprintf("scanner.%d", i)
		if s.Use == "" {
			cfg.Scanners[i].Use, s.Use = string(scanner.UseIdentify), string(scanner.UseIdentify)
		}
		eachErr(s.Scanner().Validate(), func(e error) {
			var ce *scanner.ConfigError
			if errors.As(e, &ce) {
				c.add(key+"."+ce.Key, "%s", ce.Problem)
			} else {
				c.add(key, "%v", e)
			}
		})
		if err := cfg.Consumer(s).Validate(s.Name); err != nil {
			c.add(key+".use", "%v", err)
		}
		if p := cfg.Policy.Policy(); s.Purpose != "" {
			if _, ok := p.Basis(s.Purpose); !ok {
				c.add(key+".purpose", "%q is not a purpose of the policy", s.Purpose)
			}
		}
		if names[s.Name] {
			c.add(key+".name", "%q is used by another scanner", s.Name)
		}
		names[s.Name] = true
	}
}

// APIConfig is the [api] section with the socket resolved: an empty
// socket means <state dir>/api.sock; "none" means no socket.
func (c *Config) APIConfig(stateDir string) localapi.Config {
	a := c.API
	switch a.Socket {
	case "":
		a.Socket = filepath.Join(stateDir, "api.sock")
	case "none":
		a.Socket = ""
	}
	return a
}

func (cfg *Config) apiCheck(c *checker) {
	a := cfg.APIConfig("/state") // the directory is known only at start; any absolute one checks the rest
	eachErr(a.Validate(), func(e error) {
		var ce *localapi.ConfigError
		if errors.As(e, &ce) {
			c.add("api."+ce.Key, "%s", ce.Problem)
		} else {
			c.add("api", "%v", e)
		}
	})
}

// eachErr calls fn for each error joined in err (or err itself).
func eachErr(err error, fn func(error)) {
	if err == nil {
		return
	}
	if all, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range all.Unwrap() {
			eachErr(e, fn)
		}
		return
	}
	fn(err)
}

// BusSection is the device MQTT bus (devices/bus/README.md). Off by
// default: it serves the devices listed in [[bus.device]], and the default
// lists none.
type BusSection struct {
	Enabled  bool        `toml:"enabled"`
	Mode     string      `toml:"mode"`
	Workers  int         `toml:"workers"`
	QueueLen int         `toml:"queue_len"`
	Embedded BusEmbedded `toml:"embedded"`
	External BusExternal `toml:"external"`
	Devices  []BusDevice `toml:"device"`
}

// BusEmbedded is [bus.embedded].
type BusEmbedded struct {
	Listen      string `toml:"listen"`
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
}

// BusExternal is [bus.external].
type BusExternal struct {
	Broker       string `toml:"broker"`
	ClientID     string `toml:"client_id"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	CAFile       string `toml:"ca_file"`
}

// BusDevice is one [[bus.device]].
type BusDevice struct {
	ID           string `toml:"id"`
	Kind         string `toml:"kind"`
	Purpose      string `toml:"purpose"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	PasswordEnv  string `toml:"password_env"`
}

// BusConfig is the bus's runtime config, with the store id and the
// policy's purposes filled in.
func (c *Config) BusConfig() bus.Config {
	b := c.Bus
	out := bus.DefaultConfig()
	setIf(&out.Mode, bus.Mode(b.Mode))
	setIf(&out.Workers, b.Workers)
	setIf(&out.QueueLen, b.QueueLen)
	out.StoreID = c.Agent.StoreID
	for _, p := range c.Policy.Purposes {
		out.Purposes = append(out.Purposes, p.Name)
	}
	out.Embedded.Listen = b.Embedded.Listen // empty: bus.DefaultListen in embedded mode; must stay empty in external mode
	out.Embedded.TLSCertFile, out.Embedded.TLSKeyFile = b.Embedded.TLSCertFile, b.Embedded.TLSKeyFile
	out.External = bus.ExternalConfig(b.External)
	for _, d := range b.Devices {
		out.Devices = append(out.Devices, bus.DeviceConfig{ID: d.ID, Kind: bus.DeviceKind(d.Kind), Purpose: d.Purpose,
			Username: d.Username, PasswordFile: d.PasswordFile, PasswordEnv: d.PasswordEnv})
	}
	return out
}

func (cfg *Config) busCheck(c *checker) {
	if !cfg.Bus.Enabled {
		return
	}
	eachErr(cfg.BusConfig().Validate(), func(e error) {
		var ce *bus.ConfigError
		if !errors.As(e, &ce) {
			c.add("bus", "%v", e)
			return
		}
		// bus names array entries device[2]; the line index says device.2.
		key := strings.NewReplacer("[", ".", "]", "").Replace(ce.Key)
		c.add(key, "%s", ce.Problem)
	})
}
