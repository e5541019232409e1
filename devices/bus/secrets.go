package bus

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// A device's password is kept only as its SHA-256, so that the comparison
// at connect time runs over two 32-byte digests in constant time whatever
// the lengths of the passwords.
type digest [sha256.Size]byte

// readSecret reads a password or key file that must be readable by its
// owner only, as store.LoadKeyFile requires of the at-rest key.
func readSecret(key, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, bad(key, "%s: %v", path, unwrapPath(err))
	}
	if err := checkSecretMode(fi); err != nil {
		return nil, bad(key, "%s: %v: run chmod 600 %s", path, err, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, bad(key, "%s: %v", path, unwrapPath(err))
	}
	return b, nil
}

func checkSecretMode(fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("readable by others (mode %04o)", perm)
	}
	return nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// password reads a password file: the whole file, one trailing newline
// removed. The password is never part of an error.
func password(key, path string) (string, error) {
	b, err := readSecret(key, path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", bad(key, "%s is empty", path)
	}
	return pw, nil
}

// devicePassword returns the digest of a device's password, from its file
// or its environment variable.
func devicePassword(key string, d DeviceConfig) (digest, error) {
	var pw string
	if d.PasswordFile != "" {
		var err error
		if pw, err = password(key+"password_file", d.PasswordFile); err != nil {
			return digest{}, err
		}
	} else if pw = os.Getenv(d.PasswordEnv); pw == "" {
		return digest{}, bad(key+"password_env", "$%s is not set or empty", d.PasswordEnv)
	}
	return sha256.Sum256([]byte(pw)), nil
}

// serverTLS loads the embedded broker's certificate.
func serverTLS(e EmbeddedConfig) (*tls.Config, error) {
	if e.TLSCertFile == "" {
		return nil, nil
	}
	key, err := readSecret("bus.embedded.tls_key_file", e.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	cert, err := os.ReadFile(e.TLSCertFile)
	if err != nil {
		return nil, bad("bus.embedded.tls_cert_file", "%s: %v", e.TLSCertFile, unwrapPath(err))
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, bad("bus.embedded.tls_cert_file", "%s and tls_key_file %s: %v", e.TLSCertFile, e.TLSKeyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// clientTLS is the TLS config for a TLS broker URL, with the CA file's
// roots when one is given.
func clientTLS(e ExternalConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		return nil, bad("bus.external.ca_file", "%s: %v", e.CAFile, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, bad("bus.external.ca_file", "%s holds no PEM certificate", e.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
