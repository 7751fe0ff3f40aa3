package syslogin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/metrictest"
)

// envelopeOnly is a RecordParser that only parses the syslog envelope (the
// real chain is parsers/record).
type envelopeOnly struct{ p *syslog.Parser }

func (r envelopeOnly) ParseRecord(e *pipeline.Event) {
	msg := r.p.Parse(e)
	e.Dataset = pipeline.DatasetSyslogGeneric
	e.Message = e.Alias(msg)
}

// got is what the recording publisher keeps of an event.
type got struct {
	Original, Message, Error, LogSource, Host, App string
}

// recorder is a Publisher that keeps copies of the events. While gate is
// non-nil and open, Publish blocks until it is closed (or ctx ends).
type recorder struct {
	mu      sync.Mutex
	events  []got
	count   atomic.Int64
	keep    bool
	gate    chan struct{}
	waiting atomic.Int64 // Publish calls blocked on the gate
}

func (r *recorder) Publish(ctx context.Context, e *pipeline.Event, done func(error)) error {
	if r.gate != nil {
		r.waiting.Add(1)
		select {
		case <-r.gate:
			r.waiting.Add(-1)
		case <-ctx.Done():
			r.waiting.Add(-1)
			return ctx.Err()
		}
	}
	if r.keep {
		r.mu.Lock()
		r.events = append(r.events, got{
			Original: string(e.Original), Message: strings.Clone(e.Message), Error: strings.Clone(e.Error),
			LogSource: strings.Clone(e.LogSource), Host: strings.Clone(e.Syslog.Hostname), App: strings.Clone(e.Syslog.AppName),
		})
		r.mu.Unlock()
	}
	r.count.Add(1)
	if done != nil {
		done(nil)
	}
	return nil
}

func (r *recorder) snapshot() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.events...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is one running listener.
type harness struct {
	l      *Listener
	rec    *recorder
	reg    *prometheus.Registry
	logs   *logBuffer
	cancel context.CancelFunc
	served chan error
}

