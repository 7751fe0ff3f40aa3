package deploy_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metric is a metric family vpipe declares.
type metric struct {
	kind   string   // counter, gauge, histogram, summary; "" when only a Desc says (const metrics)
	labels []string // nil when they could not be read from the source
	where  string   // file:line of the declaration
}

var (
	scanOnce sync.Once
	scanned  map[string]metric
	scanErr  error
)

// declaredMetrics scans every non-test Go file of the repository for the
// metrics it declares: prometheus.CounterOpts, GaugeOpts, HistogramOpts
// and SummaryOpts literals (Namespace, Subsystem and Name joined as
// client_golang joins them) with the label names of the New...Vec call
// they are passed to, and prometheus.NewDesc calls. So a stage added
// tomorrow is known without touching this test.
func declaredMetrics(t *testing.T) map[string]metric {
	t.Helper()
	scanOnce.Do(func() { scanned, scanErr = scanMetrics(repo) })
	if scanErr != nil {
		t.Fatal(scanErr)
	}
	return scanned
}

func scanMetrics(root string) (map[string]metric, error) {
	out := map[string]metric{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, _ := decl.(*ast.FuncDecl)
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				name := selectorName(call.Fun, "prometheus")
				switch {
				case name == "NewDesc" && len(call.Args) >= 3:
					if s, ok := stringLit(call.Args[0]); ok && strings.HasPrefix(s, "vpipe_") {
						out[s] = metric{labels: labelNames(call.Args[2], fn), where: fset.Position(call.Pos()).String()}
					}
				case strings.HasPrefix(name, "New") && len(call.Args) >= 1:
					lit, ok := call.Args[0].(*ast.CompositeLit)
					if !ok {
						return true
					}
					kind := strings.ToLower(strings.TrimSuffix(selectorName(lit.Type, "prometheus"), "Opts"))
					if kind != "counter" && kind != "gauge" && kind != "histogram" && kind != "summary" {
						return true
					}
					fq := optsName(lit)
					if !strings.HasPrefix(fq, "vpipe_") {
						return true
					}
					m := metric{kind: kind, where: fset.Position(lit.Pos()).String(), labels: []string{}}
					if strings.HasSuffix(name, "Vec") && len(call.Args) >= 2 {
						m.labels = labelNames(call.Args[1], fn)
					}
					out[fq] = m
				}
				return true
			})
		}
		return nil
	})
	return out, err
}

// selectorName returns Sel of pkg.Sel (or &pkg.Sel{}), "" otherwise.
func selectorName(e ast.Expr, pkg string) string {
	if u, ok := e.(*ast.UnaryExpr); ok {
		e = u.X
	}
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if id, ok := s.X.(*ast.Ident); !ok || id.Name != pkg {
		return ""
	}
	return s.Sel.Name
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil
}

// optsName joins Namespace, Subsystem and Name of an Opts literal as
// prometheus.BuildFQName does.
func optsName(lit *ast.CompositeLit) string {
	parts := map[string]string{}
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		k, _ := kv.Key.(*ast.Ident)
		if s, ok := stringLit(kv.Value); ok && k != nil {
			parts[k.Name] = s
		}
	}
	var fq []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			fq = append(fq, parts[k])
		}
	}
	return strings.Join(fq, "_")
}

// labelNames reads a []string{...} literal, or a variable of the enclosing
// function assigned one; nil when it cannot tell.
func labelNames(e ast.Expr, fn *ast.FuncDecl) []string {
	if id, ok := e.(*ast.Ident); ok && fn != nil {
		var found ast.Expr
		ast.Inspect(fn, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok {
				for i, l := range as.Lhs {
					if lid, ok := l.(*ast.Ident); ok && lid.Name == id.Name && i < len(as.Rhs) {
						found = as.Rhs[i]
					}
				}
			}
			return found == nil
		})
		e = found
	}
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	out := []string{}
	for _, el := range lit.Elts {
		s, ok := stringLit(el)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

var (
	scrapeOnce sync.Once
	scrapedFam map[string]*dto.MetricFamily
)

// runningMetrics builds vpipe, runs it on its embedded broker with ingest
// and two stages (file, ndjson), and returns the metric families its
// /metrics serves.
func runningMetrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	bin := vpipeBinary(t)
	scrapeOnce.Do(func() {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "vpipe.yaml")
		os.WriteFile(cfg, fmt.Appendf(nil, `
kafka:
  embedded: {listen: 127.0.0.1:0, data_dir: %[1]s/kafka}
syslog:
  - {transport: udp, address: 127.0.0.1:0}
  - {transport: tcp, address: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
stages:
  file: {path: %[1]s/events.ndjson}
  ndjson: {dir: %[1]s/ndjson}
`, dir), 0o600)
		p := startVpipe(t, bin, "run", "-c", cfg)
		url := "http://" + p.addr(t, "http")
		var body []byte
		waitFor(t, 30*time.Second, func() bool {
			code, b, err := get(url + "/metrics")
			body = b
			return err == nil && code == 200 && strings.Contains(string(b), "vpipe_stage_lag")
		}, func() string { return "no stage metrics on " + url + "/metrics\n" + p.logs.String() })
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		scrapedFam = fams
		p.stop(t)
	})
	if scrapedFam == nil {
		t.Fatal("no metrics scraped from a running vpipe")
	}
	return scrapedFam
}

