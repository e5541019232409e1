package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
)

// probeTimeout bounds the dial that tells whether a daemon listens at a
// socket or an address.
const probeTimeout = time.Second

// notRunning is what storectl says on stderr when it reads the store
// itself.
const notRunning = "storeagent is not running: read from the store file read-only"

// config loads --config once, or the embedded default when it is not set.
func (a *app) config() (*firmwareconfig.Config, error) {
	if !a.loaded {
		a.loaded = true
		if a.flags.config == "" {
			a.cfg = firmwareconfig.Default()
		} else {
			a.cfg, a.cfgErr = firmwareconfig.Load(a.flags.config)
		}
		if a.cfgErr == nil && a.flags.stateDir != "" {
			a.cfg.Store.Dir = a.flags.stateDir
		}
	}
	if a.cfgErr != nil {
		return nil, failed("the config does not load (storectl config check %s):\n%v", a.flags.config, a.cfgErr)
	}
	return a.cfg, nil
}

// target is one place the daemon may listen.
type target struct {
	network string // "unix" or "tcp"
	addr    string
}

// targets lists where to look for the daemon, in order: --socket or
// --addr alone when given; else the config's socket (<state dir>/api.sock
// unless configured), then, without --config, localapi.DefaultSocket, then
// the config's TCP address (or localapi.DefaultListen).
func (a *app) targets() ([]target, error) {
	if a.flags.addr != "" {
		return []target{{"tcp", a.flags.addr}}, nil
	}
	if a.flags.socket != "" {
		return []target{{"unix", a.flags.socket}}, nil
	}
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	var out []target
	if dir, err := cfg.StateDir(); err == nil {
		if s := cfg.APIConfig(dir).Socket; s != "" {
			out = append(out, target{"unix", s})
		}
	}
	if a.flags.config == "" && (len(out) == 0 || out[0].addr != localapi.DefaultSocket) {
		out = append(out, target{"unix", localapi.DefaultSocket})
	}
	if listen := cfg.API.Listen; listen != "" && !strings.HasSuffix(listen, ":0") {
		out = append(out, target{"tcp", listen})
	} else if a.flags.config == "" {
		out = append(out, target{"tcp", localapi.DefaultListen})
	}
	return out, nil
}

// daemon returns a Client of the running daemon: the first target that
// accepts a connection. When none does it returns a *localapi.ConnectError
// naming them all.
func (a *app) daemon(ctx context.Context) (*localapi.Client, error) {
	ts, err := a.targets()
	if err != nil {
		return nil, err
	}
	var names []string
	var firstErr error
	for _, t := range ts {
		names = append(names, t.addr)
		d := net.Dialer{Timeout: probeTimeout}
		conn, err := d.DialContext(ctx, t.network, t.addr)
		if err != nil {
			if firstErr == nil || errors.Is(err, fs.ErrPermission) {
				firstErr = err
			}
			continue
		}
		conn.Close()
		c := &localapi.Client{}
		if t.network == "tcp" {
			c.Addr, c.Token = t.addr, a.token()
		} else {
			c.Socket = t.addr
		}
		return c, nil
	}
	return nil, &localapi.ConnectError{Target: strings.Join(names, ", "), Err: firstErr}
}

// token is the bearer token for a TCP target, or "" when none can be read.
func (a *app) token() string {
	path := a.flags.tokenFile
	if path == "" && a.cfg != nil {
		path = a.cfg.API.TokenFile
	}
	if path == "" {
		return ""
	}
	tok, err := localapi.LoadToken(path)
	if err != nil {
		fmt.Fprintln(a.stderr, "storectl: no bearer token:", err)
		return ""
	}
	return tok
}

// withDaemon calls fn with a client of the running daemon, its context
// bounded by --timeout. When the daemon cannot be reached it returns a
// *localapi.ConnectError (see down), for the caller to read the store
// instead or to say what to do.
func (a *app) withDaemon(ctx context.Context, fn func(ctx context.Context, c *localapi.Client) error) error {
	c, err := a.daemon(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, a.flags.timeout)
	defer cancel()
	return fn(ctx, c)
}

