package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/tenants"
	"github.com/vpipe/vpipe/pipeline/vcd"
	vcdsim "github.com/vpipe/vpipe/pipeline/vcd/simulator"
	znunysim "github.com/vpipe/vpipe/pipeline/znuny/simulator"
)

// flagDef is one flag of a command: whether it is boolean (takes no
// separate value) and its default when the source spells it as a literal.
type flagDef struct {
	isBool bool
	def    string
}

// flagSetters are the flag.FlagSet (and flag package) methods that define
// a flag, with the index of the name argument.
var flagSetters = map[string]int{
	"String": 0, "Bool": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Float64": 0, "Duration": 0, "Func": 0, "BoolFunc": 0,
	"StringVar": 1, "BoolVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "Float64Var": 1, "DurationVar": 1, "Var": 1, "TextVar": 1,
}

var (
	cmdFlagsMu    sync.Mutex
	cmdFlagsCache = map[string]map[string]flagDef{}
)

// cmdFlags reads the flags cmd/<name> defines from its source (every call
// of a FlagSet's String, Bool, ..., StringVar, ... with a literal name), so
// that a flag renamed there fails here without building the command.
func cmdFlags(t *testing.T, name string) map[string]flagDef {
	t.Helper()
	cmdFlagsMu.Lock()
	defer cmdFlagsMu.Unlock()
	if f, ok := cmdFlagsCache[name]; ok {
		return f
	}
	pkgs, err := parser.ParseDir(token.NewFileSet(), filepath.Join(repo, "cmd", name), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]flagDef{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				i, ok := flagSetters[sel.Sel.Name]
				if !ok || len(call.Args) < i+3 {
					return true
				}
				fname, ok := stringLit(call.Args[i])
				if !ok {
					return true
				}
				d := flagDef{isBool: strings.HasPrefix(sel.Sel.Name, "Bool")}
				switch v := call.Args[i+1].(type) {
				case *ast.BasicLit:
					d.def = v.Value
					if s, err := strconv.Unquote(v.Value); err == nil {
						d.def = s
					}
				case *ast.Ident:
					d.def = v.Name // true, false
				}
				flags[fname] = d
				return true
			})
		}
	}
	if len(flags) == 0 {
		t.Fatalf("cmd/%s defines no flags", name)
	}
	cmdFlagsCache[name] = flags
	return flags
}

// vcsimModelFlags would change vcsim's inventory away from
// simulator.VPX(), which the fixtures name (cmd/vcsim has none today).
var vcsimModelFlags = []string{"hosts", "vms"}

// inputFileFlags are simulator and loadgen flags that name a file the
// program reads: it must be mounted from the repository.
var inputFileFlags = []string{"inventory", "tickets", "fixture", "cert", "key", "file", "tls-ca", "tls-cert", "tls-key"}

// simulatorService is a compose service running one of the simulators or the
// load generator, with its command line parsed against the program's flags.
type simulatorService struct {
	name    string
	svc     composeService
	program string             // nsxsim, vcdsim, znunysim, vcosim, vpipe-loadgen, vcsim
	flags   map[string]flagDef // what the program defines
	set     map[string]string  // what the command sets
	args    []string           // positional arguments
}

// value returns the flag's value on the command line, else its default.
func (s simulatorService) value(name string) string {
	if v, ok := s.set[name]; ok {
		return v
	}
	return s.flags[name].def
}

// parseSimulator parses a simulator's command line as the flag package
// does: flags (-name value, -name=value, -bool) up to the first argument
// that is not one; every flag must be one the program defines.
func parseSimulator(t *testing.T, name string, s composeService, program string, flags map[string]flagDef) simulatorService {
	t.Helper()
	sim := simulatorService{name: name, svc: s, program: program, flags: flags, set: map[string]string{}}
	args := s.Command
	for len(args) > 0 {
		a := args[0]
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		args = args[1:]
		if a == "--" {
			break
		}
		f, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		def, ok := flags[f]
		if !ok {
			t.Errorf("compose service %s: %s has no flag -%s", name, program, f)
			continue
		}
		switch {
		case hasValue:
		case def.isBool:
			v = "true"
		case len(args) == 0:
			t.Errorf("compose service %s: -%s without a value", name, f)
		default:
			v, args = args[0], args[1:]
		}
		sim.set[f] = v
	}
	sim.args = args
	return sim
}

