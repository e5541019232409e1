package main

// figures are the numbers `make bench` ends with. Keep every earlier one:
// a regression must show at a glance. Ratios compare against a baseline
// measured in the same run.
var figures = []figure{
	// store: durable outbox appends (issue 3).
	{name: "outbox.append.naive", unit: "events/s", op: ">=", target: 200, bench: "BenchmarkOutboxAppend/naive", metric: "events/s"},
	{name: "outbox.append.1w.vs_naive", unit: "x", op: ">=", target: 0.8, bench: "BenchmarkOutboxAppend/group_1w", base: "BenchmarkOutboxAppend/naive", metric: "events/s"},
	{name: "outbox.append.8w.vs_naive", unit: "x", op: ">=", target: 4, bench: "BenchmarkOutboxAppend/group_8w", base: "BenchmarkOutboxAppend/naive", metric: "events/s"},
	{name: "outbox.append.64w.vs_naive", unit: "x", op: ">=", target: 20, bench: "BenchmarkOutboxAppend/group_64w", base: "BenchmarkOutboxAppend/naive", metric: "events/s"},
	{name: "outbox.append.64w.vs_bolt_batch", unit: "x", op: ">=", target: 1, bench: "BenchmarkOutboxAppend/group_64w", base: "BenchmarkOutboxAppend/bolt_batch_64w", metric: "events/s"},
	{name: "outbox.disk_per_300B_event", unit: "bytes", op: "<=", target: 512, bench: "BenchmarkOutboxDiskBytes", metric: "disk-B/event"},
	{name: "outbox.backlog_1m.heap_growth", unit: "MiB", op: "<=", target: 16, bench: "BenchmarkOutboxBacklogHeap", metric: "heap-MiB"},

	// agent: identify over one million cached profiles (issue 4).
	{name: "identify.1m.p50", unit: "µs", op: "<=", target: 20, bench: "BenchmarkIdentify1M", metric: "p50-µs"},
	{name: "identify.1m.p99", unit: "µs", op: "<=", target: 50, bench: "BenchmarkIdentify1M", metric: "p99-µs"},
	{name: "agent.idle_heap.1m_profiles", unit: "MiB", op: "<=", target: 16, bench: "BenchmarkIdleHeap1M", metric: "idle-heap-MiB"},
	{name: "identify.1m.p99.vs_get", unit: "x", op: "<=", target: 5, bench: "BenchmarkIdentify1M", metric: "p99-x-get"},

	// devices: scan to answer (issue 6). The floors are the core's Identify.
	{name: "scan.pty.p50", unit: "µs", op: "<=", target: 2000, bench: "BenchmarkScanToAnswer", metric: "p50-µs"},
	{name: "scan.pty.p99", unit: "µs", op: "<=", target: 10000, bench: "BenchmarkScanToAnswer", metric: "p99-µs"},
	{name: "scan.pty.core_p99", unit: "µs", op: "<=", target: 50, bench: "BenchmarkScanToAnswer", metric: "core-p99-µs"},
	{name: "identify.api.p50", unit: "µs", op: "<=", target: 200, bench: "BenchmarkIdentifyAPI", metric: "p50-µs"},
	{name: "identify.api.p99", unit: "µs", op: "<=", target: 1000, bench: "BenchmarkIdentifyAPI", metric: "p99-µs"},
	{name: "identify.api.core_p99", unit: "µs", op: "<=", target: 50, bench: "BenchmarkIdentifyAPI", metric: "core-p99-µs"},

	// sync: a day offline drains in seconds; a million-profile snapshot
	// applies in under a minute with memory flat (issue 5). The drain's
	// baselines: naive is one event per message at QoS 1, waiting for each
	// PUBACK, deleted from the same outbox; puback is that loop with no
	// outbox at all.
	{name: "sync.drain.events_per_s", unit: "events/s", op: ">=", target: 20000, bench: "BenchmarkDrain", metric: "events/s"},
	{name: "sync.drain.vs_naive", unit: "x", op: ">=", target: 50, bench: "BenchmarkDrain", metric: "x-naive"},
	{name: "sync.drain.vs_puback", unit: "x", op: ">=", target: 50, bench: "BenchmarkDrain", metric: "x-puback"},
	// The same drain with the broker 25 ms away each way, as a store's is
	// (the central next to the broker): a drain that waited for the
	// broker's PUBACK of each batch before the next did 15.7k events/s.
	{name: "sync.drain.wan50ms.events_per_s", unit: "events/s", op: ">=", target: 50000, bench: "BenchmarkDrainWAN", metric: "events/s"},
	{name: "sync.drain.wan50ms.vs_puback", unit: "x", op: ">=", target: 50, bench: "BenchmarkDrainWAN", metric: "x-puback"},
	// Catching up on 5,000 changes the central made while the agent was
	// away, against the same changes applied one per transaction (one fsync
	// each), which is what the downlink did before it applied runs.
	{name: "sync.catchup.changes_per_s", unit: "changes/s", op: ">=", target: 2000, bench: "BenchmarkCatchUp", metric: "changes/s"},
	{name: "sync.catchup.vs_one_per_tx", unit: "x", op: ">=", target: 3, bench: "BenchmarkCatchUp", metric: "x-one-per-tx"},
	{name: "sync.snapshot.1m.apply", unit: "s", op: "<=", target: 60, bench: "BenchmarkSnapshot1M", metric: "apply-s"},
	{name: "sync.snapshot.1m.peak_heap", unit: "MiB", op: "<=", target: 512, bench: "BenchmarkSnapshot1M", metric: "peak-heap-MiB"},
	{name: "sync.snapshot.heap.1m_vs_100k", unit: "x", op: "<=", target: 2, bench: "BenchmarkSnapshot1M", metric: "x-heap-1m-vs-100k"},
}
