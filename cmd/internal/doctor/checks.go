package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
)

const hintStart = "start it: systemctl start storeagent (its log: journalctl -u storeagent)"

func daemonCheck(env *Env) localapi.Check {
	st := env.Status
	switch {
	case env.Running && st != nil:
		return ok("daemon", fmt.Sprintf("storeagent %s running for %s", orUnknown(st.Version), support.Duration(time.Duration(st.UptimeSeconds)*time.Second)))
	case env.Running:
		return ok("daemon", "storeagent is running")
	case env.DaemonErr != nil:
		c := fail("daemon", "storeagent is not running: nothing answers scans or the POS", hintStart)
		c.Details = []string{env.DaemonErr.Error()}
		return c
	}
	return fail("daemon", "storeagent is not running", hintStart)
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}

// configCheck re-reads the config's file, so that a file edited since the
// daemon started is checked as the next start will read it.
func configCheck(env *Env) localapi.Check {
	if env.ConfigPath == "" {
		if env.Config == nil {
			return fail("config", "no config", "pass --config FILE")
		}
		c := ok("config", "the embedded default ("+firmwareconfig.DefaultName+")")
		if env.Source == SourceStorectl {
			c.Hint = "the agent may run with a file of its own: pass --config FILE to check it"
		}
		return c
	}
	_, err := firmwareconfig.Load(env.ConfigPath)
	if err == nil {
		return ok("config", env.ConfigPath+" is valid")
	}
	var errs firmwareconfig.Errors
	if !errors.As(err, &errs) {
		c := fail("config", env.ConfigPath+" cannot be read", "check the path and its permissions")
		c.Details = []string{err.Error()}
		return c
	}
	c := fail("config", fmt.Sprintf("%s has %d problem(s): storeagent refuses to start with it", env.ConfigPath, len(errs)),
		"fix each line named, then: storectl config check "+env.ConfigPath)
	for _, e := range errs {
		c.Details = append(c.Details, e.Error())
	}
	return c
}

// keyFile is one file the agent reads a secret or a key from.
type keyFile struct {
	key      string // the config key naming it
	path     string
	secret   bool // its mode must keep others (and its group) out
	required bool // the agent refuses to start without it
	generate bool // the agent generates it at first start when missing
}

func keyFiles(cfg *firmwareconfig.Config, dir string) []keyFile {
	files := []keyFile{{key: "store.key_file", path: cfg.KeyFilePath(dir), secret: true, required: true, generate: cfg.Store.KeyFile == ""}}
	tenant := keyFile{key: "agent.tenant_key_file", path: cfg.Agent.TenantKeyFile, secret: true, required: true}
	if tenant.path == "" {
		tenant.path, tenant.generate = filepath.Join(dir, "tenant.key"), true
	}
	files = append(files, tenant)
	add := func(key, path string, secret bool) {
		if path != "" {
			files = append(files, keyFile{key: key, path: path, secret: secret, required: true})
		}
	}
	add("api.token_file", cfg.API.TokenFile, true)
	if cfg.Sync.Enabled {
		add("sync.password_file", cfg.Sync.PasswordFile, true)
		add("sync.key_file", cfg.Sync.KeyFile, true)
		add("sync.cert_file", cfg.Sync.CertFile, false)
		add("sync.ca_file", cfg.Sync.CAFile, false)
		for i, k := range cfg.Sync.CentralKeys {
			add(fmt.Sprintf("sync.central_keys[%d]", i), k, false)
		}
	}
	if cfg.Bus.Enabled {
		add("bus.embedded.tls_key_file", cfg.Bus.Embedded.TLSKeyFile, true)
		add("bus.external.password_file", cfg.Bus.External.PasswordFile, true)
		for i, d := range cfg.Bus.Devices {
			add(fmt.Sprintf("bus.device[%d].password_file", i), d.PasswordFile, true)
		}
	}
	return files
}

// keyFilesCheck stats every key file; it never reads one.
func keyFilesCheck(env *Env) localapi.Check {
	cfg := env.Config
	storeExists := fileExists(filepath.Join(env.StateDir, "store.db"))
	c := localapi.Check{Name: "key_files", Status: localapi.CheckOK}
	var hints []string
	bad := 0
	for _, kf := range keyFiles(cfg, env.StateDir) {
		status, detail, hint := checkKeyFile(kf, storeExists)
		c.Status = worse(c.Status, status)
		c.Details = append(c.Details, fmt.Sprintf("%s %s: %s", kf.key, kf.path, detail))
		if status != localapi.CheckOK {
			bad++
			if hint != "" {
				hints = append(hints, hint)
			}
		}
	}
	if cfg.Sync.Enabled && cfg.Agent.TenantKeyFile == "" {
		c.Status = worse(c.Status, localapi.CheckWarn)
		bad++
		c.Details = append(c.Details, "agent.tenant_key_file is empty: the tenant key was generated on this device, so identifiers never match the central's and every scan is unknown")
		hints = append(hints, "set agent.tenant_key_file to the tenant's key from the central")
	}
	c.Summary = fmt.Sprintf("%d key files present with safe modes", len(c.Details))
	if bad > 0 {
		c.Summary = fmt.Sprintf("%d of %d key files need attention", bad, len(keyFiles(cfg, env.StateDir)))
	}
	c.Hint = strings.Join(hints, "; ")
	return c
}

