package localapi_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/devices/localapi"
)

func TestConfigValidate(t *testing.T) {
	long := "/" + strings.Repeat("s", 110)
	tests := []struct {
		name string
		cfg  localapi.Config
		want []string // each error's text, in order; none for a valid config
	}{
		{"default", localapi.DefaultConfig(), nil},
		{"socket only", localapi.Config{Socket: "/run/x/api.sock"}, nil},
		{"loopback only", localapi.Config{Listen: "127.0.0.1:8780"}, nil},
		{"IPv6 loopback", localapi.Config{Listen: "[::1]:8780"}, nil},
		{"localhost", localapi.Config{Listen: "localhost:8780"}, nil},
		{"every interface with a token", localapi.Config{Listen: "0.0.0.0:8080", TokenFile: "/etc/storeagent/api.token"}, nil},
		{"loopback with a token", localapi.Config{Listen: "127.0.0.1:8780", TokenFile: "/etc/storeagent/api.token"}, nil},
		{"every interface without a token", localapi.Config{Listen: "0.0.0.0:8080"},
			[]string{`api.listen "0.0.0.0:8080" is not loopback: set api.token_file`}},
		{"no host without a token", localapi.Config{Listen: ":8080"},
			[]string{`api.listen ":8080" is not loopback: set api.token_file`}},
		{"LAN address without a token", localapi.Config{Listen: "192.168.1.20:8080"},
			[]string{`api.listen "192.168.1.20:8080" is not loopback: set api.token_file`}},
		{"host name", localapi.Config{Listen: "pos.local:8780", TokenFile: "/t"},
			[]string{`api.listen "pos.local:8780": the host must be an IP address or localhost, not a name that could resolve anywhere`}},
		{"no port", localapi.Config{Listen: "127.0.0.1"},
			[]string{`api.listen "127.0.0.1" must be host:port, such as "127.0.0.1:8780"`}},
		{"port 0 asks for a free one", localapi.Config{Listen: "127.0.0.1:0"}, nil},
		{"named port", localapi.Config{Listen: "127.0.0.1:http"}, []string{`api.listen "127.0.0.1:http" needs a port from 0 to 65535`}},
		{"relative socket", localapi.Config{Socket: "api.sock"}, []string{`api.socket "api.sock" must be an absolute path`}},
		{"long socket", localapi.Config{Socket: long}, []string{`api.socket is 111 bytes long: a unix socket path must be at most 104`}},
		{"nothing", localapi.Config{}, []string{`api.socket and api.listen are both empty: set at least one`}},
		{"two errors", localapi.Config{Socket: "api.sock", Listen: "0.0.0.0:1"},
			[]string{`api.socket "api.sock" must be an absolute path`, `api.listen "0.0.0.0:1" is not loopback: set api.token_file`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != strings.Join(tc.want, "\n") {
				t.Fatalf("got  %v\nwant %s", err, strings.Join(tc.want, "\n"))
			}
			var ce *localapi.ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(tc.want[0], "api."+ce.Key+" ") {
				t.Fatalf("first *ConfigError %+v does not name the key of %q", ce, tc.want[0])
			}
		})
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", testTok+"\n", 0o600)
	tests := []struct {
		name, path, want string // want: the token, or a part of the error
		ok               bool
	}{
		{"0600", good, testTok, true},
		{"0640", write("group", testTok, 0o640), testTok, true},
		{"0644", write("world", testTok, 0o644), "has mode 0644, readable or writable beyond its owner and group: run chmod 600", false},
		{"0660", write("groupw", testTok, 0o660), "has mode 0660", false},
		{"short", write("short", "abc", 0o600), "must hold one token of 32 to 512 printable ASCII characters", false},
		{"space inside", write("space", testTok+" "+testTok, 0o600), "must hold one token", false},
		{"missing", filepath.Join(dir, "missing"), "cannot be read: no such file or directory", false},
		{"directory", dir, "is not a regular file", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := localapi.LoadToken(tc.path)
			if tc.ok {
				if err != nil || tok != tc.want {
					t.Fatalf("got %q %v", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "api.token_file "+tc.path+" ") {
				t.Fatalf("got %v", err)
			}
			if strings.Contains(err.Error(), testTok[:16]) {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
	tok, err := localapi.Config{TokenFile: good}.Token()
	if err != nil || tok != testTok {
		t.Fatalf("Config.Token: %q %v", tok, err)
	}
	if tok, err := (localapi.Config{}).Token(); tok != "" || err != nil {
		t.Fatalf("no token file: %q %v", tok, err)
	}
}

func TestListenUnix(t *testing.T) {
	t.Run("creates the directory 0750 and the socket 0660", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "run", "api.sock")
		ln, err := localapi.ListenUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		wantMode(t, filepath.Dir(path), os.ModeDir|0o750)
		wantMode(t, path, os.ModeSocket|0o660)
	})
	t.Run("removes a stale socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "api.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // a daemon killed with SIGKILL leaves its socket file
		ln, err := localapi.ListenUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("closing the listener left the socket file: %v", err)
		}
	})
	t.Run("refuses a live socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "api.sock")
		live, err := localapi.ListenUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		if _, err := localapi.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "is in use: is another storeagent running?") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("never removes a file", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "api.sock")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := localapi.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "is not a socket: refusing to remove it") {
			t.Fatalf("got %v", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
			t.Fatalf("the file was touched: %q %v", b, err)
		}
	})
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
		t.Fatalf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

func TestConfigListeners(t *testing.T) {
	cfg := localapi.Config{Socket: filepath.Join(shortDir(t), "api.sock"), Listen: "127.0.0.1:0"}
	lns, err := cfg.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	if len(lns) != 2 || lns[0].Addr().Network() != "unix" || lns[1].Addr().Network() != "tcp" {
		t.Fatalf("got %v", lns)
	}
	for _, ln := range lns {
		ln.Close()
	}
	// A TCP address that cannot be bound closes the socket opened first.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg.Listen = busy.Addr().String()
	if _, err := cfg.Listeners(); err == nil {
		t.Fatal("a busy port was bound")
	}
	if _, err := os.Stat(cfg.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket opened first was left open: %v", err)
	}
}
