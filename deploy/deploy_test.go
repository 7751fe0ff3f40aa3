package deploy_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
)

// knownRoles reads the --stages roles from cmd/vpipe (the role* constants
// of package main), so that a role added there is known here.
func knownRoles(t *testing.T) []string {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), filepath.Join(repo, "cmd", "vpipe"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if strings.HasPrefix(n.Name, "role") && i < len(vs.Values) {
							if v, ok := stringLit(vs.Values[i]); ok {
								roles = append(roles, v)
							}
						}
					}
				}
			}
		}
	}
	if !slices.Contains(roles, "ingest") {
		t.Fatalf("no role ingest among the role constants of cmd/vpipe: %v", roles)
	}
	return roles
}

// deployedConfig is a vpipe configuration file of a deployment: decoded
// and validated by vpipe's own config package, and as raw YAML for the
// generic checks.
type deployedConfig struct {
	cfg *config.Config
	raw map[string]any
}

// loadConfig decodes a deployed configuration with config.Decode (strict:
// an unknown key fails). Files it names (TLS certificates, tokens) live in
// the container (checkRoles checks that they are provided): for the
// decoding they are replaced by empty files.
func loadConfig(t *testing.T, name string, data []byte) deployedConfig {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	text := string(data)
	dir := t.TempDir()
	for _, f := range namedFiles(raw) {
		local := filepath.Join(dir, filepath.FromSlash(f))
		os.MkdirAll(filepath.Dir(local), 0o700)
		os.WriteFile(local, nil, 0o600)
		text = strings.ReplaceAll(text, f, local)
	}
	cfg, err := config.Decode(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%s is not a valid vpipe configuration:\n%v", name, err)
	}
	return deployedConfig{cfg: cfg, raw: raw}
}

// namedFiles lists the values of every *_file key of a configuration.
func namedFiles(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && strings.HasSuffix(k, "_file") && s != "" {
				out = append(out, s)
			}
			out = append(out, namedFiles(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, namedFiles(e)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// namedEnv lists the values of every *_env key under v.
func namedEnv(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && strings.HasSuffix(k, "_env") && s != "" {
				out = append(out, s)
			}
			out = append(out, namedEnv(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, namedEnv(e)...)
		}
	}
	return out
}

// roleSection is the part of the configuration a role runs from: syslog
// and http for ingest; for the others the section of the same name (with
// _ for -) under stages or sources. nil when the configuration has none:
// the role would run nothing. Sections a role reads besides its own come
// along (they may name secrets and files too): the ticket webhook's HMAC
// secret for ingest, the tenant registry for tenant-forward, the vCenter
// source whose connection tag-sync uses.
func (c deployedConfig) roleSection(role string) any {
	if role == "ingest" {
		if c.raw["syslog"] == nil && c.raw["http"] == nil {
			return nil
		}
		return map[string]any{"syslog": c.raw["syslog"], "http": c.raw["http"],
			"ticket_webhook": dig(c.raw, "stages", "jit_access", "webhook")}
	}
	key := strings.ReplaceAll(role, "-", "_")
	var sec any
	for _, top := range []string{"stages", "sources"} {
		if sec = dig(c.raw, top, key); sec != nil {
			break
		}
	}
	if sec == nil {
		return nil
	}
	switch role {
	case "tenant-forward":
		return map[string]any{"stage": sec, "tenants": c.raw["tenants"]}
	case "tag-sync":
		for _, v := range list(dig(c.raw, "sources", "vcenter")) {
			if str(dig(v, "name")) == str(dig(sec, "vcenter")) {
				return map[string]any{"stage": sec, "vcenter": v}
			}
		}
	}
	return sec
}

// vpipeRun is a `vpipe run -c FILE --stages ROLES` command line.
type vpipeRun struct {
	config string
	roles  []string
}

func parseRun(t *testing.T, where string, args []string) (vpipeRun, bool) {
	t.Helper()
	if len(args) == 0 || args[0] != "run" {
		return vpipeRun{}, false
	}
	var r vpipeRun
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-c", "--config", "-config":
			i++
			r.config = args[i]
		case "--stages", "-stages":
			i++
			r.roles = strings.Split(args[i], ",")
		default:
			t.Errorf("%s: vpipe run argument %q is not used in deployments", where, args[i])
		}
	}
	if r.config == "" || len(r.roles) == 0 {
		t.Errorf("%s: vpipe run without -c or --stages: %v", where, args)
	}
	return r, true
}

