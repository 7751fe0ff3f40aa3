package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vpipe/vpipe/pipeline/config"
)

func cmdTop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("top", `vpipe top [--url URL | -c FILE] [--interval D] [--once | -n N]

Shows what a running vpipe is doing, refreshed every --interval, from its
Prometheus /metrics: per syslog listener the records and bytes received,
drops and frame errors; HTTP ingest; parsed events per dataset; the
producer's records per topic, errors, DLQ, drops, buffer and latency; and
per consumer stage the records consumed and delivered, the lag, retries,
DLQ and errors, and the sink's write time. Rates are per second over the
last interval; quantiles are over the last interval too. Metrics of stages
it does not know yet are listed under "other" with their rates.

The URL is --url, else the /metrics of the configuration's metrics.address
or http.address, else http://127.0.0.1:8080/metrics. On a terminal each
refresh redraws the screen; otherwise frames follow one another.`, stderr)
	path := fs.String("c", "", "configuration `file` of the vpipe to watch (for its metrics address)")
	fs.StringVar(path, "config", "", "same as -c")
	url := fs.String("url", "", "the `URL` of vpipe's Prometheus metrics")
	interval := fs.Duration("interval", 2*time.Second, "refresh `interval`")
	frames := fs.Int("n", 0, "stop after `N` frames (0: until interrupted)")
	once := fs.Bool("once", false, "print one frame (two scrapes --interval apart) and exit; same as -n 1")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *interval <= 0 || *frames < 0 {
		fs.Usage()
		return errUsage
	}
	if *once {
		*frames = 1
	}
	if *url == "" {
		*url = "http://127.0.0.1:8080/metrics"
		if *path != "" {
			cfg, err := config.Load(*path)
			if err != nil {
				return fmt.Errorf("%s:\n%w", *path, err)
			}
			*url = metricsURL(cfg)
		}
	}
	return top(ctx, *url, *interval, *frames, stdout)
}

// metricsURL is where a vpipe with cfg serves /metrics.
func metricsURL(cfg *config.Config) string {
	addr := cfg.Metrics.Address
	if addr == "" {
		addr = cfg.HTTP.Address
	}
	if host, port, err := splitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = "127.0.0.1:" + port
	}
	return "http://" + addr + "/metrics"
}

func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", errors.New("no port")
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], nil
}

// top scrapes url every interval and writes a frame after each scrape but
// the first, frames times (0: until ctx ends).
func top(ctx context.Context, url string, interval time.Duration, frames int, w io.Writer) error {
	client := &http.Client{Timeout: max(interval, 5*time.Second)}
	prev, err := scrapeMetrics(ctx, client, url)
	if err != nil {
		return err
	}
	redraw := isTerminal(w)
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; frames == 0 || n < frames; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := scrapeMetrics(ctx, client, url)
		var frame strings.Builder
		if redraw {
			frame.WriteString("\x1b[H\x1b[2J")
		} else if n > 0 {
			frame.WriteString("\n")
		}
		fmt.Fprintf(&frame, "vpipe top  %s  %s  every %s\n", url, time.Now().Format("15:04:05"), interval)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(&frame, "\n%v\n", err)
		} else {
			renderTop(&frame, prev, cur)
			prev = cur
		}
		if _, err := io.WriteString(w, frame.String()); err != nil {
			return err
		}
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// metricsSnapshot is one scrape: the series of each metric family.
type metricsSnapshot struct {
	at     time.Time
	series map[string][]series // by metric name
	kinds  map[string]dto.MetricType
}

// series is one labelled time series of a scrape.
type series struct {
	key     string // the labels, sorted, "k=v,k=v": identifies the series across scrapes
	labels  map[string]string
	value   float64  // counter, gauge, untyped
	buckets []bucket // histogram
}

type bucket struct {
	le    float64
	count float64
}

// scrapeMetrics fetches and parses Prometheus text from url.
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (*metricsSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	s, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return s, nil
}

