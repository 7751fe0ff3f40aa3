package main

import (
	"bufio"
	"context"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline/config"
)

// metricsBefore and metricsAfter are two scrapes of a vpipe two seconds
// apart, in the Prometheus text format, as promhttp writes it.
const metricsBefore = `# TYPE vpipe_ingest_received_total counter
vpipe_ingest_received_total{listener="tcp:0.0.0.0:514",transport="tcp"} 1000
vpipe_ingest_received_total{listener="udp:0.0.0.0:514",transport="udp"} 500
# TYPE vpipe_ingest_received_bytes_total counter
vpipe_ingest_received_bytes_total{listener="tcp:0.0.0.0:514",transport="tcp"} 250000
# TYPE vpipe_ingest_dropped_total counter
vpipe_ingest_dropped_total{listener="udp:0.0.0.0:514",reason="queue_full"} 10
# TYPE vpipe_ingest_open_connections gauge
vpipe_ingest_open_connections{listener="tcp:0.0.0.0:514"} 3
# TYPE vpipe_parse_events_total counter
vpipe_parse_events_total{dataset="nsx.dfw"} 1400
vpipe_parse_events_total{dataset="syslog.generic"} 100
# TYPE vpipe_parse_errors_total counter
vpipe_parse_errors_total{dataset="syslog.generic"} 4
# TYPE vpipe_producer_records_total counter
vpipe_producer_records_total{topic="firewall"} 1400
vpipe_producer_records_total{topic="other"} 100
# TYPE vpipe_producer_buffered_records gauge
vpipe_producer_buffered_records 12
# TYPE vpipe_producer_latency_seconds histogram
vpipe_producer_latency_seconds_bucket{le="0.001"} 10
vpipe_producer_latency_seconds_bucket{le="0.002"} 20
vpipe_producer_latency_seconds_bucket{le="0.004"} 20
vpipe_producer_latency_seconds_bucket{le="+Inf"} 20
vpipe_producer_latency_seconds_sum 0.02
vpipe_producer_latency_seconds_count 20
# TYPE vpipe_stage_consumed_total counter
vpipe_stage_consumed_total{stage="file"} 1000
# TYPE vpipe_stage_delivered_total counter
vpipe_stage_delivered_total{stage="file"} 990
# TYPE vpipe_stage_lag gauge
vpipe_stage_lag{stage="file"} 500
# TYPE vpipe_stage_dlq_total counter
vpipe_stage_dlq_total{reason="decode",stage="file"} 10
# TYPE vpipe_stage_write_seconds histogram
vpipe_stage_write_seconds_bucket{stage="file",le="0.01"} 5
vpipe_stage_write_seconds_bucket{stage="file",le="0.1"} 5
vpipe_stage_write_seconds_bucket{stage="file",le="+Inf"} 5
vpipe_stage_write_seconds_sum{stage="file"} 0.01
vpipe_stage_write_seconds_count{stage="file"} 5
# TYPE vpipe_tenant_delivered_total counter
vpipe_tenant_delivered_total{tenant="acme"} 7
`

