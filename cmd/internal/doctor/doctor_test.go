package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// env is an Env over a config in a fresh state directory, with the system
// calls faked to a healthy machine.
func env(t *testing.T, cfg *firmwareconfig.Config) *Env {
	t.Helper()
	if cfg == nil {
		cfg = firmwareconfig.Default()
	}
	dir := t.TempDir()
	cfg.Store.Dir = dir
	e := &Env{
		Source: SourceStorectl, Config: cfg, StateDir: dir,
		Now:       func() time.Time { return now },
		DiskUsage: func(string) (uint64, uint64, error) { return 50 << 30, 100 << 30, nil },
		OpenPort:  func(scanner.Config) error { return nil },
		Timeout:   2 * time.Second,
	}
	e.defaults()
	return e
}

func want(t *testing.T, c localapi.Check, status localapi.CheckStatus, text ...string) {
	t.Helper()
	all := c.Summary + "\n" + strings.Join(c.Details, "\n") + "\n" + c.Hint
	if c.Status != status {
		t.Fatalf("%s: %s, want %s:\n%s", c.Name, c.Status, status, all)
	}
	for _, s := range text {
		if !strings.Contains(all, s) {
			t.Fatalf("%s does not say %q:\n%s", c.Name, s, all)
		}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReportOrder(t *testing.T) {
	e := env(t, nil)
	rep := Run(context.Background(), *e)
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "daemon config key_files disk clock database ports broker tls outbox cache" {
		t.Fatalf("checks %s", got)
	}
	if !rep.Failed() || rep.Source != SourceStorectl || !rep.At.Equal(now) {
		t.Fatalf("report %+v", rep)
	}
}

func TestDaemon(t *testing.T) {
	e := env(t, nil)
	e.DaemonErr = &localapi.ConnectError{Target: "/run/storeagent/api.sock"}
	want(t, daemonCheck(e), localapi.CheckFail, "not running", "systemctl start storeagent", "/run/storeagent/api.sock")
	e.Running, e.Status = true, &localapi.Status{Version: "1.2.3", UptimeSeconds: 3725}
	want(t, daemonCheck(e), localapi.CheckOK, "1.2.3", "1h02m")
}

func TestConfig(t *testing.T) {
	e := env(t, nil)
	path := filepath.Join(e.StateDir, "site.toml")
	writeFile(t, path, "kind = \"pos\"\n[store]\nmax_fil_mb = 3\n[log]\nlevel = \"loud\"\n", 0o644)
	e.ConfigPath = path
	want(t, configCheck(e), localapi.CheckFail, path+":3: store.max_fil_mb: unknown key", "storectl config check")
	writeFile(t, path, "kind = \"pos\"\n[log]\nlevel = \"loud\"\n", 0o644)
	want(t, configCheck(e), localapi.CheckFail, path+":3: log.level")
	writeFile(t, path, "kind = \"pos\"\n", 0o644)
	want(t, configCheck(e), localapi.CheckOK, "is valid")
	e.ConfigPath = filepath.Join(e.StateDir, "missing.toml")
	want(t, configCheck(e), localapi.CheckFail, "cannot be read")
	e.ConfigPath = ""
	want(t, configCheck(e), localapi.CheckOK, firmwareconfig.DefaultName, "--config FILE")
}

func TestKeyFiles(t *testing.T) {
	t.Run("fresh device", func(t *testing.T) {
		e := env(t, nil)
		want(t, keyFilesCheck(e), localapi.CheckWarn, "generates it at first start")
	})
	t.Run("healthy", func(t *testing.T) {
		e := env(t, nil)
		writeFile(t, filepath.Join(e.StateDir, "store.key"), "k", 0o600)
		writeFile(t, filepath.Join(e.StateDir, "tenant.key"), "k", 0o600)
		tok := filepath.Join(e.StateDir, "api.token")
		writeFile(t, tok, "t", 0o640)
		e.Config.API.TokenFile = tok
		want(t, keyFilesCheck(e), localapi.CheckOK, "3 key files present", "its group may read it")
	})
	t.Run("loose store key", func(t *testing.T) {
		e := env(t, nil)
		key := filepath.Join(e.StateDir, "store.key")
		writeFile(t, key, "k", 0o644)
		writeFile(t, filepath.Join(e.StateDir, "tenant.key"), "k", 0o600)
		want(t, keyFilesCheck(e), localapi.CheckFail, "mode 0644", "chmod 600 "+key)
	})
	t.Run("store without its key", func(t *testing.T) {
		e := env(t, nil)
		writeFile(t, filepath.Join(e.StateDir, "store.db"), "", 0o600)
		want(t, keyFilesCheck(e), localapi.CheckFail, "sealed data cannot be read", "backup")
	})
	t.Run("configured file missing", func(t *testing.T) {
		e := env(t, nil)
		writeFile(t, filepath.Join(e.StateDir, "store.key"), "k", 0o600)
		e.Config.Agent.TenantKeyFile = filepath.Join(e.StateDir, "tenant-from-central.key")
		want(t, keyFilesCheck(e), localapi.CheckFail, "agent.tenant_key_file", "missing")
	})
	t.Run("tenant key generated on a synced device", func(t *testing.T) {
		e := env(t, nil)
		writeFile(t, filepath.Join(e.StateDir, "store.key"), "k", 0o600)
		writeFile(t, filepath.Join(e.StateDir, "tenant.key"), "k", 0o600)
		e.Config.Sync.Enabled = true
		want(t, keyFilesCheck(e), localapi.CheckWarn, "every scan is unknown", "agent.tenant_key_file")
	})
}

func TestDisk(t *testing.T) {
	for _, tc := range []struct {
		name        string
		free, total uint64
		status      localapi.CheckStatus
	}{
		{"plenty", 50 << 30, 100 << 30, localapi.CheckOK},
		{"under 10%", 8 << 30, 100 << 30, localapi.CheckWarn},
		{"below the outbox's bound", 400 << 20, 1 << 30, localapi.CheckWarn},
		{"nearly full", 1 << 30, 100 << 30, localapi.CheckFail},
		{"under 64 MiB", 32 << 20, 1 << 30, localapi.CheckFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env(t, nil)
			e.DiskUsage = func(string) (uint64, uint64, error) { return tc.free, tc.total, nil }
			want(t, diskCheck(e), tc.status, e.StateDir)
		})
	}
	e := env(t, nil)
	e.DiskUsage = diskUsage
	if c := diskCheck(e); c.Status == localapi.CheckSkip || !strings.Contains(c.Summary, "free of") {
		t.Fatalf("the real disk: %+v", c)
	}
}

func TestClock(t *testing.T) {
	e := env(t, nil)
	want(t, clockCheck(e), localapi.CheckSkip, "unknown")
	e.Running, e.Status = true, &localapi.Status{}
	want(t, clockCheck(e), localapi.CheckSkip, "unknown")
	for ms, status := range map[int64]localapi.CheckStatus{0: localapi.CheckOK, 2000: localapi.CheckOK, -45_000: localapi.CheckWarn, 600_000: localapi.CheckFail} {
		e.Status.Link.ClockSkewMs = &ms
		want(t, clockCheck(e), status, "the central's")
	}
}

func TestDatabase(t *testing.T) {
	e := env(t, nil)
	db := storetest.Open(t, store.Options{})
	e.Store = db
	want(t, databaseCheck(e), localapi.CheckOK, "consistent")
	e.Store = nil
	e.StoreErr = os.ErrNotExist
	want(t, databaseCheck(e), localapi.CheckWarn, "first start")
	e.StoreErr = store.ErrLocked
	want(t, databaseCheck(e), localapi.CheckFail, "locked")
	e.StoreErr = errors.New("open store: invalid database")
	want(t, databaseCheck(e), localapi.CheckFail, "invalid database")
	e.Store = brokenStore{}
	want(t, databaseCheck(e), localapi.CheckFail, "damaged", "page 7: unreachable unfreed")
}

type brokenStore struct{}

func (brokenStore) Check() error {
	return errors.New("page 7: unreachable unfreed\npage 9: multiple references")
}
func (brokenStore) Path() string { return "/state/store.db" }

func TestPorts(t *testing.T) {
	cfg := firmwareconfig.Default()
	e := env(t, cfg)
	present := filepath.Join(e.StateDir, "ttyACM0")
	writeFile(t, present, "", 0o600)
	cfg.Scanners = []firmwareconfig.ScannerSection{{Name: "till-1", Path: present}, {Name: "till-2", Path: filepath.Join(e.StateDir, "gone")}}
	opened := 0
	e.OpenPort = func(c scanner.Config) error { opened++; return nil }
	got := portChecks(context.Background(), e)
	want(t, got[0], localapi.CheckOK, "opens at 9600 baud")
	want(t, got[1], localapi.CheckFail, "not present", "/dev/serial/by-id")
	e.OpenPort = func(scanner.Config) error { return os.ErrPermission }
	want(t, portChecks(context.Background(), e)[0], localapi.CheckFail, "does not open", "dialout")

	// With the daemon running, its view: the port is never opened twice.
	e.OpenPort = func(scanner.Config) error { t.Fatal("opened a port the daemon holds"); return nil }
	e.Running = true
	e.Status = &localapi.Status{Scanners: []localapi.ScannerStatus{
		{Name: "till-1", Path: present, Connected: true, Frames: 4, LastFrame: now.Add(-time.Minute)},
		{Name: "till-2", Path: "/dev/gone", LastError: "open serial port: no such file or directory", LastErrorAt: now.Add(-time.Second)},
	}}
	got = portChecks(context.Background(), e)
	want(t, got[0], localapi.CheckOK, "held by storeagent", "4 good frames", "1m00s ago")
	want(t, got[1], localapi.CheckFail, "cannot open it", "no such file")
	if opened != 1 {
		t.Fatalf("opened %d ports", opened)
	}
	cfg.Scanners = nil
	want(t, portChecks(context.Background(), e)[0], localapi.CheckSkip, "no serial scanner")
}

func TestBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := firmwareconfig.Default()
	e := env(t, cfg)
	e.Now = time.Now
	want(t, brokerCheck(context.Background(), e), localapi.CheckSkip, "sync is disabled")
	cfg.Sync.Enabled, cfg.Sync.Broker = true, "tcp://"+ln.Addr().String()
	want(t, brokerCheck(context.Background(), e), localapi.CheckOK, "accepts TCP connections")
	want(t, tlsCheck(context.Background(), e), localapi.CheckWarn, "unencrypted")
	ln.Close()
	want(t, brokerCheck(context.Background(), e), localapi.CheckFail, "cannot connect", "firewall")
	cfg.Sync.Broker = "broker.example.com"
	want(t, brokerCheck(context.Background(), e), localapi.CheckFail, "tcp://host:port")
}

