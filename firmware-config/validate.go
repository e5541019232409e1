package firmwareconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/storeagent/storeagent/agent/ident"
)

// Kinds are the device kinds with a profile.
var Kinds = []string{"pos", "kiosk", "speaker", "gateway"}

// wireID is what PROTOCOL.md allows in a topic segment.
var wireID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// checker collects every problem rather than stopping at the first: a
// technician fixing a file wants the whole list.
type checker struct{ errs Errors }

func (c *checker) add(key, format string, args ...any) {
	c.errs = append(c.errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.add(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func (c *checker) id(key, v string) {
	if !wireID.MatchString(v) {
		c.add(key, "%q must be 1 to 64 of A-Z a-z 0-9 _ -", v)
	}
}

func (c *checker) between(key string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.add(key, "%d is out of range %d..%d", v, lo, hi)
	}
}

func (c *checker) duration(key string, d Duration, lo, hi time.Duration) {
	if d.D() < lo || d.D() > hi {
		c.add(key, "%s is out of range %s..%s", d.D(), lo, hi)
	}
}

// Validate checks every value and returns Errors naming each bad key.
func (cfg *Config) Validate() error {
	var c checker
	c.oneOf("kind", cfg.Kind, Kinds...)
	c.id("agent.tenant", cfg.Agent.Tenant)
	c.id("agent.store_id", cfg.Agent.StoreID)
	c.id("agent.id", cfg.Agent.ID)
	cfg.Agent.validate(&c)
	if err := cfg.Ident.Validate(); err != nil {
		var re *ident.RuleError
		if errors.As(err, &re) {
			c.add("identifiers."+re.Field, "%s", re.Msg)
		} else {
			c.add("identifiers", "%v", err)
		}
	}
	cfg.policyCheck(&c)
	cfg.Store.validate(&c)
	cfg.Sync.validate(&c)
	cfg.apiCheck(&c)
	cfg.scannerCheck(&c)
	cfg.busCheck(&c)
	c.oneOf("log.format", cfg.Log.Format, "text", "json")
	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	cfg.Metrics.validate(&c)
	if len(c.errs) > 0 {
		return c.errs
	}
	return nil
}

func (a *AgentSection) validate(c *checker) {
	c.between("agent.max_profiles", int64(a.MaxProfiles), 100, 100_000_000)
	c.duration("agent.local_ttl", a.LocalTTL, time.Hour, 365*24*time.Hour)
	c.duration("agent.pending_max_age", a.PendingMaxAge, time.Minute, 7*24*time.Hour)
}

func (cfg *Config) policyCheck(c *checker) {
	p := cfg.Policy.Policy()
	if err := p.Validate(); err != nil {
		c.add("policy", "%s", strings.TrimPrefix(err.Error(), "policy: "))
	}
}

func (s *SyncSection) validate(c *checker) {
	if !s.Enabled {
		return
	}
	if s.Broker == "" {
		c.add("sync.broker", "required when sync.enabled is true (tcp://host:1883 or ssl://host:8883)")
	} else if !strings.HasPrefix(s.Broker, "tcp://") && !strings.HasPrefix(s.Broker, "ssl://") {
		c.add("sync.broker", "%q: want tcp://host:port or ssl://host:port", s.Broker)
	}
	if len(s.CentralKeys) == 0 {
		c.add("sync.central_keys", "at least one central public key file is required: downlink messages are applied only when signed")
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		c.add("sync.cert_file", "set cert_file and key_file together, or neither")
	}
	c.duration("sync.keepalive", s.KeepAlive, 5*time.Second, 10*time.Minute)
	c.duration("sync.backoff_min", s.BackoffMin, 10*time.Millisecond, time.Minute)
	c.duration("sync.backoff_max", s.BackoffMax, s.BackoffMin.D(), time.Hour)
	c.between("sync.batch_events", int64(s.BatchEvents), 1, 10_000)
	c.between("sync.window", int64(s.Window), 1, 256)
	c.duration("sync.ack_timeout", s.AckTimeout, time.Second, 10*time.Minute)
	c.duration("sync.max_pace", s.MaxPace, 0, 10*time.Minute)
}

func (s *StoreSection) validate(c *checker) {
	c.between("store.initial_mmap_mb", int64(s.InitialMmapMB), 1, 1024)
	c.between("store.max_file_mb", int64(s.MaxFileMB), 0, 1<<20)
	c.duration("store.lock_timeout", s.LockTimeout, 10*time.Millisecond, time.Minute)
	// Invariant 5 bounds how long erased bytes may stay in the file.
	c.duration("store.compact_within", s.CompactWithin, time.Minute, 24*time.Hour)
	c.between("store.audit_max_entries", int64(s.AuditMaxEntries), 100, 10_000_000)
	o := s.Outbox
	c.between("store.outbox.max_records", int64(o.MaxRecords), 100, 100_000_000)
	c.between("store.outbox.max_mb", int64(o.MaxMB), 1, 1<<20)
	c.between("store.outbox.reserved_percent", int64(o.ReservedPercent), 1, 90)
	c.between("store.outbox.max_event_kb", int64(o.MaxEventKB), 1, 256)
	if s.MaxFileMB > 0 && uint64(s.MaxFileMB) < o.MaxMB {
		c.add("store.max_file_mb", "%d is below store.outbox.max_mb %d: the outbox could never fill", s.MaxFileMB, o.MaxMB)
	}
	if o.MaxEventKB > 0 && uint64(o.MaxEventKB)<<10 > o.MaxMB<<20*uint64(o.ReservedPercent)/100 {
		c.add("store.outbox.max_event_kb", "%d KiB does not fit in the reserved room", o.MaxEventKB)
	}
}

func (m *MetricsSection) validate(c *checker) {
	if !m.Enabled {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		c.add("metrics.listen", "%q must be host:port, such as \"127.0.0.1:9780\"", m.Listen)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		c.add("metrics.listen", "%q needs a port from 0 to 65535", m.Listen)
		return
	}
	if !loopback(host) {
		c.add("metrics.listen", "%q is not loopback: metrics are served on this device only (127.0.0.1 or [::1])", m.Listen)
	}
}

// loopback reports whether host names only the loopback interface: an
// empty host is every interface, and a name other than localhost could
// resolve anywhere.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// keyLines maps each dotted key in doc to the line it is written on, so a
// validation error can point at it. Array tables index their entries:
// scanner.0.path.
func keyLines(doc []byte) map[string]int {
	lines := map[string]int{}
	p := unstable.Parser{}
	p.Reset(doc)
	var table string
	arrays := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = dotted(e.Key())
			lines[table] = lineOf(&p, e)
		case unstable.ArrayTable:
			name := dotted(e.Key())
			table = fmt.Sprintf("%s.%d", name, arrays[name])
			arrays[name]++
			lines[table] = lineOf(&p, e)
		case unstable.KeyValue:
			key := dotted(e.Key())
			if table != "" {
				key = table + "." + key
			}
			lines[key] = lineOf(&p, e)
		}
	}
	return lines
}

func dotted(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

func lineOf(p *unstable.Parser, n *unstable.Node) int {
	for it := n.Key(); it.Next(); {
		k := it.Node()
		if k.Raw.Length > 0 {
			return p.Shape(k.Raw).Start.Line
		}
		if len(k.Data) > 0 {
			return p.Shape(p.Range(k.Data)).Start.Line
		}
	}
	return 0
}
