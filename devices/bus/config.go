package bus

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/storeagent/storeagent/agent/consent"
)

// Mode says where the device bus's broker runs.
type Mode string

// Modes.
const (
	// ModeEmbedded runs an MQTT broker inside the agent (the default for a
	// gateway): the agent authenticates each device and enforces its topics.
	ModeEmbedded Mode = "embedded"
	// ModeExternal connects the agent as a client to the store's own
	// broker, which authenticates devices and enforces their topics.
	ModeExternal Mode = "external"
)

// DeviceKind is what a device is, which decides the topics it may use.
type DeviceKind string

// Device kinds.
const (
	Beacon  DeviceKind = "beacon"  // publishes sightings
	Speaker DeviceKind = "speaker" // asks for identification
	Kiosk   DeviceKind = "kiosk"   // asks for identification, records events, changes consent
)

// may reports whether a device of kind k may publish requests of topic kind t.
func (k DeviceKind) may(t topicKind) bool {
	switch k {
	case Beacon:
		return t == topicSightings
	case Speaker:
		return t == topicIdentify
	case Kiosk:
		return t == topicIdentify || t == topicEvents || t == topicConsent
	}
	return false
}

// Defaults and limits enforced by Validate.
const (
	DefaultListen   = "127.0.0.1:1883"
	DefaultWorkers  = 4
	DefaultQueueLen = 64
	maxWorkers      = 64
	maxQueueLen     = 4096
	maxNameLen      = 64
)

// Config is the runtime configuration of the device bus. It is decoded from
// the [bus] section and its [[bus.device]] tables (see README.md); the TOML
// key of each field is given in brackets. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// Mode is embedded or external [mode].
	Mode Mode

	// StoreID names the store in every topic: store/{StoreID}/devices/...
	// Not a [bus] key: the daemon copies [agent] store_id.
	StoreID string

	// Purposes are the names of the purposes of the policy in force. Not a
	// [bus] key: the daemon copies them from the agent's policy, so that
	// Validate can refuse a device whose purpose does not exist.
	Purposes []string

	// Workers is how many goroutines answer devices [workers]. Messages of
	// one device always go to the same worker, so a kiosk's events are
	// recorded in the order it sent them.
	Workers int
	// QueueLen is how many messages may wait for each worker [queue_len].
	// When a worker's queue is full, new messages for it are dropped and
	// counted in Stats.Dropped.
	QueueLen int

	// Embedded configures the broker inside the agent [bus.embedded].
	Embedded EmbeddedConfig
	// External configures the connection to the store's broker
	// [bus.external].
	External ExternalConfig

	// Devices are the devices that may use the bus [[bus.device]].
	Devices []DeviceConfig
}

// EmbeddedConfig configures the broker inside the agent.
type EmbeddedConfig struct {
	// Listen is the TCP address devices connect to [listen]. A port of 0
	// picks a free one (tests); Bus.Addr tells which.
	Listen string
	// TLSCertFile and TLSKeyFile are a PEM certificate and key
	// [tls_cert_file, tls_key_file]. Both or neither; required when Listen
	// is not a loopback address. The key file must be readable by its owner
	// only.
	TLSCertFile string
	TLSKeyFile  string
}

// ExternalConfig configures the agent's connection to the store's broker.
type ExternalConfig struct {
	// Broker is the broker's URL [broker]: tcp://host:1883 (or mqtt://) on
	// loopback, ssl://host:8883 (or tls://, mqtts://) anywhere.
	Broker string
	// ClientID is the agent's MQTT client id [client_id]. Required: the
	// broker's ACLs name it.
	ClientID string
	// Username and PasswordFile are the agent's credentials [username,
	// password_file]. The file holds the password alone, a trailing newline
	// allowed, and must be readable by its owner only.
	Username     string
	PasswordFile string
	// CAFile is a PEM bundle of the CAs that sign the broker's certificate
	// [ca_file]. Empty means the system's roots.
	CAFile string
}

// DeviceConfig is one device.
type DeviceConfig struct {
	// ID is the device's id [id]: the {device} of its topics and, in
	// embedded mode, the MQTT client id it must connect with. 1 to 64 of
	// A-Z a-z 0-9 _ -. It is never a customer identifier.
	ID string
	// Kind is beacon, speaker or kiosk [kind].
	Kind DeviceKind
	// Purpose is the purpose the device serves [purpose]: identify answers
	// hold only what this purpose may see, and its events not mapped by the
	// policy are recorded under it.
	Purpose string
	// Username is the MQTT username the device connects with [username].
	// Embedded mode only.
	Username string
	// PasswordFile [password_file] or PasswordEnv [password_env] says where
	// the device's password is: a file readable by its owner only, or the
	// name of an environment variable. Exactly one, embedded mode only. A
	// password is never written in the config itself.
	PasswordFile string
	PasswordEnv  string
}

