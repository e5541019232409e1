package wire

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestKeyFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	priv := testKey("central")
	pub := priv.Public().(ed25519.PublicKey)
	privPath, pubPath := filepath.Join(dir, "central.key"), filepath.Join(dir, "central.pub")
	wantErr(t, WritePrivateKey(privPath, priv))
	wantErr(t, WritePublicKey(pubPath, pub))

	if got := must[ed25519.PrivateKey](t)(LoadPrivateKey(privPath)); !got.Equal(priv) {
		t.Fatal("private key changed")
	}
	if got := must[ed25519.PublicKey](t)(LoadPublicKey(pubPath)); !got.Equal(pub) {
		t.Fatal("public key changed")
	}
	if fi, err := os.Stat(privPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", fi.Mode(), err)
	}
	if err := WritePrivateKey(privPath, priv); err == nil {
		t.Fatal("overwrote an existing key")
	}
}

// TestKeyFilesFromOpenSSL reads keys as the operator's documented command
// writes them.
func TestKeyFilesFromOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub.pem")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("genpkey", "-algorithm", "ed25519", "-out", privPath)
	run("pkey", "-in", privPath, "-pubout", "-out", pubPath)
	priv := must[ed25519.PrivateKey](t)(LoadPrivateKey(privPath))
	pub := must[ed25519.PublicKey](t)(LoadPublicKey(pubPath))
	if !pub.Equal(priv.Public()) {
		t.Fatal("public key does not match private key")
	}
	s := must[*Signer](t)(NewSigner(priv))
	v := must[*Verifier](t)(NewVerifier(pub))
	msg := must[[]byte](t)(SignAck(s, testScope, sampleAck()))
	must[Ack](t)(VerifyAck(v, testScope, msg))
}

func TestKeyFilesReject(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub := write("ec.pub", "PUBLIC KEY", must[[]byte](t)(x509.MarshalPKIXPublicKey(&ec.PublicKey)))
	ecPriv := write("ec.key", "PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(ec)))
	edPub := filepath.Join(dir, "ed.pub")
	wantErr(t, WritePublicKey(edPub, testKey("a").Public().(ed25519.PublicKey)))
	garbage := write("garbage", "PUBLIC KEY", []byte("nope"))
	notPEM := filepath.Join(dir, "not-pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	for name, load := range map[string]func() error{
		"ecdsa public":      func() error { _, err := LoadPublicKey(ecPub); return err },
		"ecdsa private":     func() error { _, err := LoadPrivateKey(ecPriv); return err },
		"public as private": func() error { _, err := LoadPrivateKey(edPub); return err },
		"garbage der":       func() error { _, err := LoadPublicKey(garbage); return err },
		"not pem":           func() error { _, err := LoadPublicKey(notPEM); return err },
		"missing file":      func() error { _, err := LoadPublicKey(filepath.Join(dir, "nope")); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if load() == nil {
				t.Fatal("loaded")
			}
		})
	}
}
