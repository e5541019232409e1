package support

import (
	"net/url"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/devices/localapi"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
)

// Link states of a status read without the daemon.
const (
	LinkUnknown  = "unknown"  // sync is on, but only the daemon knows the link
	LinkDisabled = "disabled" // sync is off in the config
)

// StoreStatus is the status of a stopped agent, read from its store and
// its config: the outbox, the cache, the change cursor, the store file,
// and the configured scanners (not connected). What only a running daemon
// knows (uptime, the link, counters, rejects) is left out, and the link's
// state is "unknown", or "disabled" when the config has sync off.
func StoreStatus(cfg *firmwareconfig.Config, db *store.DB, ag *agent.Agent, now time.Time) (localapi.Status, error) {
	out := localapi.Status{
		Kind: cfg.Kind, Tenant: cfg.Agent.Tenant, StoreID: cfg.Agent.StoreID, AgentID: cfg.Agent.ID, Now: now,
		Link: LinkOf(cfg),
	}
	ob, err := db.OutboxStats()
	if err != nil {
		return out, err
	}
	out.Outbox = OutboxStatus(ob, now)
	cache, err := ag.CacheStats()
	if err != nil {
		return out, err
	}
	out.Cache = localapi.CacheStatus{Profiles: cache.Profiles, Identifiers: cache.Identifiers, MaxProfiles: cache.MaxProfiles}
	cur, err := ag.Cursor()
	if err != nil {
		return out, err
	}
	out.Changes = localapi.ChangesStatus{Cursor: cur}
	size, _ := db.FileSize()
	out.Store = localapi.StoreStatus{Path: db.Path(), FileBytes: size}
	for _, s := range cfg.Scanners {
		out.Scanners = append(out.Scanners, localapi.ScannerStatus{Name: s.Name, Path: s.Path})
	}
	return out, nil
}

// LinkOf is what the config alone says of the link: disabled, or unknown
// with the broker's host and port.
func LinkOf(cfg *firmwareconfig.Config) localapi.LinkStatus {
	if !cfg.Sync.Enabled {
		return localapi.LinkStatus{State: LinkDisabled}
	}
	return localapi.LinkStatus{State: LinkUnknown, Broker: BrokerAddr(cfg.Sync.Broker)}
}

// BrokerAddr is the host:port of a broker URL, never its user info.
func BrokerAddr(broker string) string {
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Host
}