// parseMetrics reads the Prometheus text format.
func parseMetrics(r io.Reader) (*metricsSnapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := &metricsSnapshot{at: time.Now(), series: map[string][]series{}, kinds: map[string]dto.MetricType{}}
	for name, f := range fams {
		s.kinds[name] = f.GetType()
		for _, m := range f.GetMetric() {
			sr := series{labels: map[string]string{}}
			var kv []string
			for _, l := range m.GetLabel() {
				sr.labels[l.GetName()] = l.GetValue()
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(kv)
			sr.key = strings.Join(kv, ",")
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				sr.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				sr.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					sr.buckets = append(sr.buckets, bucket{le: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
				}
				sr.buckets = append(sr.buckets, bucket{le: math.Inf(1), count: float64(m.GetHistogram().GetSampleCount())})
			default:
				sr.value = m.GetUntyped().GetValue()
			}
			s.series[name] = append(s.series[name], sr)
		}
	}
	return s, nil
}

// sumBy sums a metric's current values by the value of label ("" sums
// everything into one group "").
func (s *metricsSnapshot) sumBy(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, sr := range s.series[name] {
		out[sr.labels[label]] += sr.value
	}
	return out
}

// rateBy is the per-second increase of a counter between prev and s, by
// label. A series that went down was reset (a restart): its increase is
// its current value.
func (s *metricsSnapshot) rateBy(prev *metricsSnapshot, name, label string) map[string]float64 {
	dt := s.at.Sub(prev.at).Seconds()
	out := map[string]float64{}
	if dt <= 0 {
		return out
	}
	before := map[string]float64{}
	for _, sr := range prev.series[name] {
		before[sr.key] = sr.value
	}
	for _, sr := range s.series[name] {
		d := sr.value - before[sr.key]
		if d < 0 {
			d = sr.value
		}
		out[sr.labels[label]] += d / dt
	}
	return out
}

// quantileBy is the q-quantile of a histogram's observations between prev
// and s, by label, interpolated within buckets as Prometheus's
// histogram_quantile does; NaN when nothing was observed.
func (s *metricsSnapshot) quantileBy(prev *metricsSnapshot, name, label string, q float64) map[string]float64 {
	before := map[string][]bucket{}
	for _, sr := range prev.series[name] {
		before[sr.key] = sr.buckets
	}
	sums := map[string][]bucket{}
	for _, sr := range s.series[name] {
		g := sr.labels[label]
		acc := sums[g]
		if acc == nil {
			acc = make([]bucket, len(sr.buckets))
			for i, b := range sr.buckets {
				acc[i].le = b.le
			}
		}
		old := before[sr.key]
		for i, b := range sr.buckets {
			if i >= len(acc) {
				break
			}
			d := b.count
			if i < len(old) && old[i].count <= b.count {
				d -= old[i].count
			}
			acc[i].count += d
		}
		sums[g] = acc
	}
	out := map[string]float64{}
	for g, bs := range sums {
		out[g] = bucketQuantile(q, bs)
	}
	return out
}

// bucketQuantile interpolates the q-quantile from cumulative buckets whose
// last bound is +Inf.
func bucketQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	i := sort.Search(len(bs), func(i int) bool { return bs[i].count >= rank })
	if i == len(bs)-1 && len(bs) > 1 {
		return bs[len(bs)-2].le // in +Inf: the highest finite bound
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bs[i-1].le, bs[i-1].count
	}
	in := bs[i].count - below
	if in == 0 {
		return bs[i].le
	}
	return lo + (bs[i].le-lo)*(rank-below)/in
}

