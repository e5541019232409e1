package bus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// sampleFile mirrors the [bus] section with its TOML keys, to read
// sample.conf the way the daemon's loader reads a config: strictly.
type sampleFile struct {
	Bus struct {
		Mode     Mode `toml:"mode"`
		Workers  int  `toml:"workers"`
		QueueLen int  `toml:"queue_len"`
		Embedded struct {
			Listen      string `toml:"listen"`
			TLSCertFile string `toml:"tls_cert_file"`
			TLSKeyFile  string `toml:"tls_key_file"`
		} `toml:"embedded"`
		External struct {
			Broker       string `toml:"broker"`
			ClientID     string `toml:"client_id"`
			Username     string `toml:"username"`
			PasswordFile string `toml:"password_file"`
			CAFile       string `toml:"ca_file"`
		} `toml:"external"`
		Device []struct {
			ID           string     `toml:"id"`
			Kind         DeviceKind `toml:"kind"`
			Purpose      string     `toml:"purpose"`
			Username     string     `toml:"username"`
			PasswordFile string     `toml:"password_file"`
			PasswordEnv  string     `toml:"password_env"`
		} `toml:"device"`
	} `toml:"bus"`
}

// sample.conf is valid as written: every key known, every value good.
func TestSampleConf(t *testing.T) {
	f, err := os.Open(filepath.Join(".", "sample.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s sampleFile
	if err := toml.NewDecoder(f).DisallowUnknownFields().Decode(&s); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
	cfg := Config{
		Mode: s.Bus.Mode, StoreID: storeID, Purposes: purposes(), Workers: s.Bus.Workers, QueueLen: s.Bus.QueueLen,
		Embedded: EmbeddedConfig(s.Bus.Embedded), External: ExternalConfig(s.Bus.External),
	}
	for _, d := range s.Bus.Device {
		cfg.Devices = append(cfg.Devices, DeviceConfig(d))
	}
	if len(cfg.Devices) != 3 {
		t.Fatalf("%d devices read", len(cfg.Devices))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("sample.conf: %v", err)
	}
}
