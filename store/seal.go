package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// KeySize is the size of the at-rest key: AES-256.
const KeySize = 32

// sealer encrypts values with AES-256-GCM. A nonce is drawn at random for
// every record; at the NIST bound of 2^32 random nonces per key, an agent
// writing a million records a day would need ten thousand years to reach it.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("at-rest key is %d bytes: %w", len(key), ErrBadKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("at-rest key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// aad binds a sealed value to where it is stored: bucket name, a zero byte,
// and the record key. Moving a sealed value under another key breaks it.
func aad(bucket string, key []byte) []byte {
	var buf [64]byte // most names and keys fit: no allocation on the read path
	out := buf[:0]
	out = append(out, bucket...)
	out = append(out, 0)
	return append(out, key...)
}

// seal returns nonce || ciphertext || tag.
func (s *sealer) seal(bucket string, key, plain []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[:ns], plain, aad(bucket, key)), nil
}

func (s *sealer) open(bucket string, key, sealed []byte) ([]byte, error) {
	return s.openTo(nil, bucket, key, sealed)
}

// openTo is open appending the plain value to dst.
func (s *sealer) openTo(dst []byte, bucket string, key, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, &CorruptError{Bucket: bucket, Key: key, Err: errors.New("sealed value too short")}
	}
	plain, err := s.aead.Open(dst, sealed[:ns], sealed[ns:], aad(bucket, key))
	if err != nil {
		return nil, &CorruptError{Bucket: bucket, Key: key, Err: errors.New("seal does not open (wrong key or damaged value)")}
	}
	return plain, nil
}

// LoadKeyFile reads a 32-byte key from path: either 32 raw bytes or 64 hex
// characters (surrounding white space ignored). On Unix the file must not be
// readable or writable by group or others (mode 0600 or tighter); a looser
// file is refused with an error wrapping ErrKeyFileMode that says how to fix
// it. Windows has no such mode bits; there the ACL of the state directory is
// the guard.
func LoadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err, Hint: "create one with: storectl keygen " + path}
	}
	if err := checkKeyMode(path, fi); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	key, err := parseKey(raw)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	return key, nil
}

func checkKeyMode(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return &KeyFileError{Path: path, Err: errors.New("not a regular file")}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &KeyFileError{
			Path: path,
			Err:  fmt.Errorf("%w: mode %04o", ErrKeyFileMode, perm),
			Hint: "run: chmod 600 " + path,
		}
	}
	return nil
}

func parseKey(raw []byte) ([]byte, error) {
	if len(raw) == KeySize {
		return raw, nil
	}
	text := strings.TrimSpace(string(raw))
	if len(text) == 2*KeySize {
		key, err := hex.DecodeString(text)
		if err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("%w: want 32 raw bytes or 64 hex characters, file has %d bytes", ErrBadKey, len(raw))
}

// GenerateKeyFile writes a fresh random 32-byte key, hex encoded, to path
// with mode 0600. It refuses to overwrite an existing file: losing the key
// makes every sealed record unreadable.
func GenerateKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return nil, &KeyFileError{Path: path, Err: err}
	}
	return key, nil
}

// LoadOrCreateKeyFile loads the key at path, creating it first when the file
// does not exist. It reports whether it created the file.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err = GenerateKeyFile(path)
	return key, err == nil, err
}