// knownFamilies are the metrics renderTop lays out in its sections; any
// other vpipe_ family goes under "other".
var knownFamilies = []string{
	"vpipe_ingest_received_total", "vpipe_ingest_received_bytes_total", "vpipe_ingest_dropped_total",
	"vpipe_ingest_frame_errors_total", "vpipe_ingest_open_connections",
	"vpipe_http_events_total", "vpipe_http_rejected_total",
	"vpipe_parse_events_total", "vpipe_parse_errors_total",
	"vpipe_producer_records_total", "vpipe_producer_errors_total", "vpipe_producer_dlq_total",
	"vpipe_producer_dropped_total", "vpipe_producer_buffered_records", "vpipe_producer_latency_seconds",
	"vpipe_stage_consumed_total", "vpipe_stage_delivered_total", "vpipe_stage_lag", "vpipe_stage_retries_total",
	"vpipe_stage_dlq_total", "vpipe_stage_commit_errors_total", "vpipe_stage_dlq_errors_total",
	"vpipe_stage_write_seconds",
	// Shown nowhere: details that a frame has no room for.
	"vpipe_ingest_discarded_bytes_total", "vpipe_ingest_connections_rejected_total", "vpipe_ingest_connections_closed_total",
	"vpipe_http_requests_total", "vpipe_http_request_seconds", "vpipe_producer_batch_records", "vpipe_stage_batch_size",
}

// renderTop writes the tables of one frame: rates between prev and cur.
func renderTop(w io.Writer, prev, cur *metricsSnapshot) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	section := func(title string, cols ...string) {
		fmt.Fprintf(tw, "\n%s\t%s\t\n", title, strings.Join(cols, "\t"))
	}
	row := func(cells ...string) { fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t")) }

	if rows := labelValues(cur, "listener", "vpipe_ingest_received_total"); len(rows) > 0 {
		section("SYSLOG listener", "recv/s", "bytes/s", "received", "dropped/s", "frame err/s", "conns")
		recv := cur.rateBy(prev, "vpipe_ingest_received_total", "listener")
		byt := cur.rateBy(prev, "vpipe_ingest_received_bytes_total", "listener")
		total := cur.sumBy("vpipe_ingest_received_total", "listener")
		drop := cur.rateBy(prev, "vpipe_ingest_dropped_total", "listener")
		ferr := cur.rateBy(prev, "vpipe_ingest_frame_errors_total", "listener")
		conns := cur.sumBy("vpipe_ingest_open_connections", "listener")
		for _, l := range rows {
			c := "-"
			if v, ok := conns[l]; ok {
				c = count(v)
			}
			row(l, rate(recv[l]), bytesRate(byt[l]), count(total[l]), rate(drop[l]), rate(ferr[l]), c)
		}
	}
	if rows := labelValues(cur, "route", "vpipe_http_events_total", "vpipe_http_rejected_total"); len(rows) > 0 {
		section("HTTP route", "events/s", "events", "rejected/s")
		ev := cur.rateBy(prev, "vpipe_http_events_total", "route")
		total := cur.sumBy("vpipe_http_events_total", "route")
		rej := cur.rateBy(prev, "vpipe_http_rejected_total", "route")
		for _, r := range rows {
			row(r, rate(ev[r]), count(total[r]), rate(rej[r]))
		}
	}
	if rows := labelValues(cur, "dataset", "vpipe_parse_events_total"); len(rows) > 0 {
		section("PARSE dataset", "events/s", "events", "errors/s")
		ev := cur.rateBy(prev, "vpipe_parse_events_total", "dataset")
		total := cur.sumBy("vpipe_parse_events_total", "dataset")
		perr := cur.rateBy(prev, "vpipe_parse_errors_total", "dataset")
		for _, d := range rows {
			row(d, rate(ev[d]), count(total[d]), rate(perr[d]))
		}
	}
	if _, ok := cur.kinds["vpipe_producer_records_total"]; ok {
		section("PRODUCER topic", "records/s", "records", "errors/s")
		rec := cur.rateBy(prev, "vpipe_producer_records_total", "topic")
		total := cur.sumBy("vpipe_producer_records_total", "topic")
		perr := cur.rateBy(prev, "vpipe_producer_errors_total", "topic")
		for _, t := range labelValues(cur, "topic", "vpipe_producer_records_total", "vpipe_producer_errors_total") {
			row(t, rate(rec[t]), count(total[t]), rate(perr[t]))
		}
		lat := cur.quantileBy(prev, "vpipe_producer_latency_seconds", "", 0.5)[""]
		lat99 := cur.quantileBy(prev, "vpipe_producer_latency_seconds", "", 0.99)[""]
		// No tab: a line without cells ends the table above it.
		fmt.Fprintf(tw, "  buffered %s, to DLQ %s/s, dropped %s/s, latency p50 %s p99 %s\n",
			count(cur.sumBy("vpipe_producer_buffered_records", "")[""]),
			rate(cur.rateBy(prev, "vpipe_producer_dlq_total", "")[""]),
			rate(cur.rateBy(prev, "vpipe_producer_dropped_total", "")[""]),
			seconds(lat), seconds(lat99))
	}
	if rows := labelValues(cur, "stage", "vpipe_stage_consumed_total", "vpipe_stage_lag"); len(rows) > 0 {
		section("STAGE", "consumed/s", "delivered/s", "delivered", "lag", "retries/s", "dlq/s", "errors/s", "write p99")
		cons := cur.rateBy(prev, "vpipe_stage_consumed_total", "stage")
		del := cur.rateBy(prev, "vpipe_stage_delivered_total", "stage")
		total := cur.sumBy("vpipe_stage_delivered_total", "stage")
		lag := cur.sumBy("vpipe_stage_lag", "stage")
		retr := cur.rateBy(prev, "vpipe_stage_retries_total", "stage")
		dlq := cur.rateBy(prev, "vpipe_stage_dlq_total", "stage")
		cerr := cur.rateBy(prev, "vpipe_stage_commit_errors_total", "stage")
		derr := cur.rateBy(prev, "vpipe_stage_dlq_errors_total", "stage")
		wq := cur.quantileBy(prev, "vpipe_stage_write_seconds", "stage", 0.99)
		for _, s := range rows {
			row(s, rate(cons[s]), rate(del[s]), count(total[s]), count(lag[s]), rate(retr[s]), rate(dlq[s]), rate(cerr[s]+derr[s]), seconds(wq[s]))
		}
	}
	renderOther(tw, prev, cur)
	tw.Flush()
}

