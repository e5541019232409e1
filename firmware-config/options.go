package firmwareconfig

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/sync/cdp"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/uplink"
	"github.com/storeagent/storeagent/sync/wire"
)

// Policy is the section as the agent's policy.
func (p PolicySection) Policy() consent.Policy {
	return consent.Policy{Purposes: p.Purposes, Events: p.Events, Default: p.Default}
}

// AgentConfig is the domain core's config.
func (c *Config) AgentConfig(tenantKey []byte, log *slog.Logger) agent.Config {
	a := c.Agent
	return agent.Config{
		Tenant: a.Tenant, StoreID: a.StoreID, AgentID: a.ID, TenantKey: tenantKey,
		Ident: c.Ident, Policy: c.Policy.Policy(), CriticalEvents: a.CriticalEvents,
		Identifying: nilIfEmpty(a.IdentifyingProperties), MaxProfiles: a.MaxProfiles,
		LocalTTL: a.LocalTTL.D(), PendingMaxAge: a.PendingMaxAge.D(), CompactWithin: c.Store.CompactWithin.D(),
		Logger: log,
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// SyncConfig is the session's config, with the central's keys loaded.
func (c *Config) SyncConfig(version string) (cdp.Config, error) {
	s := c.Sync
	var keys []ed25519.PublicKey
	for _, path := range s.CentralKeys {
		k, err := wire.LoadPublicKey(path)
		if err != nil {
			return cdp.Config{}, fmt.Errorf("sync.central_keys: %w", err)
		}
		keys = append(keys, k)
	}
	v, err := wire.NewVerifier(keys...)
	if err != nil {
		return cdp.Config{}, fmt.Errorf("sync.central_keys: %w", err)
	}
	return cdp.Config{
		Scope:    wire.Scope{Tenant: c.Agent.Tenant, Store: c.Agent.StoreID, Agent: c.Agent.ID},
		Verifier: v,
		Version:  version,
		Link: link.Config{
			Broker: s.Broker, ClientID: s.ClientID, Username: s.Username,
			PasswordFile: s.PasswordFile, PasswordEnv: s.PasswordEnv,
			CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile, ServerName: s.ServerName,
			KeepAlive: s.KeepAlive.D(), BackoffMin: s.BackoffMin.D(), BackoffMax: s.BackoffMax.D(),
		},
		Uplink: uplink.Config{MaxEvents: s.BatchEvents, Window: s.Window, AckTimeout: s.AckTimeout.D(), MaxPace: s.MaxPace.D()},
	}, nil
}
