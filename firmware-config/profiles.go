package firmwareconfig

import (
	"embed"
	"fmt"
)

//go:embed *.toml
var profiles embed.FS

// DefaultName names the embedded default in errors and in `storectl config`.
const DefaultName = "embedded:default.toml"

// Default returns the embedded default configuration: offline, no broker,
// no hardware. Every field is set.
func Default() *Config {
	c := &Config{}
	if err := decodeStrict(DefaultDoc(), c); err != nil {
		panic(fmt.Sprintf("embedded default.toml: %v", err)) // caught by TestDefaultIsValid
	}
	return c
}

// DefaultDoc is the text of the embedded default.
func DefaultDoc() []byte {
	b, err := profiles.ReadFile("default.toml")
	if err != nil {
		panic(err)
	}
	return b
}

// Profile returns the text of the documented profile for a device kind.
func Profile(kind string) ([]byte, error) {
	return profiles.ReadFile(kind + ".toml")
}