// renderOther lists the vpipe_ series renderTop has no section for (the
// metrics of sources and stages newer than this command), but those at
// zero: counters with their rate, gauges with their value.
func renderOther(tw io.Writer, prev, cur *metricsSnapshot) {
	var names []string
	for name, kind := range cur.kinds {
		if strings.HasPrefix(name, "vpipe_") && !slices.Contains(knownFamilies, name) &&
			(kind == dto.MetricType_COUNTER || kind == dto.MetricType_GAUGE) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	header := false
	for _, name := range names {
		before := map[string]float64{}
		for _, sr := range prev.series[name] {
			before[sr.key] = sr.value
		}
		srs := slices.Clone(cur.series[name])
		slices.SortFunc(srs, func(a, b series) int { return strings.Compare(a.key, b.key) })
		for _, sr := range srs {
			if sr.value == 0 {
				continue
			}
			id := name
			if sr.key != "" {
				id += "{" + sr.key + "}"
			}
			perSec := "-"
			if cur.kinds[name] == dto.MetricType_COUNTER {
				d := sr.value - before[sr.key]
				if d < 0 {
					d = sr.value
				}
				if dt := cur.at.Sub(prev.at).Seconds(); dt > 0 {
					perSec = rate(d / dt)
				}
			}
			if !header {
				fmt.Fprintf(tw, "\nOTHER series\tvalue\t/s\t\n")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", id, count(sr.value), perSec)
		}
	}
}

// labelValues lists, sorted, the values label takes in any of the named
// metrics.
func labelValues(s *metricsSnapshot, label string, names ...string) []string {
	var out []string
	for _, n := range names {
		for _, sr := range s.series[n] {
			if v, ok := sr.labels[label]; ok && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// rate formats a per-second figure.
func rate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 100 || v == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// count formats a total.
func count(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func bytesRate(v float64) string {
	switch {
	case v >= 1<<20:
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + "MiB"
	case v >= 1<<10:
		return strconv.FormatFloat(v/(1<<10), 'f', 1, 64) + "KiB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "B"
}

// seconds formats a duration in seconds; "-" for NaN (nothing observed).
func seconds(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return time.Duration(v * float64(time.Second)).Round(10 * time.Microsecond).String()
}