func start(t testing.TB, cfg Config, rec *recorder) *harness {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	h := &harness{rec: rec, reg: prometheus.NewRegistry(), logs: &logBuffer{}, served: make(chan error, 1)}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	parser := envelopeOnly{syslog.NewParser(syslog.Options{})}
	l, err := Listen(cfg, "test", parser, rec, NewMetrics(h.reg), log)
	if err != nil {
		t.Fatal(err)
	}
	h.l = l
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.served <- l.Serve(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels Serve and waits for it to return.
func (h *harness) stop(t testing.TB) {
	t.Helper()
	h.cancel()
	select {
	case err, ok := <-h.served:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		close(h.served)
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func (h *harness) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return metrictest.Sum(t, h.reg, name, labels...)
}

const (
	line5424 = "<13>1 2024-05-15T19:41:25.001Z esx01.example.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow"
	line3164 = `<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP`
)

func TestUDP(t *testing.T) {
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "udp", Sockets: 2, ReadBuffer: 1 << 20}, rec)
	c, err := net.Dial("udp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range []string{line5424, line3164 + "\n"} {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "2 events", func() bool { return rec.count.Load() == 2 })
	evs := rec.snapshot()
	byApp := map[string]got{}
	for _, e := range evs {
		byApp[e.App] = e
		if e.LogSource != c.LocalAddr().String() {
			t.Errorf("LogSource = %q, want %q", e.LogSource, c.LocalAddr())
		}
		if e.Error != "" {
			t.Errorf("error %q", e.Error)
		}
	}
	if e := byApp["FIREWALL-PKTLOG"]; e.Host != "esx01.example.com" || e.Original != line5424 || !strings.HasPrefix(e.Message, "INET TERM") {
		t.Errorf("5424 event %+v", e)
	}
	if e := byApp["velocloud.sdwan"]; e.Host != "b1-edge1" || e.Original != line3164+"\n" || !strings.HasPrefix(e.Message, "VCF Open") {
		t.Errorf("3164 event %+v", e)
	}
	if n := h.metric(t, "vpipe_ingest_received_total", "transport", "udp"); n != 2 {
		t.Errorf("received = %v", n)
	}
}

func TestUDPQueueFullDrops(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	h := start(t, Config{Transport: "udp", QueueSize: 1, Workers: 1}, rec)
	c, err := net.Dial("udp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The worker takes the first datagram and blocks in Publish.
	c.Write([]byte(line5424))
	waitFor(t, "worker blocked in Publish", func() bool { return rec.waiting.Load() == 1 })
	const n = 50
	for range n {
		c.Write([]byte(line5424))
	}
	waitFor(t, "all datagrams read", func() bool { return h.metric(t, "vpipe_ingest_received_total") == n+1 })
	dropped := h.metric(t, "vpipe_ingest_dropped_total", "reason", "queue_full")
	if dropped != n-1 { // one fits in the queue
		t.Errorf("dropped = %v, want %d", dropped, n-1)
	}
	close(rec.gate)
	waitFor(t, "queued events published", func() bool { return rec.count.Load() == 2 })
	if !strings.Contains(h.logs.String(), "UDP queue full") {
		t.Errorf("no log line for the drops")
	}
}

func TestUDPOverLimit(t *testing.T) {
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "udp", MaxFrame: 480}, rec)
	c, err := net.Dial("udp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(line5424 + strings.Repeat("x", 1000)))
	waitFor(t, "event", func() bool { return rec.count.Load() == 1 })
	e := rec.snapshot()[0]
	if len(e.Original) != 480 || !strings.Contains(e.Error, "longer than the limit") {
		t.Errorf("event %d bytes, error %q", len(e.Original), e.Error)
	}
	if n := h.metric(t, "vpipe_ingest_frame_errors_total", "reason", "too_long"); n != 1 {
		t.Errorf("frame errors = %v", n)
	}
}

func dialTCP(t testing.TB, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTCPMixedFraming(t *testing.T) {
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "tcp"}, rec)
	c := dialTCP(t, h)
	var in bytes.Buffer
	var want []string
	for i := range 100 {
		msg := fmt.Sprintf("<13>1 2024-05-15T19:41:25Z h app - - - message %d", i)
		want = append(want, msg)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&in, "%d %s", len(msg), msg)
		case 1:
			in.WriteString(msg + "\n")
		case 2:
			in.WriteString(msg + "\r\n")
		}
	}
	if _, err := c.Write(in.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "100 events", func() bool { return rec.count.Load() == 100 })
	for i, e := range rec.snapshot() {
		if e.Original != want[i] && e.Original != want[i]+"\r" {
			t.Fatalf("event %d: %q, want %q", i, e.Original, want[i])
		}
		if e.Message != fmt.Sprintf("message %d", i) || e.Error != "" || e.App != "app" {
			t.Fatalf("event %d: %+v", i, e)
		}
		if !strings.HasPrefix(e.LogSource, "127.0.0.1:") {
			t.Fatalf("LogSource %q", e.LogSource)
		}
	}
	waitFor(t, "connection closed", func() bool { return h.metric(t, "vpipe_ingest_connections_closed_total", "reason", "eof") == 1 })
	if n := h.metric(t, "vpipe_ingest_received_bytes_total", "transport", "tcp"); n != float64(in.Len()) {
		t.Errorf("received bytes = %v, want %d", n, in.Len())
	}
}

