package tenantsyslog_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/sinks/tenantsyslog"
)

// fwEvent is a firewall event of dataset with a log label; its Original
// carries "seq=<i>", which every receiver looks for.
func fwEvent(i int, dataset, label string) *pipeline.Event {
	e := &pipeline.Event{
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, (i%1000000)*1000, time.UTC),
		Created:   time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		ID:        fmt.Sprintf("ev-%08d", i),
		Dataset:   dataset,
		Action:    "pass",
		Outcome:   "success",
		LogSource: "10.0.0.11:514",
		Observer:  pipeline.Observer{Hostname: "esx-01.example.com", Type: "firewall", Vendor: "VMware", Product: "NSX"},
		Syslog: pipeline.Syslog{PriorityValid: true, Priority: 134, Facility: 16, Severity: 6, Version: 1,
			Hostname: "esx-01.example.com", AppName: "FIREWALL-PKTLOG"},
		Source:      pipeline.Endpoint{IP: netip.AddrFrom4([4]byte{10, 1, 2, byte(i % 250)}), Port: 51234, PortValid: true},
		Destination: pipeline.Endpoint{IP: netip.MustParseAddr("192.168.10.20"), Port: 443, PortValid: true},
		Network:     pipeline.Network{Transport: "tcp", IANANumber: "6", Type: "ipv4", Direction: "egress"},
		Rule:        pipeline.Rule{ID: "3074"},
	}
	e.Original = fmt.Appendf(nil, "<134>1 2026-01-02T03:04:05.%06dZ esx-01.example.com FIREWALL-PKTLOG - - - "+
		"c5a8a1e4 INET match PASS 3074 OUT 48 TCP 10.1.2.%d/51234->192.168.10.20/443 S seq=%d %s", i%1000000, i%250, i, label)
	if dataset == pipeline.DatasetNSXVDFW {
		e.VMware.NSXV.LogLabel = label
	} else {
		e.VMware.NSX.LogLabel = label
	}
	return e
}

// seqOf finds "seq=<n>" in a received message.
func seqOf(msg []byte) (int, bool) {
	i := bytes.Index(msg, []byte("seq="))
	if i < 0 {
		return 0, false
	}
	j := i + 4
	for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(string(msg[i+4 : j]))
	return n, err == nil
}

// receiver is a syslog server: TCP (either framing), TLS or UDP. It
// records the seq of every message in arrival order. It can be stopped
// and started again on the same port, and slowed down.
type receiver struct {
	t         testing.TB
	transport string
	addr      string
	tlsConf   *tls.Config
	rcvBuf    int
	// framing is forced when set: auto-detection takes a count followed
	// by anything but "<" (a JSON line) for the start of a line.
	framing syslog.Framing
	// pace, when set, is the wait after each message (a slow endpoint).
	pace    atomic.Int64
	stopped atomic.Bool
	// countOnly counts frames without looking at them (benchmarks).
	countOnly bool
	frames    atomic.Int64

	mu    sync.Mutex
	seqs  []int
	seen  map[int]bool // the distinct seqs, kept as they arrive: polling them must stay cheap
	msgs  [][]byte     // kept when keep is set
	keep  bool
	bad   int // messages without a seq
	ln    net.Listener
	pc    net.PacketConn
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newReceiver reserves a port; the receiver listens once started.
func newReceiver(t testing.TB, transport string) *receiver {
	t.Helper()
	r := &receiver{t: t, transport: transport, conns: map[net.Conn]bool{}, seen: map[int]bool{}}
	r.addr = reservePort(t, transport)
	t.Cleanup(r.stop)
	return r
}

var (
	reservedMu sync.Mutex
	reserved   = map[string]bool{} // never handed out twice in one test binary
)

// reservePort returns a free 127.0.0.1 port below the ephemeral range
// (32768 and up on Linux), so that no outgoing connection takes it before
// the receiver listens on it (some receivers start late: dead endpoints).
func reservePort(t testing.TB, transport string) string {
	t.Helper()
	reservedMu.Lock()
	defer reservedMu.Unlock()
	for attempt := 0; attempt < 1000; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000))
		if reserved[addr] {
			continue
		}
		reserved[addr] = true
		if transport == "udp" {
			if pc, err := net.ListenPacket("udp", addr); err == nil {
				pc.Close()
				return addr
			}
		} else if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func (r *receiver) start() {
	r.t.Helper()
	lc := net.ListenConfig{}
	if r.rcvBuf > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, r.rcvBuf)
			})
			return serr
		}
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if r.transport == "udp" {
			var pc net.PacketConn
			if pc, err = lc.ListenPacket(context.Background(), "udp", r.addr); err == nil {
				if u, ok := pc.(*net.UDPConn); ok {
					u.SetReadBuffer(8 << 20)
				}
				r.mu.Lock()
				r.pc = pc
				r.mu.Unlock()
				r.wg.Add(1)
				go r.readUDP(pc)
				return
			}
		} else {
			var ln net.Listener
			if ln, err = lc.Listen(context.Background(), "tcp", r.addr); err == nil {
				r.mu.Lock()
				r.ln = ln
				r.mu.Unlock()
				r.wg.Add(1)
				go r.accept(ln)
				return
			}
		}
		// The port is still in TIME_WAIT or briefly taken: try again.
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("receiver %s: listen: %v", r.addr, err)
}