func checkKeyFile(kf keyFile, storeExists bool) (status localapi.CheckStatus, detail, hint string) {
	fi, err := os.Stat(kf.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && kf.generate && kf.key == "store.key_file" && storeExists:
		return localapi.CheckFail, "missing, but the store exists: its sealed data cannot be read without it", "restore " + kf.path + " from the device's backup"
	case errors.Is(err, fs.ErrNotExist) && kf.generate:
		return localapi.CheckWarn, "missing: storeagent generates it at first start", ""
	case errors.Is(err, fs.ErrNotExist):
		return localapi.CheckFail, "missing", "restore it, or fix " + kf.key
	case errors.Is(err, fs.ErrPermission):
		return localapi.CheckWarn, "cannot be checked: permission denied", "run storectl as root or as the storeagent user"
	case err != nil:
		return localapi.CheckFail, err.Error(), ""
	case !fi.Mode().IsRegular():
		return localapi.CheckFail, "not a regular file", "point " + kf.key + " at a file"
	}
	perm := fi.Mode().Perm()
	if kf.secret && perm&0o077 != 0 {
		if kf.key == "api.token_file" && perm&0o027 == 0 {
			return localapi.CheckOK, fmt.Sprintf("present, mode %04o (its group may read it)", perm), ""
		}
		return localapi.CheckFail, fmt.Sprintf("mode %04o lets others read it", perm), "run: chmod 600 " + kf.path
	}
	return localapi.CheckOK, fmt.Sprintf("present, mode %04o", perm), ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func diskCheck(env *Env) localapi.Check {
	free, total, err := env.DiskUsage(env.StateDir)
	if err != nil {
		return skip("disk", "free space of "+env.StateDir+" unknown: "+err.Error())
	}
	pct := 0.0
	if total > 0 {
		pct = float64(free) * 100 / float64(total)
	}
	summary := fmt.Sprintf("%s free of %s (%.0f%%) at %s", support.Bytes(free), support.Bytes(total), pct, env.StateDir)
	outboxMax := env.Config.Store.Outbox.MaxMB << 20
	switch {
	case free < DiskFailBytes || pct < DiskFailPercent:
		return fail("disk", summary, "free space on this disk: the store cannot take events")
	case pct < DiskWarnPercent || free < outboxMax:
		return warn("disk", summary, "the outbox may need up to "+support.Bytes(outboxMax)+" during an outage: free space on this disk")
	}
	return ok("disk", summary)
}

// clockCheck reports the skew the daemon measured against the central: the
// central's time in its last Ack against ours. Before any Ack (sync off,
// never connected) the skew is unknown, and the check says so rather than
// guess.
func clockCheck(env *Env) localapi.Check {
	st := env.Status
	if !env.Running || st == nil || st.Link.ClockSkewMs == nil {
		return skip("clock", "skew against the central unknown: the daemon has no reading of the central's clock")
	}
	skew := time.Duration(*st.Link.ClockSkewMs) * time.Millisecond
	summary := fmt.Sprintf("this device's clock is %s %s the central's", support.Duration(skew.Abs()), map[bool]string{true: "behind", false: "ahead of"}[skew > 0])
	switch abs := skew.Abs(); {
	case abs >= SkewFail:
		return fail("clock", summary, "set the time (timedatectl set-ntp true): certificates and event times depend on it")
	case abs >= SkewWarn:
		return warn("clock", summary, "enable NTP: timedatectl set-ntp true")
	}
	return ok("clock", summary)
}

func databaseCheck(env *Env) localapi.Check {
	if env.Store == nil {
		switch err := env.StoreErr; {
		case err == nil:
			return skip("database", "not checked")
		case errors.Is(err, fs.ErrNotExist):
			return warn("database", "no store file yet: storeagent creates it at first start", "")
		case errors.Is(err, store.ErrLocked):
			return fail("database", "the store is locked by another process, but storeagent does not answer", "find the process holding it (fuser -v "+filepath.Join(env.StateDir, "store.db")+")")
		default:
			c := fail("database", "the store cannot be opened", "see the detail; a damaged file can be restored from the device's backup")
			c.Details = []string{err.Error()}
			return c
		}
	}
	if err := env.Store.Check(); err != nil {
		c := fail("database", env.Store.Path()+" is damaged (bbolt check)", "stop storeagent, keep a copy of the file, and restore it from the device's backup")
		c.Details = strings.Split(err.Error(), "\n")
		return c
	}
	return ok("database", env.Store.Path()+" is consistent (bbolt check)")
}
