package support

import (
	"bytes"
	"fmt"

	"github.com/pelletier/go-toml/v2"

	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
)

// redacted replaces a value that must not leave the device.
const redacted = "<redacted>"

// RedactedConfig is cfg as TOML, every default filled in, for a support
// bundle and GET /v1/config. The config holds no secret inline (keys,
// passwords and tokens are files or environment variables, whose paths and
// names stay); the broker user names, which help an attacker more than a
// technician, are replaced.
func RedactedConfig(cfg *firmwareconfig.Config) ([]byte, error) {
	c := *cfg
	c.Sync.Username = redactIfSet(c.Sync.Username)
	c.Bus.External.Username = redactIfSet(c.Bus.External.Username)
	c.Bus.Devices = append([]firmwareconfig.BusDevice(nil), cfg.Bus.Devices...)
	for i := range c.Bus.Devices {
		c.Bus.Devices[i].Username = redactIfSet(c.Bus.Devices[i].Username)
	}
	var b bytes.Buffer
	b.WriteString("# The configuration in force, every default filled in; secrets removed.\n")
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(true)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b.Bytes(), nil
}

func redactIfSet(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}