// stop closes the listener and every connection.
func (r *receiver) stop() {
	r.stopped.Store(true)
	defer r.stopped.Store(false)
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	if r.pc != nil {
		r.pc.Close()
		r.pc = nil
	}
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *receiver) accept(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if r.tlsConf != nil {
			c = tls.Server(c, r.tlsConf)
		}
		r.mu.Lock()
		r.conns[c] = true
		r.mu.Unlock()
		r.wg.Add(1)
		go r.read(c)
	}
}

func (r *receiver) read(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	sc := syslog.NewScanner(c, 1<<20)
	sc.SetFraming(r.framing)
	for sc.Scan() && !r.stopped.Load() {
		r.record(sc.Frame())
		if d := r.pace.Load(); d > 0 {
			time.Sleep(time.Duration(d)) // the slow endpoint under test, not synchronisation
		}
	}
}

func (r *receiver) readUDP(pc net.PacketConn) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.record(buf[:n])
	}
}

func (r *receiver) record(msg []byte) {
	if r.countOnly {
		r.frames.Add(1)
		return
	}
	seq, ok := seqOf(msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.bad++
		return
	}
	r.seqs = append(r.seqs, seq)
	r.seen[seq] = true
	if r.keep {
		r.msgs = append(r.msgs, bytes.Clone(msg))
	}
}

// badCount is the number of messages received without a seq.
func (r *receiver) badCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// received returns the seqs received so far.
func (r *receiver) received() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.seqs...)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs)
}

// distinct is the number of distinct seqs received.
func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// certs is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written to files.
type certs struct {
	dir                                                  string
	caFile, serverCert, serverKey, clientCert, clientKey string
	server                                               *tls.Config // requires a client certificate from the CA
}

func newCerts(t testing.TB) *certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ip bool) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"syslog.tenant.test"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	c := &certs{dir: dir}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	sc, sk := issue("syslog.tenant.test", 2, x509.ExtKeyUsageServerAuth, true)
	cc, ck := issue("vpipe", 3, x509.ExtKeyUsageClientAuth, false)
	c.serverCert, c.serverKey = write("server.pem", sc), write("server.key", sk)
	c.clientCert, c.clientKey = write("client.pem", cc), write("client.key", ck)
	pair, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c.server = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	return c
}

// expect makes r read the framing d sends.
func (r *receiver) expect(d tenants.Destination) {
	switch d.Framing {
	case tenantsyslog.FramingOctetCounting:
		r.framing = syslog.FramingOctetCounting
	case tenantsyslog.FramingNewline:
		r.framing = syslog.FramingNonTransparent
	}
}