// tlsBroker serves TLS handshakes with a certificate valid for validFor
// (negative: expired), signed by a CA written to a PEM file.
func tlsBroker(t *testing.T, validFor time.Duration) (addr, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(validFor),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	if validFor < 0 {
		tmpl.NotBefore = time.Now().Add(validFor - 24*time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), 0o644)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), caFile
}

func TestTLS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		validFor time.Duration
		status   localapi.CheckStatus
		says     string
	}{
		{"valid", 90 * 24 * time.Hour, localapi.CheckOK, "valid until"},
		{"expires soon", 10 * 24 * time.Hour, localapi.CheckWarn, "expires on"},
		{"expired", -24 * time.Hour, localapi.CheckFail, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, ca := tlsBroker(t, tc.validFor)
			cfg := firmwareconfig.Default()
			e := env(t, cfg)
			e.Now = time.Now
			cfg.Sync.Enabled, cfg.Sync.Broker, cfg.Sync.CAFile = true, "ssl://"+addr, ca
			want(t, tlsCheck(context.Background(), e), tc.status, tc.says)
		})
	}
	t.Run("unknown CA", func(t *testing.T) {
		addr, _ := tlsBroker(t, 90*24*time.Hour)
		_, otherCA := tlsBroker(t, 90*24*time.Hour)
		cfg := firmwareconfig.Default()
		e := env(t, cfg)
		e.Now = time.Now
		cfg.Sync.Enabled, cfg.Sync.Broker, cfg.Sync.CAFile = true, "ssl://"+addr, otherCA
		want(t, tlsCheck(context.Background(), e), localapi.CheckFail, "handshake", "sync.ca_file")
	})
}

