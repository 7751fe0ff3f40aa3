package velocloud_test

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/velocloud"
	"github.com/vpipe/vpipe/sinks/ndjson"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const fixtures = "../../testdata/velocloud"

// TestConfigFiles loads testdata/velocloud/config: valid-*.yaml must
// load, bad-*.yaml must fail with exactly the problems in its .err file.
func TestConfigFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "config", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range append(files, filepath.Join(fixtures, "vcosim.yaml")) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			c, err := config.Load(f)
			if !strings.HasPrefix(name, "bad-") {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				if len(c.Sources.VeloCloud) == 0 || c.Stages.NDJSON == nil {
					t.Fatal("no velocloud source or ndjson stage")
				}
				return
			}
			want, rerr := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err == nil {
				t.Fatal("want an error, got none")
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Fatalf("problems differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := config.Load(filepath.Join(fixtures, "config", "valid-token.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		v, n := c.Sources.VeloCloud[0], c.Stages.NDJSON
		if v.Interval.D() != time.Minute || v.Lookback.D() != 15*time.Minute || v.PageLimit != 2048 || v.Concurrency != 2 {
			t.Errorf("source defaults: %+v", v)
		}
		if n.Path != ndjson.DefaultPath || n.Format != "original" || n.Topics[0] != "velocloud" ||
			n.GroupID != "vpipe-ndjson" || n.ReopenOnSIGHUP == nil || !*n.ReopenOnSIGHUP {
			t.Errorf("ndjson defaults: %+v", n)
		}
	})
	t.Run("secrets", func(t *testing.T) {
		dir := t.TempDir()
		tf := filepath.Join(dir, "token")
		os.WriteFile(tf, []byte(" tok\n"), 0o600)
		t.Setenv("VPIPE_TEST_VCO_PW", "pw")
		for _, tc := range []struct {
			src           config.VeloCloudSource
			token, pw     string
			wantErr       bool
			errMentioning string
		}{
			{src: config.VeloCloudSource{Name: "a", TokenFile: tf}, token: "tok"},
			{src: config.VeloCloudSource{Name: "b", Username: "u", PasswordEnv: "VPIPE_TEST_VCO_PW"}, pw: "pw"},
			{src: config.VeloCloudSource{Name: "c", TokenEnv: "VPIPE_TEST_VCO_UNSET"}, wantErr: true, errMentioning: "VPIPE_TEST_VCO_UNSET"},
			{src: config.VeloCloudSource{Name: "d", TokenFile: filepath.Join(dir, "missing")}, wantErr: true, errMentioning: "token_file"},
		} {
			token, pw, err := tc.src.Secrets()
			if (err != nil) != tc.wantErr || token != tc.token || pw != tc.pw {
				t.Errorf("%s: Secrets() = %q, %q, %v", tc.src.Name, token, pw, err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.errMentioning) {
				t.Errorf("%s: error %q does not mention %s", tc.src.Name, err, tc.errMentioning)
			}
		}
	})
}

// TestSourceGolden: a documented, pretty-printed answer (with the real
// event of kurtcms/vco-api-ent-event and one the parser rejects) becomes
// exactly the events of the golden file, sorted by eventTime.
func TestSourceGolden(t *testing.T) {
	answer, err := os.ReadFile(filepath.Join(fixtures, "getEnterpriseEvents.json"))
	if err != nil {
		t.Fatal(err)
	}
	vco := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/portal/rest/enterprise/getEnterprise":
			w.Write([]byte(`{"id": 7, "name": "Acme Corp", "logicalId": "24676352-23ed-4cdd-a0db-52f61810de1b"}`))
		case "/portal/rest/event/getEnterpriseEvents":
			w.Write(answer)
		default:
			http.NotFound(w, r)
		}
	}))
	defer vco.Close()
	addr := startBroker(t)
	h := newHarness(t, addr, "vpipe.")
	cfg := sourceConfig("golden", vco.URL)
	cfg.Account = velocloud.AccountEnterprise
	cfg.Enterprises = []string{"7"}
	cfg.Backfill = 24 * 365 * 10 * time.Hour // back to 2021
	cfg.MaxWindow = 24 * 365 * 10 * time.Hour
	stop := runSource(t, cfg, h.deps(t))
	msgs := readEvents(t, addr, "vpipe.velocloud", 4, 30*time.Second)
	stop()
	if len(msgs) != 4 {
		t.Fatalf("%d events, want 4", len(msgs))
	}
	raw := readRaw(t, addr, "vpipe.velocloud", 4)
	var got []byte
	for _, v := range raw {
		var e pipeline.Event
		if err := e.DecodeJSON(v); err != nil {
			t.Fatal(err)
		}
		e.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // when vpipe read it; varies
		e.Observer.Hostname = "vco.example.test"                // the test server's host varies
		e.ID = string(velocloud.EventID(nil, "vco.example.test", 7, e.VMware.VeloCloud.EventID, e.Original))
		got = append(e.AppendJSON(got), '\n')
	}
	golden := filepath.Join(fixtures, "getEnterpriseEvents.golden.ndjson")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("events differ from %s (-update rewrites it)\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

// readRaw returns the values of the first n records of topic.
func readRaw(t testing.TB, addr, topic string, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range readMessages(t, addr, topic, n) {
		out = append(out, m.Value)
	}
	return out
}