const metricsAfter = `# TYPE vpipe_ingest_received_total counter
vpipe_ingest_received_total{listener="tcp:0.0.0.0:514",transport="tcp"} 21000
vpipe_ingest_received_total{listener="udp:0.0.0.0:514",transport="udp"} 700
# TYPE vpipe_ingest_received_bytes_total counter
vpipe_ingest_received_bytes_total{listener="tcp:0.0.0.0:514",transport="tcp"} 5250000
# TYPE vpipe_ingest_dropped_total counter
vpipe_ingest_dropped_total{listener="udp:0.0.0.0:514",reason="queue_full"} 30
# TYPE vpipe_ingest_open_connections gauge
vpipe_ingest_open_connections{listener="tcp:0.0.0.0:514"} 4
# TYPE vpipe_parse_events_total counter
vpipe_parse_events_total{dataset="nsx.dfw"} 21400
vpipe_parse_events_total{dataset="syslog.generic"} 300
# TYPE vpipe_parse_errors_total counter
vpipe_parse_errors_total{dataset="syslog.generic"} 8
# TYPE vpipe_producer_records_total counter
vpipe_producer_records_total{topic="firewall"} 21400
vpipe_producer_records_total{topic="other"} 300
# TYPE vpipe_producer_buffered_records gauge
vpipe_producer_buffered_records 40
# TYPE vpipe_producer_latency_seconds histogram
vpipe_producer_latency_seconds_bucket{le="0.001"} 10
vpipe_producer_latency_seconds_bucket{le="0.002"} 120
vpipe_producer_latency_seconds_bucket{le="0.004"} 220
vpipe_producer_latency_seconds_bucket{le="+Inf"} 220
vpipe_producer_latency_seconds_sum 0.5
vpipe_producer_latency_seconds_count 220
# TYPE vpipe_stage_consumed_total counter
vpipe_stage_consumed_total{stage="file"} 5000
# TYPE vpipe_stage_delivered_total counter
vpipe_stage_delivered_total{stage="file"} 4990
# TYPE vpipe_stage_lag gauge
vpipe_stage_lag{stage="file"} 16000
# TYPE vpipe_stage_dlq_total counter
vpipe_stage_dlq_total{reason="decode",stage="file"} 10
# TYPE vpipe_stage_write_seconds histogram
vpipe_stage_write_seconds_bucket{stage="file",le="0.01"} 5
vpipe_stage_write_seconds_bucket{stage="file",le="0.1"} 105
vpipe_stage_write_seconds_bucket{stage="file",le="+Inf"} 105
vpipe_stage_write_seconds_sum{stage="file"} 5
vpipe_stage_write_seconds_count{stage="file"} 105
# TYPE vpipe_tenant_delivered_total counter
vpipe_tenant_delivered_total{tenant="acme"} 3
`

