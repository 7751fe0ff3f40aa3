package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/syslogin"
)

// collector is the publisher behind a real syslog listener in these tests:
// it counts the parsed events by dataset and says when it has want of them.
type collector struct {
	mu        sync.Mutex
	want      int
	n         int
	byDataset map[string]int
	errors    []string
	full      chan struct{}
}

func newCollector(want int) *collector {
	return &collector{want: want, byDataset: map[string]int{}, full: make(chan struct{})}
}

func (c *collector) Publish(_ context.Context, e *pipeline.Event, done func(error)) error {
	c.mu.Lock()
	c.n++
	c.byDataset[e.Dataset]++
	if e.Error != "" {
		c.errors = append(c.errors, e.Error+": "+string(e.Original))
	}
	if c.n == c.want {
		close(c.full)
	}
	c.mu.Unlock()
	if done != nil {
		done(nil)
	}
	return nil
}

// wait waits until want events arrived, failing the test after timeout.
func (c *collector) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.full:
	case <-time.After(timeout):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("received %d of %d events", c.n, c.want)
	}
}

// listen starts vpipe's syslog listener (with vpipe's parse chain) on a
// free loopback port.
func listen(t *testing.T, cfg syslogin.Config, c *collector) string {
	t.Helper()
	cfg.Address = "127.0.0.1:0"
	parser := record.New(syslog.Options{Location: time.UTC}, vmware.New(), nil)
	l, err := syslogin.Listen(cfg, "test", parser, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	return l.Addr().String()
}

// TestSendToListener sends generated lines over every transport and
// framing into vpipe's own listener and parse chain, and checks that every
// record arrived whole, as the dataset of its kind.
func TestSendToListener(t *testing.T) {
	certPEM, keyPEM := selfSigned(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}

	const n = 300
	tests := []struct {
		name    string
		cfg     syslogin.Config
		args    []string
		framing string
	}{
		{name: "tcp newline", cfg: syslogin.Config{Transport: "tcp", Framing: "non-transparent"}, args: []string{"-conns", "3"}, framing: framingNewline},
		{name: "tcp octet-counting", cfg: syslogin.Config{Transport: "tcp", Framing: "octet-counting"}, args: []string{"-framing", framingOctet}, framing: framingOctet},
		{name: "tcp auto, paced", cfg: syslogin.Config{Transport: "tcp"}, args: []string{"-rate", "3000", "-conns", "2"}, framing: framingNewline},
		// UDP cannot push back: paced, so that the socket buffer never
		// overflows and the count is exact.
		{name: "udp, paced", cfg: syslogin.Config{Transport: "udp", ReadBuffer: 4 << 20}, args: []string{"-transport", "udp", "-conns", "2", "-rate", "3000"}},
		{name: "tls", cfg: syslogin.Config{Transport: "tls", TLS: serverTLS}, args: []string{"-transport", "tls", "-tls-ca", caFile, "-framing", framingOctet}, framing: framingOctet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(n)
			addr := listen(t, tt.cfg, c)
			var stdout, stderr bytes.Buffer
			args := append([]string{"-count", "300", "-json"}, tt.args...)
			if code := run(context.Background(), append(args, addr), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			c.wait(t, 20*time.Second)
			var r result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("report %q: %v", stdout.String(), err)
			}
			if r.Messages != n || r.Errors != 0 || r.Unconfirmed != 0 {
				t.Errorf("report: %d sent, %d errors, %d unconfirmed; want %d, 0, 0", r.Messages, r.Errors, r.Unconfirmed, n)
			}
			if r.Framing != tt.framing {
				t.Errorf("report framing %q, want %q", r.Framing, tt.framing)
			}
			if r.ByKind[kindDFW] != n/3 || r.ByKind[kindGateway] != n/3 || r.ByKind[kindVCenter] != n/3 {
				t.Errorf("report by kind %v, want %d each", r.ByKind, n/3)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			want := map[string]int{pipeline.DatasetNSXDFW: n / 3, pipeline.DatasetNSXGatewayFW: n / 3, pipeline.DatasetVCenterEvent: n / 3}
			for ds, k := range want {
				if c.byDataset[ds] != k {
					t.Errorf("received %v, want %v", c.byDataset, want)
					break
				}
			}
			if len(c.errors) > 0 {
				t.Errorf("%d events with parse errors, first: %s", len(c.errors), c.errors[0])
			}
		})
	}
}

// TestSendFile sends a file's lines once, in order.
func TestSendFile(t *testing.T) {
	lines := []string{
		"<13>1 2024-05-15T19:41:25.001Z esx01 FIREWALL-PKTLOG - - - 5ff3a4d0 INET match PASS mainrs/1024 OUT 60 TCP 10.10.10.11/60517->10.10.10.10/443 S dcgrp2a55d8e4c1f7b1ad8a7e95c07fd43a",
		"<14>1 2024-05-15T19:41:26Z host app - - - hello",
		"just a line",
	}
	path := filepath.Join(t.TempDir(), "sample.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-file", path, ln.Addr().String()}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := strings.Join(lines, "\n") + "\n"; <-got != want {
		t.Errorf("received something else than the file")
	}
	if !strings.Contains(stdout.String(), "sent 3 messages") || !strings.Contains(stdout.String(), "file 3") {
		t.Errorf("report:\n%s", stdout.String())
	}
}

// TestRate checks that -rate paces the records: n records at rate r take
// at least (n-1)/r.
func TestRate(t *testing.T) {
	c := newCollector(50)
	addr := listen(t, syslogin.Config{Transport: "tcp"}, c)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if code := run(context.Background(), []string{"-rate", "200", "-count", "50", "-gen", "dfw", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if d := time.Since(start); d < 245*time.Millisecond {
		t.Errorf("50 records at 200/s took %v, want at least 245ms", d)
	}
	c.wait(t, 10*time.Second)
}

// TestDuration checks that -duration ends an endless run and the report
// says what was sent.
func TestDuration(t *testing.T) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-transport", "udp", "-rate", "100", "-duration", "300ms", "-json", ln.LocalAddr().String()}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var r result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Messages == 0 || r.Messages > 60 || r.Seconds < 0.3 {
		t.Errorf("%d messages in %.3fs at 100/s for 300ms", r.Messages, r.Seconds)
	}
}

// TestReconnect closes the first connection under the sender: it counts
// the failed write, reconnects and goes on.
func TestReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	second := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1))
		// RST rather than FIN, so that the sender's next write fails.
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		c, err = ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		second <- bytes.Count(b, []byte("\n"))
	}()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-rate", "1000", "-count", "300", "-json", ln.Addr().String()}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var r result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Reconnects < 1 || r.Unconfirmed < 1 || r.Messages+r.Unconfirmed != 300 {
		t.Errorf("report %+v: want a reconnect, some unconfirmed, sent+unconfirmed 300", r)
	}
	if got := <-second; got == 0 || uint64(got) > r.Messages {
		t.Errorf("second connection got %d records; report says %d sent", got, r.Messages)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no address", []string{"-count", "1"}, 2, "want exactly one ADDR"},
		{"bad transport", []string{"-transport", "sctp", "x:1"}, 2, `-transport "sctp"`},
		{"bad framing", []string{"-framing", "lf", "x:1"}, 2, `-framing "lf"`},
		{"bad kind", []string{"-gen", "dfw,nsxv", "x:1"}, 2, `unknown kind "nsxv"`},
		{"bad conns", []string{"-conns", "0", "x:1"}, 2, "-conns must be at least 1"},
		{"missing file", []string{"-file", "/nonexistent", "x:1"}, 1, "no such file"},
		{"refused", []string{"-count", "1", "127.0.0.1:1"}, 1, "connection refused"},
		{"half mTLS", []string{"-transport", "tls", "-tls-cert", "c.pem", "-count", "1", "x:1"}, 1, "go together"},
		{"help", []string{"-h"}, 0, "Examples:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

// selfSigned returns a certificate and key for 127.0.0.1.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vpipe test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
