package doctor

import (
	"fmt"
	"time"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// outboxCheck tells a queue that drains from one that is stuck: old events
// while the link is up and the central does not ack, or no link at all.
func outboxCheck(env *Env) localapi.Check {
	st := env.Status
	if st == nil {
		return skip("outbox", "not checked: neither the daemon nor the store could be read")
	}
	o, now := st.Outbox, env.Now()
	if o.Records == 0 {
		return ok("outbox", "empty: every event has reached the central")
	}
	age := time.Duration(o.OldestAgeSeconds) * time.Second
	waiting := fmt.Sprintf("%d events (%s) wait, the oldest %s old", o.Records, support.Bytes(o.Bytes), support.Duration(age))
	c := outboxDrain(env, waiting, age, now)
	if pct := fullness(o); pct >= FullWarnPercent {
		c.Status = worse(c.Status, localapi.CheckWarn)
		c.Details = append(c.Details, fmt.Sprintf("the outbox is %d%% full: past it telemetry is shed, then events are refused", pct))
	}
	return c
}

func outboxDrain(env *Env, waiting string, age time.Duration, now time.Time) localapi.Check {
	st := env.Status
	link := st.Link.State
	switch {
	case link == support.LinkDisabled:
		return warn("outbox", waiting+": sync is disabled, nothing drains the outbox",
			"a store synced with a central needs [sync] in the config; a standalone device may ignore this")
	case !env.Running:
		if age > StuckAfter {
			return warn("outbox", waiting+"; storeagent is not running", hintStart)
		}
		return ok("outbox", waiting+"; storeagent is not running")
	case link != "connected":
		c := warn("outbox", waiting+": the link to the central is "+link, "see the broker and tls checks")
		if st.Link.LastError != "" {
			c.Details = []string{"last link error " + support.Ago(st.Link.LastErrorAt, now) + ": " + st.Link.LastError}
		}
		return c
	}
	ackAge := now.Sub(st.Outbox.LastAck)
	if age > StuckAfter && (st.Outbox.LastAck.IsZero() || ackAge > StuckAfter) {
		return fail("outbox", waiting+" with the link up, and the last ack was "+support.Ago(st.Outbox.LastAck, now)+": the outbox is stuck",
			"the central is not acknowledging: check sync.central_keys and the agent's log (storectl bundle)")
	}
	return ok("outbox", waiting+", draining (last ack "+support.Ago(st.Outbox.LastAck, now)+")")
}

// fullness is how full the outbox is, by count or by bytes, in percent.
func fullness(o localapi.OutboxStatus) int {
	pct := 0
	if o.MaxRecords > 0 {
		pct = int(o.Records * 100 / o.MaxRecords)
	}
	if o.MaxBytes > 0 {
		pct = max(pct, int(o.Bytes*100/o.MaxBytes))
	}
	return pct
}

// cacheCheck is the kiosk that "doesn't know anyone": an empty cache, or a
// daemon that has answered every identify with unknown.
func cacheCheck(env *Env) localapi.Check {
	st := env.Status
	if st == nil {
		return skip("cache", "not checked: neither the daemon nor the store could be read")
	}
	c := st.Cache
	if c.Profiles == 0 {
		return warn("cache", "the cache holds no profile: every scan is an unknown customer", emptyCacheHint(env))
	}
	summary := fmt.Sprintf("%d profiles, %d identifiers cached", c.Profiles, c.Identifiers)
	known, unknown := st.Counters["identify_known"], st.Counters["identify_unknown"]
	if env.Running && known == 0 && unknown >= 10 {
		return warn("cache", summary+fmt.Sprintf(", but none of the %d identifies since start found a customer", unknown),
			"the tenant key may not be the central's (agent.tenant_key_file), or the identifier rules differ from the central's")
	}
	return ok("cache", summary)
}

func emptyCacheHint(env *Env) string {
	st := env.Status
	switch {
	case st.Link.State == support.LinkDisabled:
		return "profiles come only from the central: enable [sync] in the config"
	case env.Running && st.Link.State != "connected":
		return "the link to the central is down: see the broker and tls checks"
	case st.Changes.Cursor == 0:
		return "the central has sent nothing yet: storectl sync resync"
	}
	return "the central's snapshot holds no customer for this store: ask the central's team"
}