// checkRoles checks that each role exists and has its section in the
// configuration, and that the files the roles read are provided (mounted);
// it returns the environment variables the roles need.
func checkRoles(t *testing.T, where string, known []string, c deployedConfig, roles []string, provided func(path string) bool) (env []string) {
	t.Helper()
	env = namedEnv(c.raw["kafka"])
	files := namedFiles(c.raw["kafka"])
	for _, r := range roles {
		if !slices.Contains(known, r) {
			t.Errorf("%s: --stages %s: no such role (cmd/vpipe knows %v)", where, r, known)
			continue
		}
		sec := c.roleSection(r)
		if sec == nil {
			t.Errorf("%s: role %s has no section in its configuration: it would run nothing", where, r)
		}
		env = append(env, namedEnv(sec)...)
		files = append(files, namedFiles(sec)...)
	}
	for _, f := range files {
		if !provided(f) {
			t.Errorf("%s: its roles read %s, which is not mounted", where, f)
		}
	}
	return env
}

// listenPorts are the ports a vpipe process with roles listens on, as
// "port/proto".
func listenPorts(c *config.Config, roles []string) []string {
	var out []string
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	if slices.Contains(roles, "ingest") {
		for _, l := range c.Syslog {
			proto := "tcp"
			if l.Transport == "udp" {
				proto = "udp"
			}
			out = append(out, port(l.Address)+"/"+proto)
		}
	}
	if c.HTTP.Address != "off" {
		out = append(out, port(c.HTTP.Address)+"/tcp")
	}
	if c.Metrics.Address != "" {
		out = append(out, port(c.Metrics.Address)+"/tcp")
	}
	return out
}

// topicSets returns the topics a topic-creating script's TOPICS and
// COMPACTED_TOPICS variables hold, and checks them against
// pipeline.AllTopics with prefix: every topic created, the checkpoints
// compacted.
func checkTopics(t *testing.T, where, prefix, topics, compacted string) {
	t.Helper()
	var want, got []string
	for _, tp := range pipeline.AllTopics {
		want = append(want, prefix+tp)
	}
	got = append(strings.Fields(topics), strings.Fields(compacted)...)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s creates %v, vpipe uses %v", where, got, want)
	}
	if c := strings.Fields(compacted); !slices.Equal(c, []string{prefix + pipeline.TopicCheckpoints}) {
		t.Errorf("%s compacts %v, want only %s%s", where, c, prefix, pipeline.TopicCheckpoints)
	}
}

// imageRef splits an image reference into name and tag, and fails on a
// missing or floating tag.
func imageRef(t *testing.T, where, ref string) (name, tag string) {
	t.Helper()
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		t.Errorf("%s: image %q has no tag", where, ref)
		return ref, ""
	}
	name, tag = ref[:i], ref[i+1:]
	if tag == "latest" {
		t.Errorf("%s: image %q floats on latest", where, ref)
	}
	return name, tag
}

// cmdExists reports whether cmd/<name> is a main package of the repository.
func cmdExists(name string) bool {
	fi, err := os.Stat(filepath.Join(repo, "cmd", name))
	return err == nil && fi.IsDir()
}

// composeService is the part of a compose service these tests read.
type composeService struct {
	Image string
	Build *struct {
		Context    string
		Dockerfile string
	}
	Entrypoint  []string
	Command     []string
	Ports       []string
	Volumes     []string
	Environment map[string]string
	DependsOn   yaml.Node `yaml:"depends_on"`
	Profiles    []string
}

type composeFile struct {
	Name     string
	Services map[string]composeService
	Volumes  map[string]any
}

// mountSource returns the host file bound at target in s ("" when none).
func (s composeService) mountSource(target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target && strings.HasPrefix(parts[0], ".") {
			return parts[0]
		}
	}
	return ""
}

// mounted reports whether path is in a volume or bind mount of s.
func (s composeService) mounted(p string) bool {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (p == parts[1] || strings.HasPrefix(p, strings.TrimSuffix(parts[1], "/")+"/")) {
			return true
		}
	}
	return false
}

func (s composeService) dependsOn() []string {
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			out = append(out, s.DependsOn.Content[i].Value)
		}
	}
	return out
}

// binary is the program a service of the vpipe image runs.
func (s composeService) binary() string {
	if len(s.Entrypoint) > 0 {
		return path.Base(s.Entrypoint[0])
	}
	return "vpipe"
}

