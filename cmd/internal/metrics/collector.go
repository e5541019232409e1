package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/devices/bus"
	"github.com/storeagent/storeagent/devices/scanner"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/cdp"
)

// Outbox is the subset of *store.DB a scrape reads.
type Outbox interface {
	OutboxStats() (store.OutboxStats, error)
}

// Agent is the subset of *agent.Agent a scrape reads.
type Agent interface {
	Stats() agent.Counters
	Cursor() (uint64, error)
}

// Link is the subset of *cdp.Sync a scrape reads.
type Link interface {
	Status() cdp.Status
}

// Bus is the subset of *bus.Bus a scrape reads.
type Bus interface {
	Stats() bus.Stats
}

// Scanner is the subset of *scanner.Scanner a scrape reads.
type Scanner interface {
	Stats() scanner.Stats
}

var (
	_ Outbox  = (*store.DB)(nil)
	_ Agent   = (*agent.Agent)(nil)
	_ Link    = (*cdp.Sync)(nil)
	_ Bus     = (*bus.Bus)(nil)
	_ Scanner = (*scanner.Scanner)(nil)
)

// Sources are the parts of the daemon a scrape reads. Leave Link and Bus
// nil (a nil interface, not a nil pointer in one) when they are off.
type Sources struct {
	Outbox   Outbox // required
	Agent    Agent  // required
	Link     Link
	Bus      Bus
	Scanners []Scanner
	Now      func() time.Time // default time.Now
}

// Collector reads Sources at each scrape. It is safe for concurrent
// scrapes.
type Collector struct {
	src Sources
}

// NewCollector makes a collector over src.
func NewCollector(src Sources) *Collector {
	if src.Now == nil {
		src.Now = time.Now
	}
	return &Collector{src: src}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	outboxRecords   = desc("storeagent_outbox_records", "Records queued for the central, by class.", "class")
	outboxBytes     = desc("storeagent_outbox_bytes", "Stored bytes queued for the central, by class.", "class")
	outboxOldestAge = desc("storeagent_outbox_oldest_age_seconds", "Age of the class's oldest queued record; 0 when the class has none queued.", "class")
	outboxMaxRecs   = desc("storeagent_outbox_max_records", "The outbox's configured bound on records.")
	outboxMaxBytes  = desc("storeagent_outbox_max_bytes", "The outbox's configured bound on bytes.")
	outboxShed      = desc("storeagent_outbox_shed_total", "Telemetry records shed to make room, since the database file was made.")

	batchesSent     = desc("storeagent_uplink_batches_sent_total", "Event batches sent to the central.")
	batchesAcked    = desc("storeagent_uplink_batches_acked_total", "Event batches the central acked.")
	batchesResent   = desc("storeagent_uplink_batches_resent_total", "Event batches sent again after an ack timeout or a reconnect.")
	eventsSent      = desc("storeagent_uplink_events_sent_total", "Events sent to the central.")
	eventsAcked     = desc("storeagent_uplink_events_acked_total", "Events the central acked.")
	batchesInFlight = desc("storeagent_uplink_batches_in_flight", "Event batches sent and not yet acked.")

	linkState    = desc("storeagent_link_state", "1 for the state the link to the central is in, 0 for the others.", "state")
	linkConnects = desc("storeagent_link_connects_total", "Connections made to the broker.")
	cursor       = desc("storeagent_changes_cursor", "Sequence number of the last change from the central applied.")
	lag          = desc("storeagent_changes_lag", "Changes seen from the central and not yet applied.")

	rejects = desc("storeagent_rejects_total", "Inputs refused, by source and reason.", "source", "reason")

	scannerConnected    = desc("storeagent_scanner_connected", "1 when the scanner's port is open.", "port")
	scannerFrames       = desc("storeagent_scanner_frames_total", "Good frames read from the scanner.", "port")
	scannerRejects      = desc("storeagent_scanner_rejects_total", "Frames refused, by reason.", "port", "reason")
	scannerOpenFailures = desc("storeagent_scanner_open_failures_total", "Failed attempts to open the scanner's port.", "port")
	scannerDropped      = desc("storeagent_scanner_dropped_total", "Good frames lost because the handler fell behind.", "port")
)

