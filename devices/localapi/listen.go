package localapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Listeners opens the listeners c configures: the unix socket first, then the
// TCP address. On error it closes what it opened. Call Validate first.
func (c Config) Listeners() ([]net.Listener, error) {
	var lns []net.Listener
	if c.Socket != "" {
		ln, err := ListenUnix(c.Socket)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	if c.Listen != "" {
		ln, err := ListenTCP(c.Listen)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// ListenUnix listens on the unix socket at path:
//
//  1. The parent directory is created with mode 0750 if it is missing (an
//     existing one is left as it is).
//  2. A socket file left by a daemon that died is removed; a live one (it
//     answers a connect) is an error, and so is a path that is not a
//     socket: ListenUnix never deletes anything else.
//  3. The socket gets mode 0660: its owner and group (the POS software's
//     and the technicians') may connect, nobody else.
//
// Closing the listener removes the socket file.
func ListenUnix(path string) (net.Listener, error) {
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("local api socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local api socket mode: %w", err)
	}
	return ln, nil
}

// makeDir creates dir with mode 0750 exactly (whatever the umask) when it
// is missing, and leaves an existing one alone.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return os.Chmod(dir, 0o750)
}

// staleDialTimeout bounds the check that nobody serves an old socket file.
const staleDialTimeout = 250 * time.Millisecond

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local api socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("local api socket %s exists and is not a socket: refusing to remove it", path)
	}
	if c, err := net.DialTimeout("unix", path, staleDialTimeout); err == nil {
		c.Close()
		return fmt.Errorf("local api socket %s is in use: is another storeagent running?", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale local api socket: %w", err)
	}
	return nil
}

// ListenTCP listens on the TCP address addr (host:port). Whether requests
// on it need the bearer token is decided by Server.Run from the address it
// is bound to.
func ListenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	return ln, nil
}