// TestCompose holds deploy/compose.yaml against the code: images pinned
// and built from deploy/Dockerfile, binaries that exist, vpipe services
// with valid configurations whose roles exist and have their sections,
// published ports the processes listen on, the environment their secrets
// come from, the topics vpipe uses, and Prometheus and Grafana wired to
// the services and files that exist.
func TestCompose(t *testing.T) {
	var cf composeFile
	readYAML(t, "compose.yaml", &cf)
	roles := knownRoles(t)
	if len(cf.Services) == 0 {
		t.Fatal("no services")
	}
	configs := map[string]deployedConfig{}
	runs := map[string]vpipeRun{}
	standalone := map[string]bool{} // vpipe run services on their own embedded broker
	var vpipeImage string
	for name, s := range cf.Services {
		where := "compose service " + name
		if s.Image == "" {
			t.Errorf("%s: no image", where)
			continue
		}
		img, _ := imageRef(t, where, s.Image)
		for _, d := range s.dependsOn() {
			if _, ok := cf.Services[d]; !ok {
				t.Errorf("%s depends on %s, which is not a service", where, d)
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s mounts %s: %v", where, src, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("%s uses volume %s, which is not declared", where, src)
			}
		}
		if s.Build != nil {
			if df := filepath.Join(s.Build.Context, s.Build.Dockerfile); df != filepath.Join("..", "deploy", "Dockerfile") {
				t.Errorf("%s builds %s, want deploy/Dockerfile from the repository root", where, df)
			}
			if vpipeImage != "" && vpipeImage != s.Image {
				t.Errorf("%s builds %s, others %s", where, s.Image, vpipeImage)
			}
			vpipeImage = s.Image
		}
		if img != "vpipe" {
			continue
		}
		if s.Build == nil {
			t.Errorf("%s uses the vpipe image without building it", where)
		}
		if bin := s.binary(); !cmdExists(bin) {
			t.Errorf("%s runs %s, which is not a cmd/ of the repository", where, bin)
		}
		if s.binary() != "vpipe" {
			continue
		}
		r, ok := parseRun(t, where, s.Command)
		if !ok {
			t.Errorf("%s: vpipe %v is not `vpipe run`", where, s.Command)
			continue
		}
		src := s.mountSource(r.config)
		if src == "" {
			t.Errorf("%s: -c %s is not a file mounted from the repository", where, r.config)
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		c := loadConfig(t, src, data)
		configs[name], runs[name] = c, r
		for _, e := range checkRoles(t, where, roles, c, r.roles, s.mounted) {
			if _, ok := s.Environment[e]; !ok {
				t.Errorf("%s: its roles read $%s, which its environment does not set", where, e)
			}
		}
		listens := listenPorts(c.cfg, r.roles)
		for _, p := range s.Ports {
			cp := p[strings.LastIndexByte(p, ':')+1:]
			if !strings.Contains(cp, "/") {
				cp += "/tcp"
			}
			if !slices.Contains(listens, cp) {
				t.Errorf("%s publishes %s, but listens on %v", where, p, listens)
			}
		}
		if len(c.cfg.Kafka.Brokers) == 0 {
			// A vpipe on its own embedded broker is a stand-in outside the
			// pipeline (the demo's tenant-inbox): demo only, its broker on
			// loopback so that no other service can use it by mistake.
			host, _, _ := net.SplitHostPort(c.cfg.Kafka.Embedded.Listen)
			if ip := net.ParseIP(host); !slices.Contains(s.Profiles, "demo") || ip == nil || !ip.IsLoopback() {
				t.Errorf("%s runs the embedded broker (on %s) instead of the kafka service", where, c.cfg.Kafka.Embedded.Listen)
			}
			standalone[name] = true
		}
		for _, b := range c.cfg.Kafka.Brokers {
			if host, _, _ := net.SplitHostPort(b); cf.Services[host].Image == "" {
				t.Errorf("%s: broker %s is not a service", where, b)
			}
		}
	}
	if len(runs) < 2 {
		t.Fatalf("%d vpipe run services; want ingest and stages apart", len(runs))
	}
	var ingest []string
	for name, r := range runs {
		if slices.Contains(r.roles, "ingest") && !standalone[name] {
			ingest = append(ingest, name)
			if len(r.roles) > 1 {
				t.Errorf("compose service %s runs ingest with %v: run the stages apart", name, r.roles)
			}
		}
	}
	if len(ingest) != 1 {
		t.Fatalf("ingest services %v, want one", ingest)
	}
	cfg := configs[ingest[0]]

	t.Run("kafka", func(t *testing.T) {
		k := cf.Services["kafka"]
		if name, _ := imageRef(t, "kafka", k.Image); name != "apache/kafka" {
			t.Errorf("kafka image %s, want the official apache/kafka", k.Image)
		}
		if k.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
			t.Errorf("kafka is not a KRaft combined node: KAFKA_PROCESS_ROLES=%q", k.Environment["KAFKA_PROCESS_ROLES"])
		}
		if id, err := base64.RawURLEncoding.DecodeString(k.Environment["CLUSTER_ID"]); err != nil || len(id) != 16 {
			t.Errorf("CLUSTER_ID %q is not 16 bytes in base64url (%v)", k.Environment["CLUSTER_ID"], err)
		}
		for _, b := range cfg.cfg.Kafka.Brokers {
			if !strings.Contains(k.Environment["KAFKA_ADVERTISED_LISTENERS"], "://"+b) {
				t.Errorf("kafka does not advertise %s, the brokers of the vpipe configuration", b)
			}
		}
		init := cf.Services["kafka-init"]
		if init.Image != k.Image {
			t.Errorf("kafka-init image %s, kafka %s", init.Image, k.Image)
		}
		if init.Environment["BOOTSTRAP"] != cfg.cfg.Kafka.Brokers[0] {
			t.Errorf("kafka-init bootstraps %s, vpipe %s", init.Environment["BOOTSTRAP"], cfg.cfg.Kafka.Brokers[0])
		}
		checkTopics(t, "kafka-init", cfg.cfg.Kafka.TopicPrefix, init.Environment["TOPICS"], init.Environment["COMPACTED_TOPICS"])
		for name, s := range cf.Services {
			if _, ok := runs[name]; ok && !standalone[name] && !slices.Contains(s.dependsOn(), "kafka-init") {
				t.Errorf("%s does not wait for kafka-init", name)
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		var pc map[string]any
		readYAML(t, "compose/prometheus.yml", &pc)
		prom := cf.Services["prometheus"]
		for _, rf := range strs(pc["rule_files"]) {
			if src := prom.mountSource(rf); src != "./prometheus/alerts.yaml" {
				t.Errorf("rule file %s is %q, want ./prometheus/alerts.yaml", rf, src)
			}
		}
		var scraped []string
		for _, sc := range list(pc["scrape_configs"]) {
			for _, sd := range list(dig(sc, "dns_sd_configs")) {
				port := str(dig(sd, "port"))
				for _, n := range strs(dig(sd, "names")) {
					scraped = append(scraped, n)
					c, ok := configs[n]
					if !ok {
						t.Errorf("prometheus scrapes %s, which is not a vpipe service", n)
						continue
					}
					if _, p, _ := net.SplitHostPort(c.cfg.HTTP.Address); p != port {
						t.Errorf("prometheus scrapes %s on port %s, it serves /metrics on %s", n, port, p)
					}
				}
			}
		}
		for n := range runs {
			if !slices.Contains(scraped, n) {
				t.Errorf("prometheus does not scrape %s", n)
			}
		}
	})

	t.Run("grafana", func(t *testing.T) {
		g := cf.Services["grafana"]
		var ds, dp map[string]any
		readYAML(t, "compose/grafana-datasources.yaml", &ds)
		readYAML(t, "compose/grafana-dashboards.yaml", &dp)
		if g.mountSource("/etc/grafana/provisioning/datasources/vpipe.yaml") != "./compose/grafana-datasources.yaml" ||
			g.mountSource("/etc/grafana/provisioning/dashboards/vpipe.yaml") != "./compose/grafana-dashboards.yaml" {
			t.Error("grafana does not mount the provisioning files")
		}
		u, err := url.Parse(str(dig(ds, "datasources", 0, "url")))
		if err != nil || cf.Services[u.Hostname()].Image == "" || !slices.Contains(cf.Services[u.Hostname()].Ports, u.Port()+":"+u.Port()) {
			t.Errorf("datasource url %v is not the prometheus service", dig(ds, "datasources", 0, "url"))
		}
		dir := str(dig(dp, "providers", 0, "options", "path"))
		home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
		if g.mountSource(home) != "./grafana/vpipe.json" || path.Dir(home) != dir {
			t.Errorf("dashboard provider path %s, home %s: want the mount of ./grafana/vpipe.json", dir, home)
		}
	})

	t.Run("demo", func(t *testing.T) {
		for name, s := range cf.Services {
			if !slices.Contains(s.Profiles, "demo") {
				continue
			}
			switch s.binary() {
			case "vpipe-loadgen":
				target := s.Command[len(s.Command)-1]
				host, port, err := net.SplitHostPort(target)
				r, ok := runs[host]
				if err != nil || !ok || !slices.Contains(r.roles, "ingest") {
					t.Errorf("%s sends to %s, which is not the ingest service", name, target)
					continue
				}
				proto := "tcp"
				if i := slices.Index(s.Command, "-transport"); i >= 0 && s.Command[i+1] == "udp" {
					proto = "udp"
				}
				if !slices.Contains(listenPorts(configs[host].cfg, r.roles), port+"/"+proto) {
					t.Errorf("%s sends to %s/%s, where %s does not listen", name, port, proto, host)
				}
			case "vcosim":
				listen := s.Command[slices.Index(s.Command, "-listen")+1]
				token := s.Command[slices.Index(s.Command, "-token")+1]
				_, port, _ := net.SplitHostPort(listen)
				found := false
				for svc, c := range configs {
					for _, src := range c.cfg.Sources.VeloCloud {
						u, _ := url.Parse(src.URL)
						if u.Hostname() != name {
							continue
						}
						found = true
						if u.Port() != port {
							t.Errorf("VCO source %s: port %s, vcosim listens on %s", src.Name, u.Port(), port)
						}
						if r := runs[svc]; slices.Contains(r.roles, "velocloud") && cf.Services[svc].Environment[src.TokenEnv] != token {
							t.Errorf("%s: $%s is not vcosim's token", svc, src.TokenEnv)
						}
					}
				}
				if !found {
					t.Errorf("no VCO source polls %s", name)
				}
			}
		}
	})
}

// k8sObject is one manifest.
type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc["kind"]) }
func (o k8sObject) name() string { return str(dig(o.doc, "metadata", "name")) }