// TestScanMatchesRunningVpipe checks the source scan against a running
// vpipe: every vpipe_ family it serves was found, with its type and
// labels, so the scan is a sound list of what exists.
func TestScanMatchesRunningVpipe(t *testing.T) {
	declared := declaredMetrics(t)
	fams := runningMetrics(t)
	n := 0
	for name, f := range fams {
		if !strings.HasPrefix(name, "vpipe_") {
			continue
		}
		n++
		m, ok := declared[name]
		if !ok {
			t.Errorf("vpipe serves %s, which the scan of the sources did not find", name)
			continue
		}
		if kind := strings.ToLower(f.GetType().String()); m.kind != "" && kind != m.kind {
			t.Errorf("%s is a %s, the scan says %s (%s)", name, kind, m.kind, m.where)
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if m.labels != nil && !slices.Contains(m.labels, l.GetName()) {
					t.Errorf("%s has label %s, the scan says %v (%s)", name, l.GetName(), m.labels, m.where)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d vpipe_ families served", n)
	}
}

// promExprs returns the PromQL expressions of the alert rules and of the
// dashboard, each with where it comes from.
func promExprs(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Record, Expr, For string
				Labels, Annotations      map[string]string
			}
		}
	}
	readYAML(t, "prometheus/alerts.yaml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	var dash map[string]any
	b, err := os.ReadFile("grafana/vpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/vpipe.json: %v", err)
	}
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			title := str(dig(p, "title"))
			for i, tg := range list(dig(p, "targets")) {
				exprs[fmt.Sprintf("panel %q target %d", title, i)] = str(dig(tg, "expr"))
			}
			walk(list(dig(p, "panels")))
		}
	}
	walk(list(dash["panels"]))
	return exprs
}

var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricRef = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*\b`)
	matchers  = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	rangeFunc = regexp.MustCompile(`\b(rate|irate|increase|delta|deriv)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// targetLabels are the labels Prometheus adds to every series it scrapes
// (job and instance) and the service label of deploy/compose/prometheus.yml.
var targetLabels = []string{"job", "instance", "service"}

