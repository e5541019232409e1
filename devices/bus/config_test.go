package bus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validEmbedded() Config {
	return Config{
		StoreID: storeID, Purposes: purposes(),
		Devices: []DeviceConfig{
			{ID: "speaker-1", Kind: Speaker, Purpose: "loyalty", Username: "spk1", PasswordFile: "/etc/storeagent/spk1.pass"},
			{ID: "kiosk-1", Kind: Kiosk, Purpose: "service", Username: "kiosk1", PasswordEnv: "KIOSK1_PASSWORD"},
			{ID: "beacon-1", Kind: Beacon, Purpose: "analytics", Username: "bcn1", PasswordFile: "/etc/storeagent/bcn1.pass"},
		},
	}
}

func validExternal() Config {
	return Config{
		Mode: ModeExternal, StoreID: storeID, Purposes: purposes(),
		External: ExternalConfig{Broker: "ssl://broker.store.lan:8883", ClientID: "storeagent-s1", Username: "agent", PasswordFile: "/etc/storeagent/bus.pass", CAFile: "/etc/storeagent/ca.pem"},
		Devices: []DeviceConfig{
			{ID: "speaker-1", Kind: Speaker, Purpose: "loyalty"},
			{ID: "beacon-1", Kind: Beacon, Purpose: "analytics"},
		},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		base  func() Config
		tweak func(*Config)
		want  string // "" for valid, else the error text, or a part of it
	}{
		{"embedded", validEmbedded, func(*Config) {}, ""},
		{"external", validExternal, func(*Config) {}, ""},
		{"external on loopback in clear", validExternal, func(c *Config) {
			c.External.Broker, c.External.CAFile = "tcp://127.0.0.1:1883", ""
		}, ""},
		{"embedded on the network with TLS", validEmbedded, func(c *Config) {
			c.Embedded = EmbeddedConfig{Listen: "0.0.0.0:8883", TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}
		}, ""},
		{"no devices", validEmbedded, func(c *Config) { c.Devices, c.Purposes = nil, nil }, ""},

		{"unknown mode", validEmbedded, func(c *Config) { c.Mode = "cloud" }, `bus.mode "cloud" unknown`},
		{"store id", validEmbedded, func(c *Config) { c.StoreID = "s/1" }, `agent.store_id "s/1" must be`},
		{"workers", validEmbedded, func(c *Config) { c.Workers = 100 }, "bus.workers 100 out of range"},
		{"queue", validEmbedded, func(c *Config) { c.QueueLen = -1 }, "bus.queue_len -1 out of range"},
		{"listen garbage", validEmbedded, func(c *Config) { c.Embedded.Listen = "localhost" }, `bus.embedded.listen "localhost" is not host:port`},
		{"listen off loopback in clear", validEmbedded, func(c *Config) { c.Embedded.Listen = "0.0.0.0:1883" }, "bus.embedded.tls_cert_file required"},
		{"listen on every interface", validEmbedded, func(c *Config) { c.Embedded.Listen = ":1883" }, "bus.embedded.tls_cert_file required"},
		{"cert without key", validEmbedded, func(c *Config) { c.Embedded.TLSCertFile = "c.pem" }, "tls_cert_file and tls_key_file go together"},
		{"external key in embedded mode", validEmbedded, func(c *Config) { c.External.Broker = "tcp://127.0.0.1:1883" }, "bus.external.broker is only used in external mode"},

		{"no broker", validExternal, func(c *Config) { c.External.Broker = "" }, "bus.external.broker required"},
		{"bad scheme", validExternal, func(c *Config) { c.External.Broker = "http://broker:80" }, `bus.external.broker "http://broker:80" is not`},
		{"no port", validExternal, func(c *Config) { c.External.Broker = "ssl://broker" }, "is not scheme://host:port"},
		{"off loopback in clear", validExternal, func(c *Config) { c.External.Broker, c.External.CAFile = "tcp://broker.store.lan:1883", "" }, "must use ssl://"},
		{"ca file in clear", validExternal, func(c *Config) { c.External.Broker = "tcp://localhost:1883" }, "bus.external.ca_file needs a TLS broker URL"},
		{"no client id", validExternal, func(c *Config) { c.External.ClientID = "" }, `bus.external.client_id "" must be`},
		{"password without user", validExternal, func(c *Config) { c.External.Username = "" }, "bus.external.password_file needs a username"},
		{"embedded key in external mode", validExternal, func(c *Config) { c.Embedded.Listen = "127.0.0.1:1883" }, "bus.embedded.listen is only used in embedded mode"},
		{"device credentials in external mode", validExternal, func(c *Config) { c.Devices[1].PasswordEnv = "X" }, "bus.device[1].password_env is only used in embedded mode"},

		{"not a purpose", validEmbedded, func(c *Config) { c.Devices[2].Purpose = "astrology" }, `bus.device[2].purpose "astrology" is not a purpose`},
		{"rights purpose", validEmbedded, func(c *Config) { c.Devices[0].Purpose = "rights" }, `bus.device[0].purpose "rights" is the agent's own`},
		{"no purposes given", validEmbedded, func(c *Config) { c.Purposes = nil }, "no purposes to check devices against"},
		{"bad id", validEmbedded, func(c *Config) { c.Devices[0].ID = "speaker/1" }, `bus.device[0].id "speaker/1" must be`},
		{"wildcard id", validEmbedded, func(c *Config) { c.Devices[0].ID = "+" }, `bus.device[0].id "+" must be`},
		{"reserved id", validEmbedded, func(c *Config) { c.Devices[0].ID = "inline" }, `bus.device[0].id "inline" is reserved`},
		{"same id twice", validEmbedded, func(c *Config) { c.Devices[1].ID = "speaker-1" }, `bus.device[1].id "speaker-1" is already bus.device[0].id`},
		{"bad kind", validEmbedded, func(c *Config) { c.Devices[1].Kind = "toaster" }, `bus.device[1].kind "toaster" unknown`},
		{"no username", validEmbedded, func(c *Config) { c.Devices[0].Username = "" }, "bus.device[0].username required"},
		{"same username twice", validEmbedded, func(c *Config) { c.Devices[2].Username = "spk1" }, "bus.device[2].username is already bus.device[0].username"},
		{"no password", validEmbedded, func(c *Config) { c.Devices[0].PasswordFile = "" }, "bus.device[0].password_file or password_env is required"},
		{"two passwords", validEmbedded, func(c *Config) { c.Devices[1].PasswordFile = "/x" }, "bus.device[1].password_file and password_env are exclusive"},
		{"bad env name", validEmbedded, func(c *Config) { c.Devices[1].PasswordEnv = "KIOSK-1" }, `bus.device[1].password_env "KIOSK-1" is not`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.base()
			tc.tweak(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
			if tc.want != "" {
				if _, ok := errors.AsType[*ConfigError](err); !ok && !strings.Contains(tc.want, "no purposes") {
					t.Fatalf("%T is not a *ConfigError", err)
				}
			}
		})
	}
}