// hostPath returns the repository file (relative to deploy/) that a bind
// mount of s puts at p in the container, "" when none does.
func (s composeService) hostPath(p string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		if p == parts[1] {
			return parts[0]
		}
		if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(parts[1], "/")+"/"); ok {
			return filepath.Join(parts[0], rest)
		}
	}
	return ""
}

// composeRun is a `vpipe run` service of the compose file with its
// configuration.
type composeRun struct {
	svc composeService
	run vpipeRun
	cfg deployedConfig
}

// demoCompose reads compose.yaml: its `vpipe run` services (with their
// configurations) and its simulators (with their command lines checked
// against the programs' flags).
func demoCompose(t *testing.T) (composeFile, map[string]composeRun, map[string]simulatorService) {
	t.Helper()
	var cf composeFile
	readYAML(t, "compose.yaml", &cf)
	runs := map[string]composeRun{}
	sims := map[string]simulatorService{}
	for name, s := range cf.Services {
		img, _, _ := strings.Cut(s.Image, ":")
		switch {
		case img != "vpipe":
		case s.binary() == "vpipe":
			r, ok := parseRun(t, name, s.Command)
			if !ok {
				continue
			}
			src := s.mountSource(r.config)
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("compose service %s: -c %s: %v", name, r.config, err)
			}
			runs[name] = composeRun{svc: s, run: r, cfg: loadConfig(t, src, data)}
		default:
			if cmdExists(s.binary()) {
				sims[name] = parseSimulator(t, name, s, s.binary(), cmdFlags(t, s.binary()))
			}
		}
	}
	return cf, runs, sims
}