// TestDashboardAndAlertMetricsExist checks that every metric the Grafana
// dashboard and the alert rules name is one vpipe declares (or the Go and
// process collectors' that a running vpipe serves, or up), used as its type
// allows (rate of a counter, delta of a gauge, a histogram through
// _bucket/_sum/_count), and that the labels they select and group by are
// labels it has.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	declared := declaredMetrics(t)
	var served map[string]*dto.MetricFamily
	if !testing.Short() {
		served = runningMetrics(t)
	}
	// resolve finds the declared (or served) family of a series name.
	resolve := func(name string) (metric, string, bool) {
		if m, ok := declared[name]; ok {
			return m, "", true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			base := strings.TrimSuffix(name, suf)
			if m, ok := declared[base]; ok && base != name {
				if m.kind == "histogram" || (m.kind == "summary" && suf != "_bucket") {
					return m, suf, true
				}
			}
		}
		if f, ok := served[name]; ok {
			m := metric{kind: strings.ToLower(f.GetType().String()), labels: []string{}}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if !slices.Contains(m.labels, l.GetName()) {
						m.labels = append(m.labels, l.GetName())
					}
				}
			}
			return m, "", true
		}
		return metric{}, "", false
	}
	isMetric := func(tok string) bool {
		return strings.HasPrefix(tok, "vpipe_") || strings.HasPrefix(tok, "go_") || strings.HasPrefix(tok, "process_") || tok == "up"
	}
	exprs := promExprs(t)
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions found", len(exprs))
	}
	used := map[string]bool{}
	for where, expr := range exprs {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
			continue
		}
		if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
			t.Errorf("%s: unbalanced brackets: %s", where, expr)
		}
		bare := quoted.ReplaceAllString(expr, `""`)
		var names []string
		for _, tok := range metricRef.FindAllString(bare, -1) {
			if !isMetric(tok) || slices.Contains(names, tok) {
				continue
			}
			names = append(names, tok)
			if tok == "up" {
				continue
			}
			if strings.HasPrefix(tok, "vpipe_") {
				used[tok] = true
			}
			m, suf, ok := resolve(tok)
			switch {
			case !ok && (strings.HasPrefix(tok, "go_") || strings.HasPrefix(tok, "process_")) && served == nil:
				// -short: no running vpipe to ask.
			case !ok:
				t.Errorf("%s: %s is not a metric vpipe has", where, tok)
			case m.kind == "histogram" && suf == "":
				t.Errorf("%s: %s is a histogram: use %s_bucket, _sum or _count", where, tok, tok)
			}
		}
		for _, rf := range rangeFunc.FindAllStringSubmatch(bare, -1) {
			m, suf, ok := resolve(rf[2])
			if !ok {
				continue
			}
			counterLike := m.kind == "counter" || suf != ""
			if (rf[1] == "delta" || rf[1] == "deriv") == counterLike {
				t.Errorf("%s: %s() of %s, a %s", where, rf[1], rf[2], m.kind+suf)
			}
		}
		// Label matchers name labels of their metric.
		for _, mm := range matchers.FindAllStringSubmatch(expr, -1) {
			m, suf, ok := resolve(mm[1])
			if !ok || m.labels == nil {
				continue
			}
			for _, part := range strings.Split(mm[2], ",") {
				l := strings.TrimSpace(strings.FieldsFunc(part, func(r rune) bool { return r == '=' || r == '!' || r == '~' })[0])
				if !slices.Contains(m.labels, l) && !slices.Contains(targetLabels, l) && !(l == "le" && suf == "_bucket") {
					t.Errorf("%s: %s has no label %q (labels: %v)", where, mm[1], l, m.labels)
				}
			}
		}
		// Grouping labels are labels of at least one metric of the
		// expression.
		for _, g := range grouping.FindAllStringSubmatch(bare, -1) {
			for _, l := range strings.Split(g[1], ",") {
				l = strings.TrimSpace(l)
				if l == "" || slices.Contains(targetLabels, l) {
					continue
				}
				found := false
				for _, n := range names {
					m, suf, ok := resolve(n)
					found = found || !ok || m.labels == nil || slices.Contains(m.labels, l) || (l == "le" && suf == "_bucket")
				}
				if !found {
					t.Errorf("%s: no metric of the expression has label %q: %s", where, l, expr)
				}
			}
		}
	}
	// The core families the dashboard must show.
	for _, want := range []string{
		"vpipe_ingest_received_total", "vpipe_parse_events_total", "vpipe_parse_errors_total",
		"vpipe_producer_latency_seconds_bucket", "vpipe_stage_lag", "vpipe_stage_dlq_total", "vpipe_producer_dropped_total",
	} {
		if !used[want] {
			t.Errorf("neither the dashboard nor the alerts use %s", want)
		}
	}
}

// TestAlertRules checks the rules' shape: unique names, a severity, a
// summary, durations Prometheus accepts.
func TestAlertRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For    string
				Labels, Annotations map[string]string
			}
		}
	}
	readYAML(t, "prometheus/alerts.yaml", &rules)
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: alert name %q missing or repeated", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("%d alerts", len(seen))
	}
}

// TestDashboard checks the dashboard's shape: panels with unique ids, on
// the datasource variable, laid out without overlap.
func TestDashboard(t *testing.T) {
	var dash map[string]any
	b, err := os.ReadFile("grafana/vpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash["uid"] != "vpipe" || str(dig(dash, "templating", "list", 0, "name")) != "datasource" {
		t.Errorf("uid %v, first variable %v: want vpipe and datasource", dash["uid"], dig(dash, "templating", "list", 0, "name"))
	}
	ids := map[float64]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range list(dash["panels"]) {
		id, _ := dig(p, "id").(float64)
		if ids[id] {
			t.Errorf("panel id %v repeated", id)
		}
		ids[id] = true
		title := str(dig(p, "title"))
		if dig(p, "type") != "row" && str(dig(p, "datasource", "uid")) != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", title)
		}
		g := func(k string) int { f, _ := dig(p, "gridPos", k).(float64); return int(f) }
		for x := g("x"); x < g("x")+g("w"); x++ {
			for y := g("y"); y < g("y")+g("h"); y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, title, x, y)
				}
				taken[cell{x, y}] = title
			}
		}
		if g("x")+g("w") > 24 {
			t.Errorf("panel %q is wider than the grid", title)
		}
	}
}
