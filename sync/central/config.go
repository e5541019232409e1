package central

import (
	"crypto/ed25519"
	"log/slog"
	"net/url"
	"time"

	"github.com/storeagent/storeagent/sync/wire"
)

// Config configures a Central. Fields marked required must be set; the
// others have the defaults their comments give.
type Config struct {
	// Broker is the MQTT broker URL, such as tcp://127.0.0.1:1883 (tcp,
	// ssl, ws or wss). Required by Run; New alone (reports, snapshots to a
	// function) needs no broker.
	Broker string
	// ClientID is the MQTT client id. Default "cdpsim-" + Tenant. The
	// session is persistent, so two centrals must never share one.
	ClientID string
	// Username and Password, when set, authenticate to the broker.
	Username string
	Password string

	// Tenant is the tenant whose uplink the central serves. Required.
	Tenant string
	// Store is the store the control API's changes go to when a request
	// names none. Required.
	Store string

	// Key signs every downlink message. Required.
	Key ed25519.PrivateKey
	// TenantKey keys the identifier hashes of the synthetic customers: the
	// key the agents of the tenant hold. Required, at least 32 bytes.
	TenantKey []byte

	// DataDir holds the journal and the change logs. Required; created
	// with mode 0700 when missing.
	DataDir string

	// Customers is the size of the baseline: N synthetic customers form
	// every store's state at seq 1. Zero means no baseline: the first
	// change has seq 1.
	Customers int
	// Seed varies the synthetic customers.
	Seed uint64
	// ProfileTTL is how long a profile sent by the central stays valid in
	// an agent's cache (the profile change's expires). Default 30 days.
	ProfileTTL time.Duration

	// Pace is the initial pace, in ms, put in every Ack (see SetPace).
	Pace uint64
	// IDsOnly keeps only the messageIds of received events, not their
	// bodies: for long benchmarks. ReadEvents then gives no Event.
	IDsOnly bool
	// SyncWorkers is how many SyncRequests are served at once, each agent
	// always by the same worker. Default 4.
	SyncWorkers int

	// Logger receives the central's logs, scoped with component=cdpsim.
	// Default: slog.Default().
	Logger *slog.Logger

	// Now is the clock; nil means time.Now. Tests set it (a central whose
	// clock is off).
	Now func() time.Time
}

const (
	defaultProfileTTL  = 30 * 24 * time.Hour
	defaultSyncWorkers = 4
)

func (c Config) withDefaults() Config {
	if c.ClientID == "" && wire.ValidID(c.Tenant) {
		c.ClientID = "cdpsim-" + c.Tenant
	}
	if c.ProfileTTL == 0 {
		c.ProfileTTL = defaultProfileTTL
	}
	if c.SyncWorkers == 0 {
		c.SyncWorkers = defaultSyncWorkers
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c and names the first wrong setting.
func (c Config) Validate() error {
	switch {
	case !wire.ValidID(c.Tenant):
		return configError("tenant", "must be 1 to 64 of A-Z a-z 0-9 _ -")
	case !wire.ValidID(c.Store):
		return configError("store", "must be 1 to 64 of A-Z a-z 0-9 _ -")
	case len(c.Key) != ed25519.PrivateKeySize:
		return configError("key", "not an ed25519 private key")
	case len(c.TenantKey) < 32:
		return configError("tenant key", "shorter than 32 bytes")
	case c.DataDir == "":
		return configError("data dir", "missing")
	case c.Customers < 0:
		return configError("customers", "negative")
	case c.ProfileTTL < 0:
		return configError("profile ttl", "negative")
	case c.SyncWorkers < 0 || c.SyncWorkers > 64:
		return configError("sync workers", "must be 1 to 64")
	}
	if c.Broker != "" {
		u, err := url.Parse(c.Broker)
		if err != nil || u.Host == "" {
			return configError("broker", "not a URL such as tcp://127.0.0.1:1883")
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return configError("broker", "scheme must be tcp, ssl, ws or wss")
		}
	}
	return nil
}