// TestKubernetes holds deploy/k8s against the code: every manifest listed
// by the kustomization; Deployments of the vpipe image, one per role, on a
// ConfigMap that is a valid vpipe configuration, with their roles'
// secrets and files, probes on /healthz and /readyz, the ports their
// processes listen on, requests and limits, no privileges; Services,
// PodDisruptionBudgets and autoscalers that select them; the topics vpipe
// uses.
func TestKubernetes(t *testing.T) {
	var kust map[string]any
	readYAML(t, "k8s/kustomization.yaml", &kust)
	files, _ := filepath.Glob("k8s/*.yaml")
	var resources []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			resources = append(resources, b)
		}
	}
	listed := strs(kust["resources"])
	slices.Sort(listed)
	if !slices.Equal(listed, resources) {
		t.Errorf("kustomization lists %v, the directory holds %v", listed, resources)
	}
	var objs []k8sObject
	for _, f := range listed {
		for _, d := range readYAMLDocs(t, filepath.Join("k8s", f)) {
			o := k8sObject{file: f, doc: d}
			if str(d["apiVersion"]) == "" || o.kind() == "" || o.name() == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			objs = append(objs, o)
		}
	}
	find := func(kind, name string) *k8sObject {
		for i := range objs {
			if objs[i].kind() == kind && objs[i].name() == name {
				return &objs[i]
			}
		}
		return nil
	}
	kustText, _ := os.ReadFile("k8s/kustomization.yaml")
	images := map[string]string{}
	for _, im := range list(kust["images"]) {
		images[str(dig(im, "name"))] = str(dig(im, "newTag"))
	}
	roles := knownRoles(t)
	var cfg deployedConfig
	deployedRoles := map[string]string{} // role → Deployment
	var replicated []k8sObject           // Deployments of more than one replica
	for _, o := range objs {
		if o.kind() != "Deployment" {
			continue
		}
		where := o.file + " Deployment " + o.name()
		spec := dig(o.doc, "spec", "template", "spec")
		podLabels := dig(o.doc, "spec", "template", "metadata", "labels")
		if fmt.Sprint(dig(o.doc, "spec", "selector", "matchLabels")) != fmt.Sprint(podLabels) {
			t.Errorf("%s: selector %v, pod labels %v", where, dig(o.doc, "spec", "selector", "matchLabels"), podLabels)
		}
		if dig(spec, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: not runAsNonRoot", where)
		}
		grace, _ := dig(spec, "terminationGracePeriodSeconds").(int)
		for _, ct := range list(dig(spec, "containers")) {
			cwhere := where + " container " + str(dig(ct, "name"))
			img, tag := imageRef(t, cwhere, str(dig(ct, "image")))
			if img != "vpipe" || images["vpipe"] != tag {
				t.Errorf("%s: image %s, want vpipe (kustomization images: %v)", cwhere, dig(ct, "image"), images)
			}
			r, ok := parseRun(t, cwhere, strs(dig(ct, "args")))
			if !ok {
				t.Errorf("%s: args %v are not `vpipe run`", cwhere, dig(ct, "args"))
				continue
			}
			mounts := map[string]string{} // mount path → volume
			for _, m := range list(dig(ct, "volumeMounts")) {
				mounts[str(dig(m, "mountPath"))] = str(dig(m, "name"))
			}
			volume := func(name string) any {
				for _, v := range list(dig(spec, "volumes")) {
					if str(dig(v, "name")) == name {
						return v
					}
				}
				return nil
			}
			mounted := func(p string) bool {
				for m := range mounts {
					if strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
						return true
					}
				}
				return false
			}
			cmName := str(dig(volume(mounts[path.Dir(r.config)]), "configMap", "name"))
			cm := find("ConfigMap", cmName)
			if cm == nil {
				t.Errorf("%s: -c %s is not on a ConfigMap volume of the manifests", cwhere, r.config)
				continue
			}
			data, ok := dig(cm.doc, "data", path.Base(r.config)).(string)
			if !ok {
				t.Errorf("%s: -c %s: ConfigMap %s has no key %s", cwhere, r.config, cmName, path.Base(r.config))
				continue
			}
			c := loadConfig(t, "ConfigMap "+cmName+" "+path.Base(r.config), []byte(data))
			cfg = c
			if grace <= int(c.cfg.Kafka.ShutdownTimeout.D().Seconds()) {
				t.Errorf("%s: terminationGracePeriodSeconds %d is not above kafka.shutdown_timeout %s", where, grace, c.cfg.Kafka.ShutdownTimeout.D())
			}
			env := map[string]any{}
			for _, e := range list(dig(ct, "env")) {
				env[str(dig(e, "name"))] = e
			}
			for _, e := range checkRoles(t, cwhere, roles, c, r.roles, mounted) {
				ev, ok := env[e]
				if !ok {
					t.Errorf("%s: its roles read $%s, which its env does not set", cwhere, e)
					continue
				}
				if ref := str(dig(ev, "valueFrom", "secretKeyRef", "name")); ref == "" || !strings.Contains(string(kustText), ref) {
					t.Errorf("%s: $%s comes from Secret %q, which the kustomization does not say how to create", cwhere, e, ref)
				}
			}
			for m, v := range mounts {
				if sn := str(dig(volume(v), "secret", "secretName")); sn != "" && !strings.Contains(string(kustText), sn) {
					t.Errorf("%s: mounts Secret %s at %s, which the kustomization does not say how to create", cwhere, sn, m)
				}
				if pvc := str(dig(volume(v), "persistentVolumeClaim", "claimName")); pvc != "" && find("PersistentVolumeClaim", pvc) == nil {
					t.Errorf("%s: claim %s is not in the manifests", cwhere, pvc)
				}
			}
			replicas, _ := dig(o.doc, "spec", "replicas").(int)
			if replicas > 1 {
				replicated = append(replicated, o)
			}
			for _, role := range r.roles {
				if singleProcessRoles[role] && (replicas != 1 || str(dig(o.doc, "spec", "strategy", "type")) != "Recreate") {
					t.Errorf("%s: role %s must run in one process: want replicas 1 and strategy Recreate", where, role)
				}
			}
			for _, role := range r.roles {
				if other, dup := deployedRoles[role]; dup {
					t.Errorf("role %s runs in Deployments %s and %s", role, other, o.name())
				}
				deployedRoles[role] = o.name()
			}
			// Ports, probes.
			ports := map[string]string{} // name → port/proto
			var declared []string
			for _, p := range list(dig(ct, "ports")) {
				pp := fmt.Sprintf("%v/%s", dig(p, "containerPort"), strings.ToLower(str(dig(p, "protocol"))))
				ports[str(dig(p, "name"))] = pp
				declared = append(declared, pp)
			}
			listens := listenPorts(c.cfg, r.roles)
			slices.Sort(listens)
			slices.Sort(declared)
			if !slices.Equal(slices.Compact(listens), declared) {
				t.Errorf("%s: container ports %v, the process listens on %v", cwhere, declared, listens)
			}
			_, httpPort, _ := net.SplitHostPort(c.cfg.HTTP.Address)
			for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
				p := str(dig(ct, probe, "httpGet", "path"))
				port := str(dig(ct, probe, "httpGet", "port"))
				if p != want || ports[port] != httpPort+"/tcp" {
					t.Errorf("%s: %s on %s port %s, want %s on the HTTP port %s", cwhere, probe, p, port, want, httpPort)
				}
			}
			// Resources.
			req := dig(ct, "resources", "requests")
			if str(dig(req, "cpu")) == "" || str(dig(req, "memory")) == "" || str(dig(ct, "resources", "limits", "memory")) == "" {
				t.Errorf("%s: want cpu and memory requests and a memory limit: %v", cwhere, dig(ct, "resources"))
			}
			if gml := str(dig(env["GOMEMLIMIT"], "value")); gml != "" && bytesOf(t, gml) >= bytesOf(t, str(dig(ct, "resources", "limits", "memory"))) {
				t.Errorf("%s: GOMEMLIMIT %s is not below the memory limit", cwhere, gml)
			}
			sc := dig(ct, "securityContext")
			if dig(sc, "allowPrivilegeEscalation") != false || dig(sc, "readOnlyRootFilesystem") != true || !slices.Equal(strs(dig(sc, "capabilities", "drop")), []string{"ALL"}) {
				t.Errorf("%s: securityContext %v: want no privilege escalation, read-only root, all capabilities dropped", cwhere, sc)
			}
		}
	}
	if deployedRoles["ingest"] == "" || len(deployedRoles) < 2 {
		t.Fatalf("Deployments by role: %v; want ingest and stages apart", deployedRoles)
	}
	// Services, disruption budgets and autoscalers select Deployments.
	selects := func(sel any) *k8sObject {
		for i := range objs {
			if objs[i].kind() != "Deployment" {
				continue
			}
			labels, _ := dig(objs[i].doc, "spec", "template", "metadata", "labels").(map[string]any)
			m, _ := sel.(map[string]any)
			ok := len(m) > 0
			for k, v := range m {
				ok = ok && labels[k] == v
			}
			if ok {
				return &objs[i]
			}
		}
		return nil
	}
	var syslogService bool
	for _, o := range objs {
		switch o.kind() {
		case "Service":
			d := selects(dig(o.doc, "spec", "selector"))
			if d == nil {
				t.Errorf("Service %s selects no Deployment", o.name())
				continue
			}
			ct := dig(d.doc, "spec", "template", "spec", "containers", 0)
			for _, p := range list(dig(o.doc, "spec", "ports")) {
				target, proto := str(dig(p, "targetPort")), str(dig(p, "protocol"))
				found := false
				for _, cp := range list(dig(ct, "ports")) {
					found = found || (str(dig(cp, "name")) == target && str(dig(cp, "protocol")) == proto)
				}
				if !found {
					t.Errorf("Service %s: port %v targets %s/%s, which Deployment %s does not declare", o.name(), dig(p, "name"), target, proto, d.name())
				}
				if proto == "UDP" && str(dig(p, "port")) == "514" {
					syslogService = true
				}
			}
		case "PodDisruptionBudget":
			if selects(dig(o.doc, "spec", "selector", "matchLabels")) == nil {
				t.Errorf("PodDisruptionBudget %s selects no Deployment", o.name())
			}
		case "HorizontalPodAutoscaler":
			if find("Deployment", str(dig(o.doc, "spec", "scaleTargetRef", "name"))) == nil {
				t.Errorf("HorizontalPodAutoscaler %s scales no Deployment of the manifests", o.name())
			}
		case "Job":
			ct := dig(o.doc, "spec", "template", "spec", "containers", 0)
			env := map[string]string{}
			for _, e := range list(dig(ct, "env")) {
				env[str(dig(e, "name"))] = str(dig(e, "value"))
			}
			if env["TOPICS"] != "" {
				checkTopics(t, "Job "+o.name(), cfg.cfg.Kafka.TopicPrefix, env["TOPICS"], env["COMPACTED_TOPICS"])
				if env["BOOTSTRAP"] != cfg.cfg.Kafka.Brokers[0] {
					t.Errorf("Job %s bootstraps %s, vpipe %v", o.name(), env["BOOTSTRAP"], cfg.cfg.Kafka.Brokers)
				}
			}
		}
	}
	if !syslogService {
		t.Error("no Service offers syslog on UDP 514")
	}
	if find("PodDisruptionBudget", deployedRoles["ingest"]) == nil {
		t.Error("no PodDisruptionBudget for ingest")
	}
	for _, d := range replicated {
		found := false
		for _, o := range objs {
			if o.kind() != "PodDisruptionBudget" {
				continue
			}
			if sel := selects(dig(o.doc, "spec", "selector", "matchLabels")); sel != nil && sel.name() == d.name() {
				found = true
			}
		}
		if !found {
			t.Errorf("Deployment %s runs %v replicas without a PodDisruptionBudget", d.name(), dig(d.doc, "spec", "replicas"))
		}
	}
	// Every role has its Deployment, except the file stage (an archive
	// on one volume: compose runs it; on a cluster a SIEM reads Kafka).
	for _, role := range roles {
		if deployedRoles[role] == "" && role != "file" {
			t.Errorf("role %s has no Deployment", role)
		}
	}
}

