// Package doctor runs the checks of `storectl doctor`: everything a field
// technician needs to know to tell why an agent does not do its job, each
// as ok, warn, fail or skip with a hint. The daemon runs them for GET
// /v1/doctor, with its own view of its ports, link and store; storectl runs
// them itself when the daemon is down, from the config and the store file.
//
// # Checks
//
// In order: the daemon (running or not), the config (re-read from its file,
// every error with file:line:key), the key files (present, mode 0600), the
// disk space of the state directory, the clock skew against the central
// (when the daemon has a reading; "unknown" otherwise), the database
// (bbolt's consistency check), each configured serial port (the daemon's
// view when it holds the port, else opened and closed), the broker (a TCP
// dial), TLS (handshake and certificate expiry: warn under 30 days, fail
// when expired), the outbox (not stuck, not full) and the profile cache
// (not empty: an empty cache is the kiosk that "doesn't know anyone").
//
// # What it must never do
//
// Read a secret's content (key files are only stat'ed), show personal
// data (it reads counts and states only), or hang: every network check is
// bounded by Env.Timeout. It writes nothing.
//
// Its tests drive each check over real files, a real store, real
// listeners and a real TLS server with certificates about to expire.
package doctor

import (
	"context"
	"net"
	"time"

	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
)

// Sources of a report.
const (
	SourceDaemon   = "daemon"
	SourceStorectl = "storectl"
)

// Thresholds of the checks.
const (
	// CertWarn is how long before a certificate expires the tls check warns.
	CertWarn = 30 * 24 * time.Hour
	// StuckAfter is how old the oldest queued event, or the last ack, may
	// be while the link is up before the outbox counts as stuck.
	StuckAfter = 15 * time.Minute
	// SkewWarn and SkewFail bound the clock skew against the central.
	SkewWarn = 30 * time.Second
	SkewFail = 5 * time.Minute
	// DiskFailBytes and DiskWarnPercent bound the free space of the state
	// directory; below the outbox's maximum size it warns too.
	DiskFailBytes   = 64 << 20
	DiskFailPercent = 2
	DiskWarnPercent = 10
	// FullWarnPercent is how full the outbox may get before it warns.
	FullWarnPercent = 80
)

// Store is the subset of *store.DB the checks need.
type Store interface {
	Check() error
	Path() string
}

// Env is what the checks look at. Fields left zero are treated as unknown;
// the functions default to the real system.
type Env struct {
	Source string // SourceDaemon or SourceStorectl

	// ConfigPath is the file the agent's config comes from; empty: the
	// embedded default. Config is that config, nil when it did not load
	// (ConfigErr says why).
	ConfigPath string
	Config     *firmwareconfig.Config
	ConfigErr  error
	StateDir   string

	// Store is the open store, nil when it could not be opened (StoreErr
	// says why).
	Store    Store
	StoreErr error

	// Status is the daemon's status when Running, else what the store
	// alone tells (support.StoreStatus), or nil. DaemonErr says why the
	// daemon did not answer.
	Status    *localapi.Status
	Running   bool
	DaemonErr error

	Now       func() time.Time                                                  // default time.Now
	Dial      func(ctx context.Context, network, addr string) (net.Conn, error) // default net.Dialer
	DiskUsage func(dir string) (free, total uint64, err error)                  // default: statfs
	OpenPort  func(cfg scanner.Config) error                                    // opens and closes a port; default github.com/tarm/serial
	Timeout   time.Duration                                                     // per network check; default 5s
}

func (e *Env) defaults() {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Dial == nil {
		var d net.Dialer
		e.Dial = d.DialContext
	}
	if e.DiskUsage == nil {
		e.DiskUsage = diskUsage
	}
	if e.OpenPort == nil {
		e.OpenPort = openPort
	}
	if e.Timeout <= 0 {
		e.Timeout = 5 * time.Second
	}
	if e.Source == "" {
		e.Source = SourceStorectl
	}
}

// Run runs every check and returns the report. It never fails: a check
// that cannot run says so.
func Run(ctx context.Context, env Env) localapi.DoctorReport {
	env.defaults()
	rep := localapi.DoctorReport{At: env.Now(), Source: env.Source}
	rep.Checks = append(rep.Checks, daemonCheck(&env), configCheck(&env))
	if env.Config == nil {
		rep.Checks = append(rep.Checks, localapi.Check{Name: "key_files", Status: localapi.CheckSkip, Summary: "not checked: the config did not load"})
	} else {
		rep.Checks = append(rep.Checks, keyFilesCheck(&env), diskCheck(&env))
	}
	rep.Checks = append(rep.Checks, clockCheck(&env), databaseCheck(&env))
	if env.Config != nil {
		rep.Checks = append(rep.Checks, portChecks(ctx, &env)...)
		rep.Checks = append(rep.Checks, brokerCheck(ctx, &env), tlsCheck(ctx, &env))
	}
	rep.Checks = append(rep.Checks, outboxCheck(&env), cacheCheck(&env))
	return rep
}

func ok(name, summary string) localapi.Check {
	return localapi.Check{Name: name, Status: localapi.CheckOK, Summary: summary}
}

func warn(name, summary, hint string) localapi.Check {
	return localapi.Check{Name: name, Status: localapi.CheckWarn, Summary: summary, Hint: hint}
}

func fail(name, summary, hint string) localapi.Check {
	return localapi.Check{Name: name, Status: localapi.CheckFail, Summary: summary, Hint: hint}
}

func skip(name, summary string) localapi.Check {
	return localapi.Check{Name: name, Status: localapi.CheckSkip, Summary: summary}
}

// worse returns the more serious of two outcomes.
func worse(a, b localapi.CheckStatus) localapi.CheckStatus {
	rank := map[localapi.CheckStatus]int{localapi.CheckSkip: 0, localapi.CheckOK: 1, localapi.CheckWarn: 2, localapi.CheckFail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