func TestTCPDamagedFrames(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		in     string
		want   []got // Original and Error (substring) are compared
		reason string
	}{
		{
			name: "binary garbage",
			in:   "\x00\xff\xfe\x01garbage\x80\n" + line5424 + "\n",
			want: []got{{Original: "\xff\xfe\x01garbage\x80", Error: "syslog: expected"}, {Original: line5424}},
		},
		{
			name:   "over-limit frame",
			cfg:    Config{MaxFrame: 480},
			in:     line5424 + strings.Repeat("x", 1000) + "\n" + line5424 + "\n",
			want:   []got{{Original: (line5424 + strings.Repeat("x", 1000))[:480], Error: "longer than the limit"}, {Original: line5424}},
			reason: "too_long",
		},
		{
			name: "lying octet count",
			in:   "20 " + line5424 + "\n" + line5424 + "\n",
			want: []got{{Original: line5424[:20], Error: "syslog: expected"}, {Original: line5424[20:], Error: "syslog: expected"}, {Original: line5424}},
		},
		{
			name:   "count cut short by EOF",
			in:     line5424 + "\n500 " + line5424,
			want:   []got{{Original: line5424}, {Original: line5424, Error: "cut short"}},
			reason: "truncated",
		},
		{
			name:   "bad octet count when forced",
			cfg:    Config{Framing: "octet-counting"},
			in:     "x" + line5424 + "\n" + fmt.Sprintf("%d %s", len(line5424), line5424),
			want:   []got{{Original: "x" + line5424, Error: "bad octet count"}, {Original: line5424}},
			reason: "bad_octet_count",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{keep: true}
			cfg := tc.cfg
			cfg.Transport = "tcp"
			h := start(t, cfg, rec)
			c := dialTCP(t, h)
			c.Write([]byte(tc.in))
			c.Close()
			waitFor(t, "events", func() bool { return rec.count.Load() == int64(len(tc.want)) })
			waitFor(t, "connection closed", func() bool { return h.metric(t, "vpipe_ingest_open_connections") == 0 })
			for i, e := range rec.snapshot() {
				w := tc.want[i]
				if e.Original != w.Original || (w.Error == "") != (e.Error == "") || !strings.Contains(e.Error, w.Error) {
					t.Errorf("event %d: original %q error %q, want %q error ~%q", i, e.Original, e.Error, w.Original, w.Error)
				}
			}
			if tc.reason != "" {
				if n := h.metric(t, "vpipe_ingest_frame_errors_total", "reason", tc.reason); n != 1 {
					t.Errorf("frame errors{%s} = %v", tc.reason, n)
				}
			}
			if tc.reason == "too_long" {
				if n := h.metric(t, "vpipe_ingest_discarded_bytes_total"); n != float64(len(line5424)+1000-480) {
					t.Errorf("discarded = %v", n)
				}
			}
		})
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "tcp", IdleTimeout: 100 * time.Millisecond}, rec)
	c := dialTCP(t, h)
	c.Write([]byte(line5424 + "\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v: want EOF from the server closing", n, err)
	}
	if rec.count.Load() != 1 {
		t.Errorf("%d events", rec.count.Load())
	}
	waitFor(t, "idle close counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_closed_total", "reason", "idle_timeout") == 1
	})
	if !strings.Contains(h.logs.String(), "closing idle connection") {
		t.Errorf("no log line: %s", h.logs.String())
	}
}

func TestTCPMaxConnections(t *testing.T) {
	rec := &recorder{}
	h := start(t, Config{Transport: "tcp", MaxConnections: 2}, rec)
	c1, c2 := dialTCP(t, h), dialTCP(t, h)
	waitFor(t, "2 open connections", func() bool { return h.metric(t, "vpipe_ingest_open_connections") == 2 })
	c3 := dialTCP(t, h)
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection was not closed")
	}
	waitFor(t, "rejection counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_rejected_total", "reason", "max_connections") == 1
	})
	if !strings.Contains(h.logs.String(), "too many open connections") {
		t.Errorf("no log line")
	}
	// The first two still work.
	c1.Write([]byte(line5424 + "\n"))
	c2.Write([]byte(line5424 + "\n"))
	waitFor(t, "2 events", func() bool { return rec.count.Load() == 2 })
	// A slot freed is usable again.
	c1.Close()
	waitFor(t, "1 open connection", func() bool { return h.metric(t, "vpipe_ingest_open_connections") == 1 })
	c4 := dialTCP(t, h)
	c4.Write([]byte(line5424 + "\n"))
	waitFor(t, "3 events", func() bool { return rec.count.Load() == 3 })
}

// TestTCPBackpressure: a blocked publisher stalls the reader, which stops
// reading the socket, so the sender blocks; once the publisher resumes,
// every record arrives (count in = count out).
func TestTCPBackpressure(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	h := start(t, Config{Transport: "tcp"}, rec)
	c := dialTCP(t, h)
	msg := []byte(line5424 + "\n")
	// Far more than the scanner buffer and both sockets' buffers hold.
	const total = 48 << 20
	n := total / len(msg)
	in := bytes.Repeat(msg, n)
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(in)
		written <- err
	}()
	waitFor(t, "reader blocked in Publish", func() bool { return rec.waiting.Load() == 1 })
	read := h.metric(t, "vpipe_ingest_received_bytes_total")
	if read > 1<<20 {
		t.Errorf("the listener read %v bytes while its publisher was blocked", read)
	}
	select {
	case err := <-written:
		t.Fatalf("the sender finished writing %d bytes while the listener was blocked (%v)", len(in), err)
	default:
	}
	close(rec.gate)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every record published", func() bool { return rec.count.Load() == int64(n) })
	if d := h.metric(t, "vpipe_ingest_dropped_total"); d != 0 {
		t.Errorf("dropped %v", d)
	}
}