// DefaultConfig returns the defaults: an embedded broker on loopback.
func DefaultConfig() Config {
	return Config{
		Mode:     ModeEmbedded,
		Workers:  DefaultWorkers,
		QueueLen: DefaultQueueLen,
		Embedded: EmbeddedConfig{Listen: DefaultListen},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.QueueLen == 0 {
		c.QueueLen = d.QueueLen
	}
	if c.Mode == ModeEmbedded && c.Embedded.Listen == "" {
		c.Embedded.Listen = d.Embedded.Listen
	}
	return c
}

// ConfigError is a bad value in the bus config. Key is the full TOML key,
// such as "bus.device[2].purpose", so that the loader can point at the file
// and line. It never holds a password.
type ConfigError struct {
	Key     string
	Problem string
}

// Error returns "<key> <problem>".
func (e *ConfigError) Error() string { return e.Key + " " + e.Problem }

func bad(key, format string, args ...any) error {
	return &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// Validate reports every bad field of c as it will be used, that is after
// zero fields took their defaults. The result joins one *ConfigError per
// bad field; use errors.As to get the first. It reads no file: New does,
// and reports a missing or unreadable secret with its key too.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !namePattern.MatchString(c.StoreID) {
		errs = append(errs, bad("agent.store_id", "%q must be 1 to %d of A-Z a-z 0-9 _ - to name topics", c.StoreID, maxNameLen))
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		errs = append(errs, bad("bus.workers", "%d out of range 1 to %d", c.Workers, maxWorkers))
	}
	if c.QueueLen < 1 || c.QueueLen > maxQueueLen {
		errs = append(errs, bad("bus.queue_len", "%d out of range 1 to %d", c.QueueLen, maxQueueLen))
	}
	switch c.Mode {
	case ModeEmbedded:
		errs = append(errs, c.Embedded.errors()...)
		errs = append(errs, c.External.unusedErrors()...)
	case ModeExternal:
		errs = append(errs, c.External.errors()...)
		errs = append(errs, c.Embedded.unusedErrors()...)
	default:
		errs = append(errs, bad("bus.mode", "%q unknown: use embedded or external", c.Mode))
	}
	errs = append(errs, c.deviceErrors()...)
	return errors.Join(errs...)
}

func (e EmbeddedConfig) errors() []error {
	var errs []error
	host, port, err := net.SplitHostPort(e.Listen)
	if err != nil || !validPort(port) {
		return append(errs, bad("bus.embedded.listen", "%q is not host:port", e.Listen))
	}
	if (e.TLSCertFile == "") != (e.TLSKeyFile == "") {
		errs = append(errs, bad("bus.embedded.tls_cert_file", "and tls_key_file go together: set both or neither"))
	}
	// Devices send their passwords in the CONNECT packet and the agent
	// answers with customers' attributes: on loopback only this machine
	// sees them, anywhere else the store network would, so off loopback
	// the broker speaks TLS only.
	if !isLoopback(host) && e.TLSCertFile == "" {
		errs = append(errs, bad("bus.embedded.tls_cert_file",
			"required: listen %q is not a loopback address, and device passwords and customer answers must not cross the store network in clear", e.Listen))
	}
	return errs
}

