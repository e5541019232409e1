package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Latencies are the histograms with no source to read at scrape time:
// hooks on the paths they measure feed them.
type Latencies struct {
	Identify prometheus.Histogram
	Ack      prometheus.Histogram
}

// NewLatencies makes the two histograms. Identify's buckets span 5 µs to
// 10 ms (the local API promises an answer in under 1 ms); Ack's span 10 ms
// to a minute (the default ack timeout is 10 s).
func NewLatencies() *Latencies {
	return &Latencies{
		Identify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "storeagent_identify_duration_seconds",
			Help:    "Time agent.Identify took, refusals included.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 12),
		}),
		Ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "storeagent_uplink_ack_latency_seconds",
			Help:    "Time from an event batch's send to the central's signed ack.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
}

// ObserveIdentify is the hook for agent.Config.ObserveIdentify. It does
// not allocate.
func (l *Latencies) ObserveIdentify(d time.Duration) { l.Identify.Observe(d.Seconds()) }

// ObserveAck is the hook for uplink.Config.ObserveAck.
func (l *Latencies) ObserveAck(d time.Duration) { l.Ack.Observe(d.Seconds()) }

// Describe implements prometheus.Collector.
func (l *Latencies) Describe(ch chan<- *prometheus.Desc) {
	l.Identify.Describe(ch)
	l.Ack.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *Latencies) Collect(ch chan<- prometheus.Metric) {
	l.Identify.Collect(ch)
	l.Ack.Collect(ch)
}
