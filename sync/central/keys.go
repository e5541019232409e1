package central

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/storeagent/storeagent/sync/wire"
)

// Files of a keys directory, as GenerateKeys writes them.
const (
	// KeyFile is the central's Ed25519 private key, PEM (PKCS #8), 0600.
	KeyFile = "central.key"
	// PublicKeyFile is its public key, PEM (PKIX), for the agents' config.
	PublicKeyFile = "central.pub"
	// TenantKeyFile is the tenant key, 32 bytes as 64 hex characters and a
	// newline, 0600: the agents of the tenant hold the same.
	TenantKeyFile = "tenant.key"
)

// TenantKeySize is the size of a tenant key GenerateKeys makes.
const TenantKeySize = 32

// Keys are a central's secrets.
type Keys struct {
	// Central signs downlink messages.
	Central ed25519.PrivateKey
	// Tenant keys the identifier hashes.
	Tenant []byte
}

// String hides the keys.
func (Keys) String() string { return "central.Keys{<redacted>}" }

// GenerateKeys creates dir (0700) if needed and writes a new key pair and
// tenant key into it. It refuses to replace any existing file: a replaced
// key locks every agent out.
func GenerateKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("keys directory: %w", err)
	}
	for _, name := range []string{KeyFile, PublicKeyFile, TenantKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return Keys{}, fmt.Errorf("keys directory %s already holds %s: refusing to replace keys", dir, name)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Keys{}, fmt.Errorf("generate key: %w", err)
	}
	tenant := make([]byte, TenantKeySize)
	rand.Read(tenant)
	if err := wire.WritePrivateKey(filepath.Join(dir, KeyFile), priv); err != nil {
		return Keys{}, err
	}
	if err := wire.WritePublicKey(filepath.Join(dir, PublicKeyFile), pub); err != nil {
		return Keys{}, err
	}
	if err := WriteTenantKey(filepath.Join(dir, TenantKeyFile), tenant); err != nil {
		return Keys{}, err
	}
	return Keys{Central: priv, Tenant: tenant}, nil
}

// LoadKeys reads the central key and the tenant key from dir.
func LoadKeys(dir string) (Keys, error) {
	path := filepath.Join(dir, KeyFile)
	if err := checkSecretMode(path); err != nil {
		return Keys{}, err
	}
	priv, err := wire.LoadPrivateKey(path)
	if err != nil {
		return Keys{}, err
	}
	tenant, err := LoadTenantKey(filepath.Join(dir, TenantKeyFile))
	if err != nil {
		return Keys{}, err
	}
	return Keys{Central: priv, Tenant: tenant}, nil
}

// WriteTenantKey writes key as hex to a new file of mode 0600.
func WriteTenantKey(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write tenant key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("write tenant key %s: %w", path, err)
	}
	return nil
}

// LoadTenantKey reads a tenant key: 64 hex characters (surrounding space
// ignored) or 32 raw bytes, in a file nobody but its owner may read.
func LoadTenantKey(path string) ([]byte, error) {
	if err := checkSecretMode(path); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tenant key: %w", err)
	}
	if len(raw) == TenantKeySize {
		return raw, nil
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) < TenantKeySize {
		return nil, fmt.Errorf("tenant key %s: want 64 hex characters or 32 raw bytes", path)
	}
	return key, nil
}

// checkSecretMode refuses a secret file that others may read.
func checkSecretMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %04o: others may read it; run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}