func snapshots(t *testing.T, before, after string) (prev, cur *metricsSnapshot) {
	t.Helper()
	prev, err := parseMetrics(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	cur, err = parseMetrics(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	cur.at = prev.at.Add(2 * time.Second)
	return prev, cur
}

// TestRenderTop checks each row of a frame: rates over the two seconds
// between the scrapes, totals, gauges and interval quantiles.
func TestRenderTop(t *testing.T) {
	prev, cur := snapshots(t, metricsBefore, metricsAfter)
	var b strings.Builder
	renderTop(&b, prev, cur)
	out := b.String()
	tests := []struct {
		name string
		row  string // fields of the row, separated by white space
	}{
		// 20000 records and 5 MB in 2 s; 4 open connections.
		{"tcp listener", "tcp:0.0.0.0:514 10.0k 2.4MiB 21000 0 0 4"},
		// 10 drops/s; UDP has no connections.
		{"udp listener", "udp:0.0.0.0:514 100 0B 700 10.0 0 -"},
		{"parsed dfw", "nsx.dfw 10.0k 21400 0"},
		{"parse errors", "syslog.generic 100 300 2.0"},
		{"producer topic", "firewall 10.0k 21400 0"},
		// 200 observations in 2 s: half up to 2 ms, half in (2 ms, 4 ms].
		{"producer line", "buffered 40, to DLQ 0/s, dropped 0/s, latency p50 2ms p99 3.96ms"},
		// Lag is the gauge; p99 of the write time interpolated in (10 ms, 100 ms].
		{"stage", "file 2000 2000 4990 16000 0 0 0 99.1ms"},
		// A metric of a stage top does not know: listed, with its rate; it
		// went down (a restart), so its increase is its value.
		{"other", `vpipe_tenant_delivered_total{tenant=acme} 3 1.5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := regexp.MustCompile(`(?m)^\s*` + strings.Join(strings.Fields(regexp.QuoteMeta(tt.row)), `\s+`) + `\s*$`)
			if !re.MatchString(out) {
				t.Errorf("no row %q in:\n%s", tt.row, out)
			}
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name string
		q    float64
		bs   []bucket
		want float64
	}{
		{"empty", 0.5, []bucket{{1, 0}, {inf, 0}}, math.NaN()},
		{"first bucket", 0.5, []bucket{{1, 10}, {2, 10}, {inf, 10}}, 0.5},
		{"interpolated", 0.75, []bucket{{1, 10}, {2, 20}, {inf, 20}}, 1.5},
		{"in +Inf", 0.99, []bucket{{1, 1}, {2, 1}, {inf, 10}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bucketQuantile(tt.q, tt.bs)
			if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetricsURL(t *testing.T) {
	tests := []struct{ http, metrics, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080/metrics"},
		{"0.0.0.0:8080", "", "http://127.0.0.1:8080/metrics"},
		{"0.0.0.0:8080", "10.0.0.5:9100", "http://10.0.0.5:9100/metrics"},
		{"off", "[::]:9100", "http://127.0.0.1:9100/metrics"},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.HTTP.Address, cfg.Metrics.Address = tt.http, tt.metrics
		if got := metricsURL(cfg); got != tt.want {
			t.Errorf("http %q metrics %q: %q, want %q", tt.http, tt.metrics, got, tt.want)
		}
	}
}

// TestTopLive runs `vpipe top --once` against a running vpipe (ingest and
// the file stage on the embedded broker) after sending it records.
func TestTopLive(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Stages.File = &config.FileStage{Path: filepath.Join(t.TempDir(), "events.ndjson"), Topics: []string{"other", "firewall"}, GroupID: "vpipe-file", BatchSize: 50}
	r := startVpipeRoles(t, cfg, map[string]bool{roleIngest: true, roleFile: true})
	c, err := net.Dial("tcp", r.tcp())
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(c)
	for range 40 {
		w.WriteString("<13>1 2024-05-15T19:41:25.001Z esx01 FIREWALL-PKTLOG - - - 5ff3a4d0 INET match PASS mainrs/1024 OUT 60 TCP 10.10.10.11/60517->10.10.10.10/443 S dcgrp2a55d8e4c1f7b1ad8a7e95c07fd43a\n")
	}
	w.WriteString("<14>1 2024-05-15T19:41:26Z host app - - - hello\n")
	w.Flush()
	c.Close()

	url := r.http() + "/metrics"
	// Wait until the stage delivered all 41.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := scrapeMetrics(context.Background(), &http.Client{Timeout: 5 * time.Second}, url)
		if err == nil && s.sumBy("vpipe_stage_delivered_total", "stage")["file"] == 41 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file stage did not deliver 41 records (last scrape error %v)", err)
		}
		<-time.After(20 * time.Millisecond)
	}
	code, stdout, stderr := runCLI("top", "--url", url, "--once", "--interval", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s*tcp:127\.0\.0\.1:\d+\s+0\s+0B\s+41\s+0\s+0\s+0\s*$`),
		regexp.MustCompile(`(?m)^\s*nsx\.dfw\s+0\s+40\s+0\s*$`),
		regexp.MustCompile(`(?m)^\s*firewall\s+0\s+40\s+0\s*$`),
		regexp.MustCompile(`(?m)^\s*file\s+0\s+0\s+41\s+0\s+0\s+0\s+0\s+-\s*$`),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("no row matching %s in:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "vpipe top  "+url) {
		t.Errorf("no header line:\n%s", stdout)
	}
}

func TestTopUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"top", "-h"}, 0, "--interval"},
		{"stray argument", []string{"top", "x"}, 2, "vpipe top [--url URL"},
		{"bad interval", []string{"top", "--interval", "0s"}, 2, "vpipe top [--url URL"},
		{"nothing there", []string{"top", "--url", "http://127.0.0.1:1/metrics", "--once"}, 1, "scrape http://127.0.0.1:1/metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s", code, tt.code, tt.stderr, stderr)
			}
		})
	}
}
