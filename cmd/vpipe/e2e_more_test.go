package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/broker"
	"github.com/vpipe/vpipe/pipeline/broker/brokertest"
	"github.com/vpipe/vpipe/pipeline/config"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndToEndTLS sends RFC 5425 syslog over TLS and over mTLS, and checks
// that a client without a certificate is refused by the mTLS listener.
func TestEndToEndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	srvCert, srvKey := ca.issue(t, "vpipe", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, "esxi01", x509.ExtKeyUsageClientAuth)
	cfg := testConfig(dir)
	tlsCfg := config.TLS{CertFile: writeFile(t, dir, "srv.crt", srvCert), KeyFile: writeFile(t, dir, "srv.key", srvKey), MinVersion: "1.2"}
	mtlsCfg := tlsCfg
	mtlsCfg.ClientCAFile = writeFile(t, dir, "ca.crt", ca.pem)
	cfg.Syslog = append(cfg.Syslog,
		config.Listener{Name: "tls", Transport: "tls", Address: "127.0.0.1:0", Framing: "auto", MaxFrameBytes: 65536, IdleTimeout: config.Duration(time.Minute), MaxConnections: 10, ReadBuffer: 1 << 20, Sockets: 1, QueueSize: 100, TLS: tlsCfg},
		config.Listener{Name: "mtls", Transport: "tls", Address: "127.0.0.1:0", Framing: "auto", MaxFrameBytes: 65536, IdleTimeout: config.Duration(time.Minute), MaxConnections: 10, ReadBuffer: 1 << 20, Sockets: 1, QueueSize: 100, TLS: mtlsCfg},
	)
	r := startVpipe(t, cfg)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	send := func(addr string, certs []tls.Certificate, line string) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: certs, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := fmt.Fprintf(c, "%d %s", len(line), line); err != nil {
			return err
		}
		// A refused client certificate surfaces on the first read (TLS 1.3).
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
			return err
		}
		return nil
	}
	tlsAddr, mtlsAddr := r.p.listeners[2].Addr().String(), r.p.listeners[3].Addr().String()
	if err := send(tlsAddr, nil, "<14>1 2024-05-15T19:41:25.001Z h app - - - over tls"); err != nil {
		t.Fatal(err)
	}
	if err := send(mtlsAddr, []tls.Certificate{pair}, "<14>1 2024-05-15T19:41:25.001Z h app - - - over mtls"); err != nil {
		t.Fatal(err)
	}
	if err := send(mtlsAddr, nil, "<14>1 2024-05-15T19:41:25.001Z h app - - - no client cert"); err == nil {
		t.Error("mTLS listener accepted a client without a certificate")
	}
	got := events(t, r.kafka(), "vpipe.other", 2)
	msgs := map[string]bool{}
	for _, ev := range got {
		msgs[field(ev, "message").(string)] = true
	}
	if !msgs["over tls"] || !msgs["over mtls"] || len(got) != 2 {
		t.Fatalf("events: %v", msgs)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestBrokerDownAndBack sends over TCP while the Kafka cluster is down;
// once it is up every event arrives (count in = count out).
func TestBrokerDownAndBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kafkaAddr := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t.TempDir())
	cfg.Kafka.Brokers = []string{kafkaAddr}
	r := startVpipe(t, cfg)
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		fmt.Fprintf(c, "<14>1 2024-05-15T19:41:25.001Z h app - - - while down %d\n", i)
	}
	c.Close()
	brokertest.StartConfig(t, broker.Config{Listen: kafkaAddr})
	got := events(t, kafkaAddr, "vpipe.other", n)
	seen := map[string]bool{}
	for _, ev := range got {
		seen[field(ev, "message").(string)] = true
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("%d events (%d distinct), want %d", len(got), len(seen), n)
	}
}

// TestBadInputKept sends binary garbage, invalid UTF-8 and an oversized
// frame over TCP: each becomes an event with its bytes and an error.
func TestBadInputKept(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Syslog[1].MaxFrameBytes = 1024
	r := startVpipe(t, cfg)
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x00\x01\x02\xff garbage\n"))
	c.Write([]byte("<14>1 2024-05-15T19:41:25.001Z h app - - - bad utf8 \xc3\x28\n"))
	c.Write([]byte(strings.Repeat("A", 3000) + "\n"))
	c.Write([]byte("<14>1 2024-05-15T19:41:25.001Z h app - - - after the big one\n"))
	c.Close()
	got := events(t, r.kafka(), "vpipe.other", 4)
	var errs, base64s int
	var afterBig bool
	for _, ev := range got {
		if field(ev, "error.message") != nil {
			errs++
		}
		if field(ev, "vpipe.original_base64") != nil {
			base64s++
		}
		if field(ev, "message") == "after the big one" {
			afterBig = true
		}
	}
	if errs < 2 || base64s < 2 || !afterBig {
		t.Fatalf("errors %d, base64 originals %d, resynced %v:\n%v", errs, base64s, afterBig, got)
	}
}