// TestShutdownDrains: records received before Serve's context ends reach
// the publisher, even when it is slow.
func TestShutdownDrains(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	h := start(t, Config{Transport: "udp", QueueSize: 100}, rec)
	c, err := net.Dial("udp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 10 {
		c.Write([]byte(line5424))
	}
	waitFor(t, "10 datagrams read", func() bool { return h.metric(t, "vpipe_ingest_received_total") == 10 })
	h.cancel()
	waitFor(t, "worker waiting", func() bool { return rec.waiting.Load() == 1 })
	close(rec.gate)
	select {
	case err := <-h.served:
		if err != nil {
			t.Fatal(err)
		}
		h.served = make(chan error, 1)
		h.served <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if rec.count.Load() != 10 {
		t.Errorf("%d of 10 records published", rec.count.Load())
	}
}

// TestShutdownDrainTimeout: a publisher that never resumes does not hold
// Serve beyond DrainTimeout, and what it held is counted.
func TestShutdownDrainTimeout(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	h := start(t, Config{Transport: "tcp", DrainTimeout: 50 * time.Millisecond}, rec)
	c := dialTCP(t, h)
	c.Write([]byte(line5424 + "\n" + line5424 + "\n"))
	waitFor(t, "reader blocked", func() bool { return rec.waiting.Load() == 1 })
	h.cancel()
	select {
	case err := <-h.served:
		if err != nil {
			t.Fatal(err)
		}
		h.served = make(chan error, 1)
		h.served <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := h.metric(t, "vpipe_ingest_dropped_total", "reason", "shutdown"); d != 1 {
		t.Errorf("dropped{shutdown} = %v", d)
	}
}

func TestListenErrors(t *testing.T) {
	rec := &recorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, cfg := range []Config{
		{Transport: "tcp", Address: ln.Addr().String()},
		{Transport: "sctp", Address: "127.0.0.1:0"},
		{Transport: "tls", Address: "127.0.0.1:0"},
		{Transport: "tcp", Address: "127.0.0.1:0", Framing: "lines"},
		{Transport: "udp", Address: "nonsense"},
	} {
		if l, err := Listen(cfg, "x", envelopeOnly{syslog.NewParser(syslog.Options{})}, rec, nil, nil); err == nil {
			l.Close()
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// TestCloseWithoutServe releases the port.
func TestCloseWithoutServe(t *testing.T) {
	for _, tr := range []string{"tcp", "udp"} {
		l, err := Listen(Config{Transport: tr, Address: "127.0.0.1:0", Sockets: 2}, "x", envelopeOnly{syslog.NewParser(syslog.Options{})}, &recorder{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2, err := Listen(Config{Transport: tr, Address: addr}, "x", envelopeOnly{syslog.NewParser(syslog.Options{})}, &recorder{}, nil, nil)
		if err != nil {
			t.Fatalf("%s port not released: %v", tr, err)
		}
		l2.Close()
	}
}

// certs is a CA with a server and a client certificate, made for the test.
type certs struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newCerts(t testing.TB) *certs {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vpipe test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	c := &certs{pool: x509.NewCertPool()}
	c.pool.AddCert(ca)
	c.server = leaf(2, "syslog server", x509.ExtKeyUsageServerAuth)
	c.client = leaf(3, "esx01", x509.ExtKeyUsageClientAuth)
	return c
}

func TestTLS(t *testing.T) {
	ct := newCerts(t)
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "tls", TLS: &tls.Config{Certificates: []tls.Certificate{ct.server}, MinVersion: tls.VersionTLS12}}, rec)
	c, err := tls.Dial("tcp", h.l.Addr().String(), &tls.Config{RootCAs: ct.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// RFC 5425 §4.3: octet counting.
	fmt.Fprintf(c, "%d %s%d %s", len(line5424), line5424, len(line3164), line3164)
	c.Close()
	waitFor(t, "2 events", func() bool { return rec.count.Load() == 2 })
	evs := rec.snapshot()
	if evs[0].Original != line5424 || evs[1].Original != line3164 || evs[0].Error != "" || evs[1].Error != "" {
		t.Errorf("events %+v", evs)
	}
}

func TestMTLS(t *testing.T) {
	ct := newCerts(t)
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "tls", TLS: &tls.Config{
		Certificates: []tls.Certificate{ct.server}, ClientCAs: ct.pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}}, rec)
	addr := h.l.Addr().String()

	t.Run("without a client certificate", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ct.pool})
		if err == nil {
			// TLS 1.3: the client learns of the rejection on its first read.
			c.Write([]byte(line5424 + "\n"))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("connection accepted")
		}
		waitFor(t, "rejection counted", func() bool {
			return h.metric(t, "vpipe_ingest_connections_rejected_total", "reason", "tls_bad_certificate") == 1
		})
	})
	t.Run("with a client certificate", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ct.pool, Certificates: []tls.Certificate{ct.client}})
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(line5424 + "\n"))
		c.Close()
		waitFor(t, "1 event", func() bool { return rec.count.Load() == 1 })
	})
	if rec.count.Load() != 1 {
		t.Errorf("%d events", rec.count.Load())
	}
}