// destination returns a destination for r.
func (r *receiver) destination(c *certs) tenants.Destination {
	d := tenants.Destination{
		Name: r.transport, Transport: r.transport, Address: r.addr, Format: tenantsyslog.FormatRFC5424,
		Framing: tenantsyslog.FramingOctetCounting, SDID: "vpipe@32473",
		WriteTimeout: 5 * time.Second, DialTimeout: 2 * time.Second,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		MaxMessageBytes: 1 << 20,
	}
	switch r.transport {
	case "udp":
		d.Framing = ""
		d.MaxMessageBytes = 8192
	case "tls":
		d.TLS = tenants.TLS{CAFile: c.caFile, CertFile: c.clientCert, KeyFile: c.clientKey, ServerName: "syslog.tenant.test", MinVersion: "1.2"}
	}
	return d
}

// produce writes events to topic, keyed as the producer keys them.
func produce(tb testing.TB, addr, topic string, events []*pipeline.Event) {
	tb.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 5000, BatchBytes: 1 << 20,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const chunk = 20000
	msgs := make([]kafka.Message, 0, chunk)
	for from := 0; from < len(events); from += chunk {
		msgs = msgs[:0]
		for _, e := range events[from:min(len(events), from+chunk)] {
			msgs = append(msgs, kafka.Message{Key: pipeline.AppendKey(nil, e), Value: e.AppendJSON(nil)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			tb.Fatalf("produce: %v", err)
		}
	}
}

// forward runs the tenant-forward stage (runner + replayer) on topic
// "firewall" with parked topic "parked" until the test ends or stop.
type forward struct {
	sink   *tenantsyslog.Sink
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func stageConfig(addr string, batch int) stage.Config {
	return stage.Config{
		Name: "tenant_forward", Brokers: []string{addr}, Topics: []string{"firewall"}, DLQTopic: "dlq",
		BatchSize: batch, BatchWait: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond, RebalanceTimeout: 10 * time.Second,
		FetchMaxWait: 500 * time.Millisecond, ShutdownTimeout: 3 * time.Second,
	}
}

func sinkConfig(addr string) tenantsyslog.Config {
	return tenantsyslog.Config{
		Brokers: []string{addr}, ParkedTopic: "parked", ReplayGroupID: "replay",
		QueueSize: 4096, DeliverTimeout: 300 * time.Millisecond, ReplayTimeout: 300 * time.Millisecond,
		WatchInterval: 200 * time.Millisecond,
	}
}

func replayerConfig() tenantsyslog.ReplayerConfig {
	return tenantsyslog.ReplayerConfig{
		SessionTimeout: 3 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		FetchMaxWait: time.Second, Tick: 100 * time.Millisecond, ShutdownTimeout: 3 * time.Second,
	}
}

func startForward(tb testing.TB, scfg stage.Config, cfg tenantsyslog.Config, reg *tenants.Registry) *forward {
	tb.Helper()
	f := &forward{reg: prometheus.NewRegistry(), done: make(chan struct{})}
	log := testLogger(tb)
	sink, err := tenantsyslog.New(cfg, tenantsyslog.NewMetrics(f.reg), log)
	if err != nil {
		tb.Fatal(err)
	}
	f.sink = sink
	if err := sink.SetRegistry(reg); err != nil {
		tb.Fatal(err)
	}
	r, err := stage.New(scfg, sink, stage.NewMetrics(f.reg), log)
	if err != nil {
		tb.Fatal(err)
	}
	rp := sink.Replayer(replayerConfig())
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(ctx) }()
	go func() { defer wg.Done(); rp.Run(ctx) }()
	go func() { wg.Wait(); close(f.done) }()
	tb.Cleanup(f.stop)
	return f
}

func (f *forward) stop() {
	f.once.Do(func() {
		f.cancel()
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
		}
		f.sink.Close()
	})
}

// metric returns a counter or gauge of f's registry, summed over the
// series matching labels.
func (f *forward) metric(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// histogram returns the count and sum of a histogram of f's registry, and
// how many observations exceeded over (a bucket bound).
func (f *forward) histogram(tb testing.TB, name string, over float64) (count uint64, sum float64, above uint64) {
	tb.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			count += h.GetSampleCount()
			sum += h.GetSampleSum()
			below := uint64(0)
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() <= over {
					below = b.GetCumulativeCount()
				}
			}
			above += h.GetSampleCount() - below
		}
	}
	return count, sum, above
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// testLogger logs warnings to the test log with -v.
func testLogger(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// randomUUID returns a random UUID (version 4 layout) from rng.
func randomUUID(rng *mrand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