func TestOutbox(t *testing.T) {
	connected := localapi.LinkStatus{State: "connected"}
	for _, tc := range []struct {
		name    string
		running bool
		st      localapi.Status
		status  localapi.CheckStatus
		says    string
	}{
		{"empty", true, localapi.Status{Link: connected}, localapi.CheckOK, "empty"},
		{"draining", true, localapi.Status{Link: connected, Outbox: localapi.OutboxStatus{Records: 5, OldestAgeSeconds: 20, LastAck: now.Add(-time.Second)}}, localapi.CheckOK, "draining"},
		{"stuck", true, localapi.Status{Link: connected, Outbox: localapi.OutboxStatus{Records: 5, OldestAgeSeconds: 3600, LastAck: now.Add(-time.Hour)}}, localapi.CheckFail, "stuck"},
		{"never acked", true, localapi.Status{Link: connected, Outbox: localapi.OutboxStatus{Records: 5, OldestAgeSeconds: 3600}}, localapi.CheckFail, "never"},
		{"link down", true, localapi.Status{Link: localapi.LinkStatus{State: "disconnected", LastError: "connection refused", LastErrorAt: now}, Outbox: localapi.OutboxStatus{Records: 5}}, localapi.CheckWarn, "connection refused"},
		{"sync off", true, localapi.Status{Link: localapi.LinkStatus{State: "disabled"}, Outbox: localapi.OutboxStatus{Records: 5}}, localapi.CheckWarn, "nothing drains"},
		{"daemon down", false, localapi.Status{Link: localapi.LinkStatus{State: "unknown"}, Outbox: localapi.OutboxStatus{Records: 5, OldestAgeSeconds: 3600}}, localapi.CheckWarn, "not running"},
		{"nearly full", true, localapi.Status{Link: connected, Outbox: localapi.OutboxStatus{Records: 90, MaxRecords: 100, OldestAgeSeconds: 1, LastAck: now}}, localapi.CheckWarn, "90% full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env(t, nil)
			e.Running, e.Status = tc.running, &tc.st
			want(t, outboxCheck(e), tc.status, tc.says)
		})
	}
}

func TestCache(t *testing.T) {
	e := env(t, nil)
	want(t, cacheCheck(e), localapi.CheckSkip)
	e.Status = &localapi.Status{Link: localapi.LinkStatus{State: "disabled"}}
	want(t, cacheCheck(e), localapi.CheckWarn, "no profile", "enable [sync]")
	e.Running, e.Status = true, &localapi.Status{Link: localapi.LinkStatus{State: "connected"}}
	want(t, cacheCheck(e), localapi.CheckWarn, "storectl sync resync")
	e.Status = &localapi.Status{Link: localapi.LinkStatus{State: "disconnected"}}
	want(t, cacheCheck(e), localapi.CheckWarn, "link to the central is down")
	e.Status = &localapi.Status{Cache: localapi.CacheStatus{Profiles: 10, Identifiers: 20}, Counters: map[string]uint64{"identify_unknown": 30}}
	want(t, cacheCheck(e), localapi.CheckWarn, "none of the 30 identifies", "tenant key")
	e.Status.Counters["identify_known"] = 1
	want(t, cacheCheck(e), localapi.CheckOK, "10 profiles")
}
