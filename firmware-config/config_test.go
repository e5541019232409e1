package firmwareconfig

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/devices/scanner"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("embedded default: %v", err)
	}
	if c.Store.CompactWithin.D() != 15*time.Minute || c.Store.Outbox.MaxRecords != 1_000_000 || c.Kind != "gateway" {
		t.Fatalf("default values: %+v", c)
	}
	// The default works with no network: the link is off and names no broker.
	if c.Sync.Enabled || c.Sync.Broker != "" {
		t.Fatal("embedded default enables sync")
	}
	if p := c.Policy.Policy(); p.Validate() != nil || p.PurposeOf("Order Completed") != "service" {
		t.Fatalf("default policy %+v", p)
	}
}

// Every bad file gets an error naming the file, the line and the key.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // each must appear in the error text
	}{
		{
			name: "unknown key",
			doc:  "kind = \"pos\"\n[store]\nmax_fil_mb = 3\n",
			want: []string{"site.toml:3: store.max_fil_mb: unknown key"},
		},
		{
			name: "unknown section",
			doc:  "[stor]\ndir = \"/x\"\n",
			want: []string{"site.toml:1: stor: unknown key"},
		},
		{
			name: "wrong type",
			doc:  "[store.outbox]\n\nmax_records = \"many\"\n",
			want: []string{"site.toml:3:", "max_records"},
		},
		{
			name: "bad duration",
			doc:  "[store]\nlock_timeout = \"soon\"\n",
			want: []string{"site.toml:2:", "lock_timeout", "not a duration"},
		},
		{
			name: "bad values, all reported",
			doc:  "kind = \"toaster\"\n[agent]\nid = \"a/b\"\n[log]\nlevel = \"loud\"\n",
			want: []string{"site.toml:1: kind: \"toaster\" is not one of", "site.toml:3: agent.id:", "site.toml:5: log.level:"},
		},
		{
			name: "range",
			doc:  "[store.outbox]\nreserved_percent = 95\n",
			want: []string{"site.toml:2: store.outbox.reserved_percent: 95 is out of range 1..90"},
		},
		{
			name: "cross-key",
			doc:  "[store]\nmax_file_mb = 10\n",
			want: []string{"site.toml:2: store.max_file_mb: 10 is below store.outbox.max_mb 512"},
		},
		{
			name: "sync enabled without broker or keys",
			doc:  "[sync]\nenabled = true\n",
			want: []string{"site.toml: sync.broker: required", "site.toml: sync.central_keys: at least one"},
		},
		{
			name: "identifier rules",
			doc:  "[identifiers.loyalty]\ncheck = \"crc\"\n",
			want: []string{"site.toml:2: identifiers.loyalty.check"},
		},
		{
			name: "policy basis",
			doc:  "[[policy.purpose]]\nname = \"analytics\"\nbasis = \"because\"\n",
			want: []string{"policy: purpose analytics: basis \"because\""},
		},
		{
			name: "scanner",
			doc:  "[[scanner]]\nname = \"till-1\"\npath = \"/dev/ttyUSB0\"\nbaud = 12345\npurpose = \"astrology\"\n",
			want: []string{"site.toml:4: scanner.0.baud", "site.toml:5: scanner.0.purpose: \"astrology\" is not a purpose"},
		},
		{
			name: "api beyond loopback without a token",
			doc:  "[api]\nlisten = \"0.0.0.0:8780\"\n",
			want: []string{"site.toml:2: api.listen"},
		},
		{
			name: "metrics beyond loopback",
			doc:  "[metrics]\nlisten = \"0.0.0.0:9780\"\n",
			want: []string{"site.toml:2: metrics.listen: \"0.0.0.0:9780\" is not loopback"},
		},
		{
			name: "metrics on every interface",
			doc:  "[metrics]\nenabled = true\nlisten = \":9780\"\n",
			want: []string{"site.toml:3: metrics.listen: \":9780\" is not loopback"},
		},
		{
			name: "metrics on a host name",
			doc:  "[metrics]\nlisten = \"metrics.example:9780\"\n",
			want: []string{"site.toml:2: metrics.listen: \"metrics.example:9780\" is not loopback"},
		},
		{
			name: "metrics without a port",
			doc:  "[metrics]\nlisten = \"127.0.0.1\"\n",
			want: []string{"site.toml:2: metrics.listen: \"127.0.0.1\" must be host:port"},
		},
		{
			name: "metrics unknown key",
			doc:  "[metrics]\nport = 9780\n",
			want: []string{"site.toml:2: metrics.port: unknown key"},
		},
		{
			name: "syntax",
			doc:  "[store\n",
			want: []string{"site.toml:1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("site.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *Error: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	c, err := Parse("pos.toml", []byte("kind = \"pos\"\n[store.outbox]\nmax_records = 5000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "pos" || c.Store.Outbox.MaxRecords != 5000 || c.Store.Outbox.MaxMB != 512 {
		t.Fatalf("merged config %+v", c.Store.Outbox)
	}
	o := c.StoreOptions(make([]byte, 32), nil)
	if o.Outbox.ReservedRecords != 500 || o.Outbox.MaxBytes != 512<<20 || o.LockTimeout != 2*time.Second {
		t.Fatalf("store options %+v", o.Outbox)
	}
}

func TestStateDir(t *testing.T) {
	c := Default()
	t.Setenv("STATE_DIRECTORY", "/var/lib/storeagent:/other")
	if d, _ := c.StateDir(); d != "/var/lib/storeagent" {
		t.Fatalf("systemd state dir: %s", d)
	}
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if d, _ := c.StateDir(); d != "/xdg/storeagent" {
		t.Fatalf("xdg state dir: %s", d)
	}
	c.Store.Dir = "/explicit"
	if d, _ := c.StateDir(); d != "/explicit" || c.KeyFilePath(d) != "/explicit/store.key" {
		t.Fatalf("explicit: %s", d)
	}
}

// A file's purposes replace the default's; its event mappings add to them.
func TestPolicyOverride(t *testing.T) {
	doc := "[policy]\ndefault = \"stats\"\n[[policy.purpose]]\nname = \"stats\"\nbasis = \"legitimate_interest\"\n[policy.events]\n\"Visit\" = \"stats\"\n"
	_, err := Parse("site.toml", []byte(doc))
	// The default's events map to purposes this file no longer has.
	if err == nil || !strings.Contains(err.Error(), "maps to unknown purpose") {
		t.Fatalf("events of dropped purposes: %v", err)
	}
	doc = "[policy]\ndefault = \"stats\"\nevents = {\"Visit\" = \"stats\"}\n[[policy.purpose]]\nname = \"stats\"\nbasis = \"legitimate_interest\"\n"
	c, err := Parse("site.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Policy.Policy(); len(p.Purposes) != 1 || p.PurposeOf("Visit") != "stats" {
		t.Fatalf("policy %+v", p)
	}
}

// Metrics are on by default, on loopback only; any loopback address and
// port 0 are accepted, and a disabled section is not checked.
func TestMetricsSection(t *testing.T) {
	c := Default()
	if !c.Metrics.Enabled || c.Metrics.Listen != "127.0.0.1:9780" {
		t.Fatalf("default metrics %+v", c.Metrics)
	}
	for _, doc := range []string{
		"[metrics]\nlisten = \"127.0.0.1:0\"\n",
		"[metrics]\nlisten = \"[::1]:9780\"\n",
		"[metrics]\nlisten = \"localhost:9780\"\n",
		"[metrics]\nenabled = false\nlisten = \"0.0.0.0:9780\"\n",
	} {
		if _, err := Parse("site.toml", []byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

// A [[scanner]] without debounce keeps the scanner's default window;
// "0s" turns it off.
func TestScannerDebounceDefault(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"", scanner.DefaultConfig().Debounce},
		{"debounce = \"0s\"\n", 0},
		{"debounce = \"3s\"\n", 3 * time.Second},
	} {
		c, err := Parse("t.toml", []byte("[[scanner]]\nname = \"till\"\npath = \"/dev/ttyACM0\"\npurpose = \"loyalty\"\n"+tc.line))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Scanners[0].Scanner().Debounce; got != tc.want {
			t.Errorf("%q: debounce %v, want %v", tc.line, got, tc.want)
		}
	}
}