// The example of the brief, word for word.
func TestConfigErrorText(t *testing.T) {
	cfg := validEmbedded()
	cfg.Devices[2].Purpose = "astrology"
	if got, want := cfg.Validate().Error(), `bus.device[2].purpose "astrology" is not a purpose`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	cfg := validEmbedded()
	cfg.Workers = -3
	cfg.Devices[0].Kind = "toaster"
	cfg.Devices[1].Purpose = "astrology"
	err := cfg.Validate()
	for _, key := range []string{"bus.workers", "bus.device[0].kind", "bus.device[1].purpose"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestDefaults(t *testing.T) {
	b, err := New(Config{StoreID: storeID}, newFixture(t).a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := b.cfg; c.Mode != ModeEmbedded || c.Embedded.Listen != DefaultListen || c.Workers != DefaultWorkers || c.QueueLen != DefaultQueueLen {
		t.Fatalf("defaults %+v", c)
	}
}

// New reads the secrets and names the key of any it cannot use, never the
// secret itself.
func TestNewReadsSecrets(t *testing.T) {
	core := newFixture(t).a
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
	good := write("good.pass", "hunter2\n", 0o600)
	tests := []struct {
		name  string
		tweak func(*DeviceConfig)
		want  string
	}{
		{"file", func(d *DeviceConfig) { d.PasswordFile = good }, ""},
		{"env", func(d *DeviceConfig) { d.PasswordEnv = "BUS_TEST_SECRET"; t.Setenv("BUS_TEST_SECRET", "hunter3") }, ""},
		{"readable by others", func(d *DeviceConfig) { d.PasswordFile = write("open.pass", "hunter4", 0o644) },
			"bus.device[0].password_file " + filepath.Join(dir, "open.pass") + ": readable by others (mode 0644): run chmod 600"},
		{"missing file", func(d *DeviceConfig) { d.PasswordFile = filepath.Join(dir, "nope") }, "bus.device[0].password_file " + filepath.Join(dir, "nope") + ": no such file"},
		{"empty file", func(d *DeviceConfig) { d.PasswordFile = write("empty.pass", "\n", 0o600) }, "is empty"},
		{"unset env", func(d *DeviceConfig) { d.PasswordEnv = "BUS_TEST_UNSET_SECRET" }, "bus.device[0].password_env $BUS_TEST_UNSET_SECRET is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := DeviceConfig{ID: "speaker-1", Kind: Speaker, Purpose: "loyalty", Username: "spk1"}
			tc.tweak(&d)
			_, err := New(Config{StoreID: storeID, Purposes: purposes(), Devices: []DeviceConfig{d}}, core, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: %v, want %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter"):
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestDeviceKindTopics(t *testing.T) {
	tests := []struct {
		kind DeviceKind
		may  []topicKind
	}{
		{Beacon, []topicKind{topicSightings}},
		{Speaker, []topicKind{topicIdentify}},
		{Kiosk, []topicKind{topicIdentify, topicEvents, topicConsent}},
		{"toaster", nil},
	}
	for _, tc := range tests {
		for k := range numTopics {
			want := false
			for _, m := range tc.may {
				want = want || m == k
			}
			if got := tc.kind.may(k); got != want {
				t.Errorf("%s may %s: %v, want %v", tc.kind, k, got, want)
			}
		}
	}
}