// runsOf returns the compose services that run role against the kafka
// service.
func runsOf(runs map[string]composeRun, role string) []string {
	var out []string
	for name, r := range runs {
		if slices.Contains(r.run.roles, role) && len(r.cfg.cfg.Kafka.Brokers) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestComposeSimulators holds the simulators of the demo profile against
// their programs and against the configuration that points at them: every
// flag exists, every file they read is mounted from the repository and
// exists, they publish the port they listen on, and each section of the
// vpipe configuration that names a simulator by service name uses its
// port, scheme, user and password (the environment of every service that
// runs the section's role). The simulators' webhook and the tenant
// destinations reach services that listen there.
func TestComposeSimulators(t *testing.T) {
	cf, runs, sims := demoCompose(t)
	for _, want := range []string{"vcsim", "nsxsim", "znunysim", "vcdsim", "vcosim", "vpipe-loadgen"} {
		found := false
		for _, s := range sims {
			found = found || s.program == want
		}
		if !found {
			t.Errorf("no compose service runs %s", want)
		}
	}
	for name, s := range sims {
		if !slices.Contains(s.svc.Profiles, "demo") {
			t.Errorf("compose service %s (%s) is not in the demo profile", name, s.program)
		}
		switch {
		case s.program == "vpipe-loadgen" && len(s.args) != 1:
			t.Errorf("compose service %s: want one ADDR after the flags, got %v", name, s.args)
		case s.program != "vpipe-loadgen" && len(s.args) > 0:
			t.Errorf("compose service %s: %s takes no arguments, got %v", name, s.program, s.args)
		}
		for f, v := range s.set {
			if !strings.HasPrefix(v, "/") {
				continue
			}
			hp := s.svc.hostPath(v)
			switch {
			case hp == "" && slices.Contains(inputFileFlags, f):
				t.Errorf("compose service %s: -%s %s is not mounted from the repository", name, f, v)
			case hp != "":
				if _, err := os.Stat(hp); err != nil {
					t.Errorf("compose service %s: -%s %s: %v", name, f, v, err)
				}
			}
		}
		listen := s.value("listen")
		_, port, _ := net.SplitHostPort(listen)
		for _, p := range s.svc.Ports {
			if cp := p[strings.LastIndexByte(p, ':')+1:]; strings.TrimSuffix(cp, "/tcp") != port {
				t.Errorf("compose service %s publishes %s, %s listens on %s", name, p, s.program, listen)
			}
		}
	}

	// Every endpoint of the configuration that is a simulator.
	type endpoint struct {
		role, at, url, user, secretEnv string
		insecure                       bool
	}
	var eps []endpoint
	var main deployedConfig
	for _, r := range runs {
		if len(r.cfg.cfg.Kafka.Brokers) > 0 {
			main = r.cfg
		}
	}
	c := main.cfg
	for i, v := range c.Sources.VCenter {
		eps = append(eps, endpoint{"vcenter", fmt.Sprintf("sources.vcenter[%d]", i), v.URL, v.Username, v.PasswordEnv, v.TLS.InsecureSkipVerify})
		if ts := c.Stages.TagSync; ts != nil && ts.VCenter == v.Name {
			eps = append(eps, endpoint{"tag-sync", fmt.Sprintf("sources.vcenter[%d]", i), v.URL, v.Username, v.PasswordEnv, v.TLS.InsecureSkipVerify})
		}
	}
	if ts := c.Stages.TagSync; ts != nil {
		eps = append(eps, endpoint{"tag-sync", "stages.tag_sync.nsx", ts.NSX.URL, ts.NSX.Username, ts.NSX.PasswordEnv, ts.NSX.TLS.InsecureSkipVerify})
	}
	for i, g := range c.Sources.NSXGroups {
		eps = append(eps, endpoint{"nsx-groups", fmt.Sprintf("sources.nsx_groups[%d]", i), g.URL, g.Username, g.PasswordEnv, g.TLS.InsecureSkipVerify})
	}
	if j := config.JITStage(c); j != nil {
		eps = append(eps,
			endpoint{"jit-access", "stages.jit_access.znuny", j.Znuny.URL, j.Znuny.Username, j.Znuny.PasswordEnv, j.Znuny.TLS.InsecureSkipVerify},
			endpoint{"jit-access", "stages.jit_access.vcenter", j.VCenter.URL, j.VCenter.Username, j.VCenter.PasswordEnv, j.VCenter.TLS.InsecureSkipVerify},
			endpoint{"jit-access", "stages.jit_access.nsx", j.NSX.URL, j.NSX.Username, j.NSX.PasswordEnv, j.NSX.TLS.InsecureSkipVerify})
	}
	if _, f := c.ForensicsConfig(); f != nil {
		eps = append(eps, endpoint{"forensics", "stages.forensics.vcenter", f.VCenter.URL, f.VCenter.Username, f.VCenter.PasswordEnv, f.VCenter.TLS.InsecureSkipVerify})
	}
	if c.Tenants != nil && c.Tenants.VCD != nil {
		v := c.Tenants.VCD
		eps = append(eps, endpoint{"tenant-forward", "tenants.vcd", v.URL, v.Org, v.TokenEnv, v.TLS.InsecureSkipVerify})
	}
	for _, e := range eps {
		where := e.at + " (role " + e.role + ")"
		u, err := url.Parse(e.url)
		if err != nil {
			t.Errorf("%s: url %q: %v", where, e.url, err)
			continue
		}
		sim, ok := sims[u.Hostname()]
		if !ok {
			if _, svc := cf.Services[u.Hostname()]; svc {
				t.Errorf("%s: %s is a compose service but no simulator", where, u.Hostname())
			}
			continue
		}
		services := runsOf(runs, e.role)
		if len(services) == 0 {
			t.Errorf("%s: no compose service runs role %s", where, e.role)
		}
		// secret returns the value the services running the role give
		// the endpoint's secret; they must agree.
		secret := func() string {
			var vals []string
			for _, n := range services {
				vals = append(vals, runs[n].svc.Environment[e.secretEnv])
			}
			if len(slices.Compact(slices.Clone(vals))) != 1 {
				t.Errorf("%s: services %v set $%s to %q", where, services, e.secretEnv, vals)
				return ""
			}
			return vals[0]
		}
		listen := sim.value("listen")
		scheme := "http"
		switch sim.program {
		case "vcsim":
			if sim.value("tls") == "true" {
				scheme = "https"
				if !e.insecure {
					t.Errorf("%s: vcsim's certificate is self-signed for no name: set tls.insecure_skip_verify (demo only)", where)
				}
			}
			if e.user != sim.value("username") || secret() != sim.value("password") {
				t.Errorf("%s: user %s and $%s are not vcsim's -username %s and -password", where, e.user, e.secretEnv, sim.value("username"))
			}
			if u.Path != "/sdk" {
				t.Errorf("%s: url %s: want the /sdk endpoint", where, e.url)
			}
		case "nsxsim":
			if sim.value("tls") != "false" || sim.value("cert") != "" {
				scheme = "https"
			}
			if users := strings.Split(sim.value("users"), ","); !slices.Contains(users, e.user+":"+secret()) {
				t.Errorf("%s: user %s with $%s is not among nsxsim's -users", where, e.user, e.secretEnv)
			}
		case "znunysim":
			ws := sim.value("webservice")
			if ws == "" {
				ws = znunysim.DefaultWebservice
			}
			if want := "/otrs/nph-genericinterface.pl/Webservice/" + ws; u.Path != want {
				t.Errorf("%s: url path %s, znunysim serves %s", where, u.Path, want)
			}
			pw := sim.svc.Environment[sim.value("password-env")]
			if pw == "" {
				pw = "vpipe" // znunysim's default password
			}
			if e.user != sim.value("user") || secret() != pw {
				t.Errorf("%s: user %s and $%s are not znunysim's -user %s and its $%s", where, e.user, e.secretEnv, sim.value("user"), sim.value("password-env"))
			}
		case "vcdsim":
			if sim.value("cert") != "" {
				scheme = "https"
			}
			f, err := vcdsim.LoadFixture(sim.svc.hostPath(sim.value("fixture")))
			if err != nil {
				t.Errorf("%s: vcdsim's fixture: %v", where, err)
				continue
			}
			if org, ok := f.Tokens[secret()]; !ok || !strings.EqualFold(org, e.user) {
				t.Errorf("%s: $%s is no API token of organisation %s in vcdsim's fixture", where, e.secretEnv, e.user)
			}
		default:
			t.Errorf("%s: %s is %s, not a simulator of %s", where, u.Hostname(), sim.program, e.role)
			continue
		}
		_, port, _ := net.SplitHostPort(listen)
		if u.Scheme != scheme || u.Port() != port {
			t.Errorf("%s: url %s, %s serves %s on port %s", where, e.url, sim.name, scheme, port)
		}
	}

	// listens reports whether a vpipe run service of the compose file
	// listens on host:port for transport (syslog) or HTTP.
	listens := func(addr, transport string) bool {
		host, port, _ := net.SplitHostPort(addr)
		r, ok := runs[host]
		if !ok {
			return false
		}
		proto := "tcp"
		if transport == "udp" {
			proto = "udp"
		}
		return slices.Contains(listenPorts(r.cfg.cfg, r.run.roles), port+"/"+proto)
	}
	for name, sim := range sims {
		if inv := sim.value("invoker-url"); sim.program == "znunysim" && inv != "" {
			u, err := url.Parse(inv)
			if err != nil || u.Path != "/v1/webhooks/ticket" || !listens(u.Host, "tcp") || !slices.Contains(runs[u.Hostname()].run.roles, "ingest") {
				t.Errorf("compose service %s: -invoker-url %s is not the ticket webhook of an ingest service", name, inv)
			}
		}
	}
	var dests []tenants.Destination
	for _, tn := range c.TenantList() {
		dests = append(dests, tn.Destinations...)
	}
	if tf := c.Stages.TenantForward; tf != nil {
		for i := range tf.CatchAll {
			dests = append(dests, tf.CatchAll[i].Destination())
		}
	}
	for _, d := range dests {
		host, _, _ := net.SplitHostPort(d.Address)
		if _, ok := cf.Services[host]; ok && !listens(d.Address, d.Transport) {
			t.Errorf("tenant destination %s: no service listens on %s %s", d.Name, d.Transport, d.Address)
		}
	}
}

// TestComposeDemoInventory holds the demo fixtures against vcsim: the NSX
// simulator's VMs are vcsim's, by instance UUID (NSX external_id), name and
// managed object id, as vcsim creates them (simulator.VPX, the model vcsim
// runs without model flags), and the tickets name vcsim VMs in the field
// the jit-access stage reads.
func TestComposeDemoInventory(t *testing.T) {
	_, runs, sims := demoCompose(t)
	type vm struct{ name, moref, uuid string }
	var vcsim []vm
	simulator.Test(func(ctx context.Context, c *vim25.Client) {
		list, err := find.NewFinder(c).VirtualMachineList(ctx, "/...")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range list {
			var m mo.VirtualMachine
			if err := property.DefaultCollector(c).RetrieveOne(ctx, v.Reference(), []string{"name", "config.instanceUuid"}, &m); err != nil {
				t.Fatal(err)
			}
			vcsim = append(vcsim, vm{m.Name, m.Self.Value, m.Config.InstanceUuid})
		}
	})
	names := map[string]bool{}
	for _, v := range vcsim {
		names[v.name] = true
	}
	var main *config.Config
	for _, r := range runs {
		if len(r.cfg.cfg.Kafka.Brokers) > 0 {
			main = r.cfg.cfg
		}
	}
	for name, sim := range sims {
		switch sim.program {
		case "vcsim":
			for _, f := range vcsimModelFlags {
				if _, ok := sim.set[f]; ok {
					t.Errorf("compose service %s: -%s changes vcsim's inventory away from the one the fixtures name", name, f)
				}
			}
		case "nsxsim":
			var inv []struct {
				ExternalID  string `json:"external_id"`
				DisplayName string `json:"display_name"`
				MoRef       string `json:"moref"`
			}
			readJSON(t, sim.svc.hostPath(sim.value("inventory")), &inv)
			var got []vm
			for _, v := range inv {
				got = append(got, vm{v.DisplayName, v.MoRef, v.ExternalID})
			}
			cmp := func(a, b vm) int { return strings.Compare(a.name, b.name) }
			slices.SortFunc(got, cmp)
			slices.SortFunc(vcsim, cmp)
			if !slices.Equal(got, vcsim) {
				t.Errorf("nsxsim's inventory %v, vcsim's VMs %v", got, vcsim)
			}
		case "znunysim":
			var tickets []struct {
				DynamicFields map[string]string
			}
			readJSON(t, sim.svc.hostPath(sim.value("tickets")), &tickets)
			field := config.JITStage(main).Field
			n := 0
			for i, tk := range tickets {
				if v, ok := tk.DynamicFields[field]; ok {
					n++
					if !names[v] {
						t.Errorf("ticket %d: %s %q is no VM of vcsim", i, field, v)
					}
				}
			}
			if n == 0 {
				t.Errorf("no ticket of znunysim names a VM in %s", field)
			}
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestComposeDemoTenants sends the loadgen service's firewall lines (its
// -tenants and -seed, generated by the real vpipe-loadgen) through vpipe's
// parsers and resolves their labels in the tenant registry the
// tenant-forward service builds: the configured tenants plus what VCD
// discovery reads from vcdsim's fixture (the VCD simulator, over HTTP).
// Every line must reach the tenant the loadgen made it for (its DFW label
// starts with 5 characters of "<tenant>-dcg", its gateway label has 5 of
// "<tenant>-gw" after the parent's 10), and every tenant gets both kinds.
func TestComposeDemoTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs vpipe-loadgen; skipped with -short")
	}
	_, runs, sims := demoCompose(t)
	var lg, vcdSim *simulatorService
	for _, s := range sims {
		switch s.program {
		case "vpipe-loadgen":
			lg = &s
		case "vcdsim":
			vcdSim = &s
		}
	}
	services := runsOf(runs, "tenant-forward")
	if lg == nil || vcdSim == nil || len(services) == 0 {
		t.Fatalf("want the loadgen, vcdsim and a tenant-forward service; loadgen %v, vcdsim %v, tenant-forward %v", lg != nil, vcdSim != nil, services)
	}
	tf := runs[services[0]]
	cfg := tf.cfg.cfg

	// The registry, as `vpipe run --stages tenant-forward` builds it.
	fx, err := vcdsim.LoadFixture(vcdSim.svc.hostPath(vcdSim.value("fixture")))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(vcdsim.New(fx, vcdsim.Options{LinkHeaders: true}))
	defer srv.Close()
	client, err := vcd.New(vcd.Config{URL: srv.URL, Org: cfg.Tenants.VCD.Org, Token: tf.svc.Environment[cfg.Tenants.VCD.TokenEnv]})
	if err != nil {
		t.Fatal(err)
	}
	var discoverErr error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mg, err := tenants.NewManager(ctx, tenants.ManagerConfig{
		Static: cfg.TenantList(),
		Discover: func(ctx context.Context) ([]tenants.Tenant, error) {
			ts, err := client.Discover(ctx)
			discoverErr = err
			return ts, err
		},
	}, nil, nil)
	if err != nil || discoverErr != nil {
		t.Fatalf("tenant registry: %v; discovery from vcdsim: %v", err, discoverErr)
	}
	reg := mg.Registry()
	if p := reg.Problems(); len(p) > 0 {
		t.Errorf("tenant registry problems: %+v", p)
	}

	// The loadgen's lines, over TCP.
	bin := filepath.Join(t.TempDir(), "vpipe-loadgen")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vpipe-loadgen")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/vpipe-loadgen: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const count = 400
	args := []string{"-count", strconv.Itoa(count), "-gen", "dfw,gateway"}
	for _, f := range []string{"tenants", "seed", "hosts"} {
		if v, ok := lg.set[f]; ok {
			args = append(args, "-"+f, v)
		}
	}
	if out, err := exec.Command(bin, append(args, ln.Addr().String())...).CombinedOutput(); err != nil {
		t.Fatalf("vpipe-loadgen %v: %v\n%s", args, err, out)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	parse := record.New(syslog.Options{Location: time.UTC}, vmware.New(), record.NewMetrics(prometheus.NewRegistry()))
	got := map[string]map[string]int{} // tenant → dataset → events
	sc := bufio.NewScanner(conn)
	n, wrong := 0, 0
	for sc.Scan() {
		n++
		e := &pipeline.Event{Original: append([]byte(nil), sc.Bytes()...)}
		parse.ParseRecord(e)
		label := e.TenantLabel()
		want := ""
		for i := 0; i < reg.Len(); i++ {
			id := reg.Tenant(i).ID
			switch {
			case e.Dataset == pipeline.DatasetNSXDFW && strings.HasPrefix(label, pad5(id+"-dcg")):
				want = id
			case e.Dataset == pipeline.DatasetNSXGatewayFW && len(label) >= 15 && label[10:15] == pad5(id+"-gw"):
				want = id
			}
		}
		i, res := reg.Resolve(e.Dataset, label)
		if res != tenants.Resolved || want == "" || reg.Tenant(i).ID != want {
			if wrong++; wrong <= 10 {
				t.Errorf("%s label %q: resolved %v to tenant %d, want %q", e.Dataset, label, res, i, want)
			}
			continue
		}
		if got[want] == nil {
			got[want] = map[string]int{}
		}
		got[want][e.Dataset]++
	}
	if n != count {
		t.Fatalf("read %d lines of %d (%v)", n, count, sc.Err())
	}
	if wrong > 0 {
		t.Errorf("%d of %d lines did not reach their tenant", wrong, n)
	}
	for i := 0; i < reg.Len(); i++ {
		id := reg.Tenant(i).ID
		if got[id][pipeline.DatasetNSXDFW] == 0 || got[id][pipeline.DatasetNSXGatewayFW] == 0 {
			t.Errorf("tenant %s got %v: want DFW and gateway events", id, got[id])
		}
	}
	t.Logf("events by tenant and dataset: %v", got)
}

func pad5(s string) string { return (s + "-----")[:5] }