// singleProcessRoles must run in exactly one process per configuration:
// the pollers keep their position on the checkpoints topic (two would
// publish every event twice and overwrite each other's checkpoint), and
// jit-access keeps its grant index in the process.
var singleProcessRoles = map[string]bool{"vcenter": true, "velocloud": true, "nsx-groups": true, "jit-access": true}

// bytesOf reads a Kubernetes memory quantity (Mi, Gi) or a GOMEMLIMIT
// (MiB, GiB).
func bytesOf(t *testing.T, q string) int64 {
	t.Helper()
	for suf, mul := range map[string]int64{"MiB": 1 << 20, "GiB": 1 << 30, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suf); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("quantity %q: %v", q, err)
			}
			return v * mul
		}
	}
	t.Fatalf("quantity %q: unknown unit", q)
	return 0
}

// TestDockerfile holds deploy/Dockerfile against the module and the
// compose file: the Go builder of go.mod's go line (major.minor), static
// (CGO_ENABLED=0) builds of every cmd/, a distroless or scratch final image
// running as non-root, vpipe as the entry point, the ports the compose
// services publish exposed.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
	argGo := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\d+)\.(\d+)`).FindStringSubmatch(text)
	if goLine == nil || argGo == nil {
		t.Fatalf("go.mod go line %v, Dockerfile ARG GO_VERSION %v", goLine, argGo)
	}
	if argGo[1] != goLine[1] || argGo[2] != goLine[2] {
		t.Errorf("builder Go %s.%s is not go.mod's %s.%s", argGo[1], argGo[2], goLine[1], goLine[2])
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Fatalf("FROM lines %v: want a build stage and a final stage", froms)
	}
	for _, f := range froms {
		imageRef(t, "Dockerfile FROM", strings.ReplaceAll(f[1], "${GO_VERSION}", argGo[1]+"."+argGo[2]))
	}
	final := froms[len(froms)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final image %s: want distroless/static or scratch", final)
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(text, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("USER %v: want a non-root user", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/...", `ENTRYPOINT ["/usr/local/bin/vpipe"]`} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(\S+) `).FindAllStringSubmatch(text, -1) {
		if src := m[1]; !strings.HasPrefix(src, "/") && src != "." && src != "go.mod" {
			if _, err := os.Stat(filepath.Join(repo, src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
		}
	}
	exposed := strings.Fields(regexp.MustCompile(`(?m)^EXPOSE (.*)$`).FindStringSubmatch(text)[1])
	var cf composeFile
	readYAML(t, "compose.yaml", &cf)
	for name, s := range cf.Services {
		// The simulators of the image publish their own ports; EXPOSE
		// documents vpipe's.
		if img, _, _ := strings.Cut(s.Image, ":"); img != "vpipe" || s.binary() != "vpipe" {
			continue
		}
		for _, p := range s.Ports {
			cp := p[strings.LastIndexByte(p, ':')+1:]
			if !slices.Contains(exposed, cp) {
				t.Errorf("compose service %s publishes %s, the Dockerfile exposes %v", name, cp, exposed)
			}
		}
	}
}

// unitFile reads a systemd unit into section → key → values.
func unitFile(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			sec = strings.Trim(l, "[]")
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: line %q", name, l)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

// TestSystemdUnit checks the hardening of deploy/systemd/vpipe.service, and
// that only the port-514 drop-in grants a capability. With systemd-analyze
// on the machine it also verifies both with the built vpipe.
func TestSystemdUnit(t *testing.T) {
	u := unitFile(t, "systemd/vpipe.service")
	svc := u["Service"]
	want := map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "vpipe", "NoNewPrivileges": "yes",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
		"AmbientCapabilities": "", "RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes",
		"SystemCallArchitectures": "native", "KillSignal": "SIGTERM", "WorkingDirectory": "%S/vpipe",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("[Service] %s=%v, want %q", k, got, v)
		}
	}
	if exec := svc["ExecStart"]; len(exec) != 1 || !strings.HasPrefix(exec[0], "/usr/local/bin/vpipe run -c /etc/vpipe/vpipe.yaml") {
		t.Errorf("ExecStart %v", exec)
	}
	// TimeoutStopSec above the default kafka.shutdown_timeout, so that the
	// flush on SIGTERM is not cut short.
	if stop := svc["TimeoutStopSec"]; len(stop) != 1 {
		t.Errorf("TimeoutStopSec %v", stop)
	} else if d, err := time.ParseDuration(stop[0]); err != nil || d <= config.Default().Kafka.ShutdownTimeout.D() {
		t.Errorf("TimeoutStopSec %s is not above the default kafka.shutdown_timeout %s", stop[0], config.Default().Kafka.ShutdownTimeout.D())
	}
	drop := unitFile(t, "systemd/vpipe.service.d/syslog-port-514.conf")
	if len(drop) != 1 || fmt.Sprint(drop["Service"]) != "map[AmbientCapabilities:[CAP_NET_BIND_SERVICE] CapabilityBoundingSet:[CAP_NET_BIND_SERVICE]]" {
		t.Errorf("drop-in %v: want CAP_NET_BIND_SERVICE and nothing else", drop)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil || testing.Short() {
		t.Log("systemd-analyze verify skipped")
		return
	}
	bin := vpipeBinary(t)
	dir := t.TempDir()
	unit, _ := os.ReadFile("systemd/vpipe.service")
	os.WriteFile(filepath.Join(dir, "vpipe.service"), []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/vpipe", bin)), 0o644)
	os.MkdirAll(filepath.Join(dir, "vpipe.service.d"), 0o755)
	dropIn, _ := os.ReadFile("systemd/vpipe.service.d/syslog-port-514.conf")
	os.WriteFile(filepath.Join(dir, "vpipe.service.d", "syslog-port-514.conf"), dropIn, 0o644)
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "vpipe.service")).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestComposeConfig decodes the configuration the compose services mount
// as `vpipe validate` does (the example is cmd/vpipe's to check).
func TestComposeConfig(t *testing.T) {
	for _, f := range []string{"compose/vpipe.yaml", "compose/tenant-inbox.yaml"} {
		t.Run(f, func(t *testing.T) {
			if _, err := config.Load(f); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}