// daemonOrStore answers from the daemon, or, when it is not running, from
// its store file opened by storectl (writable when the answer writes, as a
// lookup's audit entry does).
func daemonOrStore[T any](ctx context.Context, a *app, writable bool,
	daemon func(context.Context, *localapi.Client) (T, error), stored func(*offline) (T, error)) (T, error) {
	var v T
	err := a.withDaemon(ctx, func(ctx context.Context, c *localapi.Client) error {
		var err error
		v, err = daemon(ctx, c)
		return err
	})
	if !down(err) {
		return v, err
	}
	off, err := a.openOffline(writable, err)
	if err != nil {
		var zero T
		return zero, err
	}
	defer off.Close()
	return stored(off)
}

// offline is a stopped agent's store, opened by storectl itself.
type offline struct {
	cfg    *firmwareconfig.Config
	dir    string
	db     *store.DB
	ag     *agent.Agent    // never run; its Identify is not used unless tenantKey is the real one
	masker *support.Masker // nil when the tenant key cannot be read
	// agentCfg has the real tenant key, when it could be read.
	agentCfg agent.Config
	keyKnown bool
}

func (o *offline) Close() error { return o.db.Close() }

// storePath is the store file of the config's state directory.
func storePath(dir string) string { return filepath.Join(dir, "store.db") }

// openOffline opens the store of a stopped agent: read-only, or for
// writing when the command must (compact, an audited lookup). It says on
// stderr that the daemon is not running.
func (a *app) openOffline(writable bool, why error) (*offline, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	dir, err := cfg.StateDir()
	if err != nil {
		return nil, unreachable("%v: and no state directory to read instead: %v", why, err)
	}
	db, err := openStore(cfg, dir, writable)
	if err != nil {
		return nil, a.offlineError(why, err)
	}
	o, err := a.offlineOver(cfg, dir, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if !writable {
		a.note("%s (%s)", notRunning, db.Path())
	}
	return o, nil
}

// offlineOver makes the agent and the masker of an open store. The agent
// is never run; without the tenant key it can count, not identify.
func (a *app) offlineOver(cfg *firmwareconfig.Config, dir string, db *store.DB) (*offline, error) {
	o := &offline{cfg: cfg, dir: dir, db: db}
	key, err := store.LoadKeyFile(tenantKeyPath(cfg, dir))
	if err == nil {
		o.keyKnown = true
		o.masker, _ = support.NewMasker(key)
	} else {
		key = make([]byte, 32)
		rand.Read(key)
	}
	o.agentCfg = cfg.AgentConfig(key, slog.New(slog.DiscardHandler))
	if o.ag, err = agent.New(db, o.agentCfg); err != nil {
		return nil, failed("read the store: %v", err)
	}
	return o, nil
}

func openStore(cfg *firmwareconfig.Config, dir string, writable bool) (*store.DB, error) {
	key, err := store.LoadKeyFile(cfg.KeyFilePath(dir))
	if err != nil {
		return nil, err
	}
	opts := cfg.StoreOptions(key, nil)
	path := storePath(dir)
	if !writable {
		opts.LockTimeout = 0 // OpenReadOnly's own short default: the daemon answers instead
		return store.OpenReadOnly(path, opts)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	opts.LockTimeout = 500 * time.Millisecond
	return store.Open(path, opts)
}

// offlineError explains why neither the daemon nor its store could be read.
func (a *app) offlineError(why, err error) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return unreachable("%v\nstoreagent holds the store but its API does not answer where storectl looked: pass --socket, --addr or --config", why)
	case errors.Is(err, fs.ErrNotExist):
		return unreachable("%v\nand there is no store to read instead (%v): has storeagent run with this config? (--config FILE)", why, err)
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, store.ErrKeyFileMode):
		return unreachable("%v\nand the store cannot be read by this user (%v): run storectl as root or as the storeagent user", why, err)
	}
	return unreachable("%v\nand the store cannot be read: %v", why, err)
}

func tenantKeyPath(cfg *firmwareconfig.Config, dir string) string {
	if cfg.Agent.TenantKeyFile != "" {
		return cfg.Agent.TenantKeyFile
	}
	return filepath.Join(dir, "tenant.key")
}

// down reports whether err says the daemon could not be reached.
func down(err error) bool { return localapi.IsConnectError(err) }