func (e EmbeddedConfig) unusedErrors() []error {
	var errs []error
	for key, v := range map[string]string{"listen": e.Listen, "tls_cert_file": e.TLSCertFile, "tls_key_file": e.TLSKeyFile} {
		if v != "" {
			errs = append(errs, bad("bus.embedded."+key, "is only used in embedded mode"))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// brokerSchemes are the URL schemes paho dials, by whether they are TLS.
var brokerSchemes = map[string]bool{"tcp": false, "mqtt": false, "ssl": true, "tls": true, "mqtts": true}

func (e ExternalConfig) errors() []error {
	var errs []error
	u, err := url.Parse(e.Broker)
	tlsScheme, known := false, false
	if err == nil {
		tlsScheme, known = brokerSchemes[u.Scheme]
	}
	switch {
	case e.Broker == "":
		errs = append(errs, bad("bus.external.broker", "required in external mode"))
	case err != nil || !known || u.Hostname() == "" || !validPort(u.Port()) || u.User != nil || (u.Path != "" && u.Path != "/"):
		errs = append(errs, bad("bus.external.broker", "%q is not scheme://host:port with scheme tcp, mqtt, ssl, tls or mqtts", e.Broker))
	case !tlsScheme && !isLoopback(u.Hostname()):
		// The same reason as for the embedded listener: answers carry
		// customers' attributes and the agent's password.
		errs = append(errs, bad("bus.external.broker", "%q must use ssl://, tls:// or mqtts://: it is not a loopback address, and customer answers must not cross the store network in clear", e.Broker))
	case e.CAFile != "" && !tlsScheme:
		errs = append(errs, bad("bus.external.ca_file", "needs a TLS broker URL (ssl://, tls:// or mqtts://)"))
	}
	if !namePattern.MatchString(e.ClientID) {
		errs = append(errs, bad("bus.external.client_id", "%q must be 1 to %d of A-Z a-z 0-9 _ -", e.ClientID, maxNameLen))
	}
	if e.PasswordFile != "" && e.Username == "" {
		errs = append(errs, bad("bus.external.password_file", "needs a username"))
	}
	if len(e.Username) > 256 || strings.ContainsFunc(e.Username, notPrintable) {
		errs = append(errs, bad("bus.external.username", "must be at most 256 printable characters"))
	}
	return errs
}

func (e ExternalConfig) unusedErrors() []error {
	var errs []error
	for _, kv := range [][2]string{{"broker", e.Broker}, {"client_id", e.ClientID}, {"username", e.Username}, {"password_file", e.PasswordFile}, {"ca_file", e.CAFile}} {
		if kv[1] != "" {
			errs = append(errs, bad("bus.external."+kv[0], "is only used in external mode"))
		}
	}
	return errs
}

func (c Config) deviceErrors() []error {
	var errs []error
	if len(c.Devices) > 0 && len(c.Purposes) == 0 {
		errs = append(errs, errors.New("bus: no purposes to check devices against: set Config.Purposes from the policy"))
	}
	ids, users := map[string]int{}, map[string]int{}
	for i, d := range c.Devices {
		key := fmt.Sprintf("bus.device[%d].", i)
		switch j, dup := ids[d.ID]; {
		case !namePattern.MatchString(d.ID):
			errs = append(errs, bad(key+"id", "%q must be 1 to %d of A-Z a-z 0-9 _ -", d.ID, maxNameLen))
		case d.ID == inlineClientID:
			errs = append(errs, bad(key+"id", "%q is reserved for the agent's own client", d.ID))
		case dup:
			errs = append(errs, bad(key+"id", "%q is already bus.device[%d].id", d.ID, j))
		default:
			ids[d.ID] = i
		}
		switch d.Kind {
		case Beacon, Speaker, Kiosk:
		default:
			errs = append(errs, bad(key+"kind", "%q unknown: use beacon, speaker or kiosk", d.Kind))
		}
		switch {
		case d.Purpose == consent.RightsPurpose:
			errs = append(errs, bad(key+"purpose", "%q is the agent's own purpose for consent records", d.Purpose))
		case len(c.Purposes) > 0 && !slices.Contains(c.Purposes, d.Purpose):
			errs = append(errs, bad(key+"purpose", "%q is not a purpose", d.Purpose))
		}
		if c.Mode == ModeEmbedded {
			errs = append(errs, d.credentialErrors(key, users, i)...)
		} else {
			for _, kv := range [][2]string{{"username", d.Username}, {"password_file", d.PasswordFile}, {"password_env", d.PasswordEnv}} {
				if kv[1] != "" {
					errs = append(errs, bad(key+kv[0], "is only used in embedded mode: the store's broker authenticates devices"))
				}
			}
		}
	}
	return errs
}

func (d DeviceConfig) credentialErrors(key string, users map[string]int, i int) []error {
	var errs []error
	switch j, dup := users[d.Username]; {
	case d.Username == "" || len(d.Username) > 256 || strings.ContainsFunc(d.Username, notPrintable):
		errs = append(errs, bad(key+"username", "required: at most 256 printable characters"))
	case dup:
		errs = append(errs, bad(key+"username", "is already bus.device[%d].username", j))
	default:
		users[d.Username] = i
	}
	switch {
	case d.PasswordFile == "" && d.PasswordEnv == "":
		errs = append(errs, bad(key+"password_file", "or password_env is required"))
	case d.PasswordFile != "" && d.PasswordEnv != "":
		errs = append(errs, bad(key+"password_file", "and password_env are exclusive: set one"))
	case d.PasswordEnv != "" && !envPattern.MatchString(d.PasswordEnv):
		errs = append(errs, bad(key+"password_env", "%q is not an environment variable name", d.PasswordEnv))
	}
	return errs
}

func validPort(p string) bool {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return false
		}
	}
	return p != ""
}

// isLoopback reports whether host is "localhost" or a loopback IP. An
// empty host (every interface) is not.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func notPrintable(r rune) bool { return r <= ' ' || r == 0x7f }
