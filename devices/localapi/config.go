package localapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// DefaultSocket is the unix socket the daemon listens on, and the one a zero
// [Client] dials, unless configured otherwise: /run/storeagent/api.sock.
// systemd's RuntimeDirectory=storeagent makes its directory.
var DefaultSocket = "/run/storeagent/api.sock"

// DefaultListen is the loopback TCP address of the default config.
const DefaultListen = "127.0.0.1:8780"

// Limits checked by Validate and LoadToken.
const (
	// maxSocketPath is sun_path's size on the BSDs and macOS (Linux has 108):
	// a longer path cannot be bound everywhere.
	maxSocketPath = 104
	// minTokenLen is the shortest bearer token accepted: 32 characters, 128
	// bits or more from any sensible generator (openssl rand -hex 16).
	minTokenLen = 32
	maxTokenLen = 512
)

// Config is the [api] section of the agent's config (README.md, sample.conf).
// The loader starts from DefaultConfig and decodes the section over it, then
// calls Validate.
type Config struct {
	// Socket is the unix socket path [socket]. Empty: no socket.
	Socket string `toml:"socket"`
	// Listen is the TCP address, host:port [listen]. Empty: no TCP. A host
	// that is not loopback (an interface address, "0.0.0.0", or empty for
	// every interface) needs TokenFile.
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token [token_file]. When set, every request
	// over TCP must carry "Authorization: Bearer <token>", on loopback too;
	// the socket never needs it. The file must not be readable by others.
	TokenFile string `toml:"token_file"`
}

// DefaultConfig is the default [api] section: the socket at DefaultSocket
// and TCP on DefaultListen, no token.
func DefaultConfig() Config {
	return Config{Socket: DefaultSocket, Listen: DefaultListen}
}

// ConfigError is a bad value in the [api] section. Key is the TOML key
// without the section, so that the config loader can point at the line.
type ConfigError struct {
	Key     string // "listen", "socket" or "token_file"
	Problem string // what is wrong and how to fix it
}

// Error returns "api.<key> <problem>".
func (e *ConfigError) Error() string { return "api." + e.Key + " " + e.Problem }

// Validate reports every bad key of c, joined; use errors.As to get the
// first *ConfigError. It does not touch the file system: LoadToken reads the
// token file.
func (c Config) Validate() error {
	var errs []error
	if c.Socket == "" && c.Listen == "" {
		errs = append(errs, &ConfigError{"socket", "and api.listen are both empty: set at least one"})
	}
	if err := c.checkSocket(); err != nil {
		errs = append(errs, err)
	}
	if err := c.checkListen(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) checkSocket() error {
	switch {
	case c.Socket == "":
		return nil
	case !filepath.IsAbs(c.Socket):
		return &ConfigError{"socket", fmt.Sprintf("%q must be an absolute path", c.Socket)}
	case len(c.Socket) > maxSocketPath:
		return &ConfigError{"socket", fmt.Sprintf("is %d bytes long: a unix socket path must be at most %d", len(c.Socket), maxSocketPath)}
	}
	return nil
}

func (c Config) checkListen() error {
	if c.Listen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return &ConfigError{"listen", fmt.Sprintf("%q must be host:port, such as %q", c.Listen, DefaultListen)}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		// Port 0 asks the system for a free one: for tests, and for a
		// daemon reached only by its socket.
		return &ConfigError{"listen", fmt.Sprintf("%q needs a port from 0 to 65535", c.Listen)}
	}
	loopback, ok := loopbackHost(host)
	if !ok {
		return &ConfigError{"listen", fmt.Sprintf("%q: the host must be an IP address or localhost, not a name that could resolve anywhere", c.Listen)}
	}
	if !loopback && c.TokenFile == "" {
		return &ConfigError{"listen", fmt.Sprintf("%q is not loopback: set api.token_file", c.Listen)}
	}
	return nil
}

// loopbackHost reports whether host names the loopback interface; ok is
// false when host is neither empty, localhost nor an IP address.
func loopbackHost(host string) (loopback, ok bool) {
	if host == "" {
		return false, true // every interface
	}
	if strings.EqualFold(host, "localhost") {
		return true, true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, false
	}
	return ip.IsLoopback(), true
}

// Token reads the bearer token from TokenFile, or returns "" when none is
// configured. See LoadToken.
func (c Config) Token() (string, error) {
	if c.TokenFile == "" {
		return "", nil
	}
	return LoadToken(c.TokenFile)
}

// LoadToken reads a bearer token file: one line of 32 to 512 printable
// ASCII characters without spaces (openssl rand -hex 32 > FILE). On Unix
// the file must be a regular file that others cannot read or write, and
// that its group cannot write (0600 or 0640). Errors name the key and the
// file, never the token.
func LoadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", tokenErr(path, "cannot be read: %v", errors.Unwrap(err))
	}
	if err := checkTokenMode(path, fi); err != nil {
		return "", err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", tokenErr(path, "cannot be read: %v", errors.Unwrap(err))
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < minTokenLen || len(tok) > maxTokenLen || strings.ContainsFunc(tok, notTokenRune) {
		return "", tokenErr(path, "must hold one token of %d to %d printable ASCII characters without spaces (openssl rand -hex 32)", minTokenLen, maxTokenLen)
	}
	return tok, nil
}

func checkTokenMode(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return tokenErr(path, "is not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return tokenErr(path, "has mode %04o, readable or writable beyond its owner and group: run chmod 600 %s", perm, path)
	}
	return nil
}

func tokenErr(path, format string, args ...any) error {
	return &ConfigError{"token_file", path + " " + fmt.Sprintf(format, args...)}
}

func notTokenRune(r rune) bool { return r <= ' ' || r > '~' }
