package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/storeagent/storeagent/devices/localapi"
)

const brokerHint = "check the network and the firewall towards the broker, and sync.broker"

// broker parses sync.broker: its scheme and host:port.
func broker(raw string) (scheme, addr string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Port() == "" {
		return "", "", errors.New("sync.broker is not tcp://host:port or ssl://host:port")
	}
	return u.Scheme, u.Host, nil
}

func brokerCheck(ctx context.Context, env *Env) localapi.Check {
	if !env.Config.Sync.Enabled {
		return skip("broker", "sync is disabled: the agent works offline and keeps every event")
	}
	_, addr, err := broker(env.Config.Sync.Broker)
	if err != nil {
		return fail("broker", err.Error(), "fix sync.broker")
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout)
	defer cancel()
	start := env.Now()
	conn, err := env.Dial(ctx, "tcp", addr)
	if err != nil {
		c := fail("broker", "cannot connect to "+addr, brokerHint)
		c.Details = []string{err.Error()}
		return c
	}
	conn.Close()
	return ok("broker", fmt.Sprintf("%s accepts TCP connections (%s)", addr, env.Now().Sub(start).Round(time.Millisecond)))
}

// tlsCheck makes the handshake the link makes, with its CA, server name and
// client certificate, and checks how long the certificates have left.
func tlsCheck(ctx context.Context, env *Env) localapi.Check {
	s := env.Config.Sync
	if !s.Enabled {
		return skip("tls", "sync is disabled")
	}
	scheme, addr, err := broker(s.Broker)
	if err != nil {
		return skip("tls", "not checked: "+err.Error())
	}
	if scheme != "ssl" {
		return warn("tls", "the broker is plain "+scheme+"://: events and changes travel unencrypted", "use ssl://host:8883 with sync.ca_file")
	}
	cfg, clientLeaf, notes, err := tlsConfig(env, addr)
	if err != nil {
		return fail("tls", "the TLS settings cannot be used", err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout)
	defer cancel()
	raw, err := env.Dial(ctx, "tcp", addr)
	if err != nil {
		return skip("tls", "not checked: the broker does not accept connections")
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		c := fail("tls", "the TLS handshake with "+addr+" fails", "check sync.ca_file, sync.server_name and the device's clock")
		c.Details = append([]string{err.Error()}, notes...)
		return c
	}
	state := conn.ConnectionState()
	c := ok("tls", fmt.Sprintf("handshake with %s ok (%s)", addr, tls.VersionName(state.Version)))
	c.Details = notes
	certs := []namedCert{{"server certificate", state.PeerCertificates[0]}}
	if clientLeaf != nil {
		certs = append(certs, namedCert{"client certificate " + s.CertFile, clientLeaf})
	}
	for _, nc := range certs {
		status, line := expiry(nc, env.Now())
		c.Status = worse(c.Status, status)
		c.Details = append(c.Details, line)
	}
	if c.Status != localapi.CheckOK {
		c.Summary += ", but a certificate expires"
		c.Hint = "renew the certificate before it expires: the link will be refused"
	}
	return c
}

type namedCert struct {
	name string
	cert *x509.Certificate
}

func expiry(nc namedCert, now time.Time) (localapi.CheckStatus, string) {
	left := nc.cert.NotAfter.Sub(now)
	until := nc.cert.NotAfter.UTC().Format("2006-01-02")
	switch {
	case left <= 0:
		return localapi.CheckFail, fmt.Sprintf("%s expired on %s", nc.name, until)
	case left < CertWarn:
		return localapi.CheckWarn, fmt.Sprintf("%s expires on %s, in %d days", nc.name, until, int(left.Hours()/24))
	}
	return localapi.CheckOK, fmt.Sprintf("%s valid until %s (%d days)", nc.name, until, int(left.Hours()/24))
}

// tlsConfig is the link's TLS config, and the client certificate for its
// expiry. A client key the doctor may not read (storectl not run as root)
// is noted, and the handshake goes on without it.
func tlsConfig(env *Env, addr string) (cfg *tls.Config, clientLeaf *x509.Certificate, notes []string, err error) {
	s := env.Config.Sync
	host, _, _ := net.SplitHostPort(addr)
	cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.ServerName != "" {
		cfg.ServerName = s.ServerName
	}
	if s.CAFile != "" {
		pemBytes, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sync.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, nil, nil, errors.New("sync.ca_file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if s.CertFile == "" {
		return cfg, nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	switch {
	case err == nil:
		cfg.Certificates = []tls.Certificate{cert}
	case errors.Is(err, os.ErrPermission):
		notes = append(notes, "the client key cannot be read by this user: handshake tried without it")
	default:
		return nil, nil, nil, fmt.Errorf("sync.cert_file and sync.key_file: %s", strings.TrimPrefix(err.Error(), "tls: "))
	}
	return cfg, readLeaf(s.CertFile), notes, nil
}

// readLeaf reads the first certificate of a PEM file, for its expiry.
func readLeaf(path string) *x509.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return c
}