// TestTLSTruncatedHandshake: a client that sends half a ClientHello and
// hangs up is logged and counted, and a good client at the same time is
// not affected.
func TestTLSTruncatedHandshake(t *testing.T) {
	ct := newCerts(t)
	rec := &recorder{keep: true}
	h := start(t, Config{Transport: "tls", HandshakeTimeout: 5 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{ct.server}}}, rec)
	addr := h.l.Addr().String()

	good, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ct.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	// A TLS record header announcing a 512-byte handshake record, then 10
	// bytes of it.
	bad := dialTCP(t, h)
	bad.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0})
	bad.Close()
	waitFor(t, "rejection counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_rejected_total", "reason", "tls_eof") == 1
	})
	if !strings.Contains(h.logs.String(), "TLS handshake failed") {
		t.Errorf("no log line")
	}

	// Not TLS at all.
	plain := dialTCP(t, h)
	plain.Write([]byte(line5424 + "\n"))
	waitFor(t, "not-TLS rejection counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_rejected_total", "reason", "tls_not_tls") == 1
	})

	good.Write([]byte(line5424 + "\n"))
	good.Close()
	waitFor(t, "the good client's event", func() bool { return rec.count.Load() == 1 })
}

func TestTLSHandshakeTimeout(t *testing.T) {
	ct := newCerts(t)
	h := start(t, Config{Transport: "tls", HandshakeTimeout: 50 * time.Millisecond,
		TLS: &tls.Config{Certificates: []tls.Certificate{ct.server}}}, &recorder{})
	silent := dialTCP(t, h)
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent client not disconnected")
	}
	waitFor(t, "timeout counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_rejected_total", "reason", "tls_timeout") == 1
	})
}

func TestReadErrorLogged(t *testing.T) {
	rec := &recorder{}
	h := start(t, Config{Transport: "tcp"}, rec)
	c := dialTCP(t, h)
	c.Write([]byte(line5424 + "\npartial"))
	waitFor(t, "first event", func() bool { return rec.count.Load() == 1 })
	// Reset instead of FIN: the server's read fails.
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitFor(t, "read error counted", func() bool {
		return h.metric(t, "vpipe_ingest_connections_closed_total", "reason", "read_error") == 1
	})
	logs := h.logs.String()
	if !strings.Contains(logs, "connection read failed") || !strings.Contains(logs, `"offset":`) || !strings.Contains(logs, `"peer":"127.0.0.1:`) {
		t.Errorf("log: %s", logs)
	}
	// The partial frame was kept as a damaged event.
	waitFor(t, "partial frame event", func() bool { return rec.count.Load() == 2 })
}

// TestCloseWhileServing: Close stops a running listener at once, dropping
// (and counting) what the publisher holds.
func TestCloseWhileServing(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	h := start(t, Config{Transport: "tcp"}, rec)
	c := dialTCP(t, h)
	c.Write([]byte(line5424 + "\n"))
	waitFor(t, "reader blocked", func() bool { return rec.waiting.Load() == 1 })
	h.l.Close()
	select {
	case err := <-h.served:
		if err != nil {
			t.Fatal(err)
		}
		h.served = make(chan error, 1)
		h.served <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := h.metric(t, "vpipe_ingest_dropped_total", "reason", "shutdown"); d != 1 {
		t.Errorf("dropped{shutdown} = %v", d)
	}
}
