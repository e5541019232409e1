// Package metrics exposes the daemon's state to Prometheus: a Collector
// that reads the same sources as the local API's status page at scrape
// time, two latency histograms fed by hooks, and Serve, which answers
// GET /metrics on a listener of its own.
//
// # Basics
//
// Nothing here runs on a hot path except the two hooks ([Latencies]),
// which only add to a histogram. Every other series is read when scraped:
// counters the parts already keep become Prometheus counters, depths
// become gauges.
//
// # Series
//
// Outbox (store):
//   - storeagent_outbox_records{class}: queued records; class is critical or telemetry
//   - storeagent_outbox_bytes{class}: their stored bytes
//   - storeagent_outbox_oldest_age_seconds: age of the oldest queued record of
//     either class (the store keeps one oldest record, not one per class); 0 when empty
//   - storeagent_outbox_max_records, storeagent_outbox_max_bytes: the configured bounds
//   - storeagent_outbox_shed_total: telemetry shed to make room (since the file was made)
//
// Uplink (sync; these are absent when sync is off, and the histogram stays empty):
//   - storeagent_uplink_batches_sent_total, storeagent_uplink_batches_acked_total,
//     storeagent_uplink_batches_resent_total
//   - storeagent_uplink_events_sent_total, storeagent_uplink_events_acked_total
//   - storeagent_uplink_batches_in_flight
//   - storeagent_uplink_ack_latency_seconds: histogram, from a batch's last send to its signed ack
//
// Link and changes:
//   - storeagent_link_state{state}: 1 for the state the link is in, 0 for the
//     others; state is disabled, disconnected or connected
//   - storeagent_link_connects_total
//   - storeagent_changes_cursor: the last change applied
//   - storeagent_changes_lag: changes seen from the central and not yet applied
//     (absent when sync is off)
//
// Identify and rejects:
//   - storeagent_identify_duration_seconds: histogram of agent.Identify, refusals included
//   - storeagent_rejects_total{source,reason}: inputs refused. source is identify
//     (reason invalid, blocked), outbox (outbox_full), downlink (unsigned,
//     bad_signature, ...) or bus (the devices/bus error codes)
//
// Scanners, one port label per [[scanner]] name in the config:
//   - storeagent_scanner_connected{port}
//   - storeagent_scanner_frames_total{port}: good frames read
//   - storeagent_scanner_rejects_total{port,reason}: frames refused (noise, too_long, half_frame, ...)
//   - storeagent_scanner_open_failures_total{port}, storeagent_scanner_dropped_total{port}
//
// The Go runtime's go_* and the process's process_* series are served too.
//
// # Caveats
//
// It must never put an identifier, a name, an address or any other value
// a customer typed or scanned into a label or a value (DESIGN.md
// invariant 10): every label value is a fixed enum of this program or a
// scanner name from the config. The broker address and the last error
// text, which status shows to a technician, are left out on purpose. The
// tests scrape a daemon that has seen a known customer's loyalty number,
// e-mail and name, and fail if any appears.
//
// Serve answers anyone who can reach its listener; the config allows
// only loopback addresses for it.
package metrics