// linkStates are the values of storeagent_link_state's state label.
var linkStates = []string{"disabled", "disconnected", "connected"}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		outboxRecords, outboxBytes, outboxOldestAge, outboxMaxRecs, outboxMaxBytes, outboxShed,
		batchesSent, batchesAcked, batchesResent, eventsSent, eventsAcked, batchesInFlight,
		linkState, linkConnects, cursor, lag, rejects,
		scannerConnected, scannerFrames, scannerRejects, scannerOpenFailures, scannerDropped,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A source that fails is
// reported as an invalid metric; the others are still collected.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collectOutbox(ch)
	c.collectAgent(ch)
	c.collectLink(ch)
	if c.src.Bus != nil {
		for code, n := range c.src.Bus.Stats().Rejects {
			ch <- counter(rejects, n, "bus", string(code))
		}
	}
	for _, sc := range c.src.Scanners {
		collectScanner(ch, sc.Stats())
	}
}

func (c *Collector) collectOutbox(ch chan<- prometheus.Metric) {
	ob, err := c.src.Outbox.OutboxStats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxRecords, err)
		return
	}
	ch <- gauge(outboxRecords, float64(ob.Critical.Records), "critical")
	ch <- gauge(outboxRecords, float64(ob.Telemetry.Records), "telemetry")
	ch <- gauge(outboxBytes, float64(ob.Critical.Bytes), "critical")
	ch <- gauge(outboxBytes, float64(ob.Telemetry.Bytes), "telemetry")
	for _, cl := range []struct {
		name string
		st   store.ClassStats
	}{{"critical", ob.Critical}, {"telemetry", ob.Telemetry}} {
		var age float64
		if cl.st.OldestAt > 0 && cl.st.Records > 0 {
			age = max(0, c.src.Now().Sub(time.UnixMilli(cl.st.OldestAt)).Seconds())
		}
		ch <- gauge(outboxOldestAge, age, cl.name)
	}
	ch <- gauge(outboxMaxRecs, float64(ob.Limits.MaxRecords))
	ch <- gauge(outboxMaxBytes, float64(ob.Limits.MaxBytes))
	ch <- counter(outboxShed, ob.Shed)
	ch <- counter(rejects, ob.Rejected, "outbox", "outbox_full")
}

func (c *Collector) collectAgent(ch chan<- prometheus.Metric) {
	st := c.src.Agent.Stats()
	ch <- counter(rejects, st["identify_invalid"], "identify", "invalid")
	ch <- counter(rejects, st["identify_blocked"], "identify", "blocked")
}

func (c *Collector) collectLink(ch chan<- prometheus.Metric) {
	cur, err := c.src.Agent.Cursor()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(cursor, err)
	} else {
		ch <- gauge(cursor, float64(cur))
	}
	state := "disabled"
	if c.src.Link != nil {
		st := c.src.Link.Status()
		state = "disconnected"
		if st.Link.Connected {
			state = "connected"
		}
		up := st.Uplink
		ch <- counter(batchesSent, up.BatchesSent)
		ch <- counter(batchesAcked, up.BatchesAcked)
		ch <- counter(batchesResent, up.BatchesResent)
		ch <- counter(eventsSent, up.EventsSent)
		ch <- counter(eventsAcked, up.EventsAcked)
		ch <- gauge(batchesInFlight, float64(up.InFlight))
		ch <- counter(linkConnects, st.Link.Connects)
		if err == nil {
			ch <- gauge(lag, float64(max(st.Downlink.Head, cur)-cur))
		}
		for reason, n := range st.Downlink.Rejected {
			ch <- counter(rejects, n, "downlink", reason)
		}
	}
	for _, s := range linkStates {
		ch <- gauge(linkState, boolf(s == state), s)
	}
}

func collectScanner(ch chan<- prometheus.Metric, st scanner.Stats) {
	ch <- gauge(scannerConnected, boolf(st.Connected), st.Port)
	ch <- counter(scannerFrames, st.Frames, st.Port)
	ch <- counter(scannerOpenFailures, st.OpenFailures, st.Port)
	ch <- counter(scannerDropped, st.Dropped, st.Port)
	for r, n := range st.Rejects {
		if r != scanner.Accepted {
			ch <- counter(scannerRejects, n, st.Port, r.String())
		}
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
