package bus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "storeagent test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With a certificate the embedded broker speaks TLS only.
func TestEmbeddedTLS(t *testing.T) {
	f := newFixture(t)
	f.seedBoth(t)
	cfg := embeddedConfig(t)
	var pool *x509.CertPool
	cfg.Embedded.TLSCertFile, cfg.Embedded.TLSKeyFile, pool = selfSigned(t, t.TempDir())
	b := startBus(t, cfg, f.a, nil)
	d := dev("speaker-1")

	o := paho.NewClientOptions().AddBroker("ssl://" + b.Addr().String()).SetClientID(d.ID).
		SetUsername(d.Username).SetPassword(d.password).SetProtocolVersion(4).SetAutoReconnect(false).
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over TLS: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	if got := ask(t, c, d.ID, "identify", `{"requestId":"t1","scan":"`+card+`"}`); got["userId"] != cust1 {
		t.Fatalf("answer %v", got)
	}

	if _, err := client(t, "tcp://"+b.Addr().String(), d.ID, d.Username, d.password); err == nil {
		t.Fatal("a clear-text client got in")
	}
}
