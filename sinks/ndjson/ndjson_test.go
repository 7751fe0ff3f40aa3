package ndjson_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/metrictest"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/sinks/ndjson"
)

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", 150)
	tests := []struct {
		in, want string
	}{
		{"Acme", "Acme"},
		{"Acme Corp", "Acme%20Corp"},
		{"a/b", "a%2Fb"},
		{"a-b", "a-b"},
		{"../../etc", "%2E.%2F..%2Fetc"},
		{"..", "%2E."},
		{".", "%2E"},
		{".hidden", "%2Ehidden"},
		{"v1.2", "v1.2"},
		{"", "%empty"},
		{"%empty", "%25empty"},
		{"Café", "Caf%C3%A9"},
		{"東京", "%E6%9D%B1%E4%BA%AC"},
		{"line\nbreak\x00", "line%0Abreak%00"},
		{`back\slash`, "back%5Cslash"},
		{"under_score", "under_score"},
		{"100%", "100%25"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := ndjson.Sanitize(tc.in); got != tc.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		got := ndjson.Sanitize(long)
		if len(got) > 200 || !strings.Contains(got, "%~") {
			t.Errorf("Sanitize(long) = %q (%d bytes)", got, len(got))
		}
		if other := ndjson.Sanitize(long + "x"); other == got {
			t.Errorf("two long names map to %q", got)
		}
	})
	t.Run("injective", func(t *testing.T) {
		seen := map[string]string{}
		for _, in := range []string{"a/b", "a-b", "a_b", "a b", "a%2Fb", "a.b", ".a", "%2Ea", "", "%empty", "%", "%25"} {
			out := ndjson.Sanitize(in)
			if prev, dup := seen[out]; dup {
				t.Errorf("%q and %q both map to %q", prev, in, out)
			}
			seen[out] = in
			if strings.ContainsAny(out, "/\\\x00") || out == "." || out == ".." || strings.HasPrefix(out, ".") {
				t.Errorf("%q maps to the unsafe %q", in, out)
			}
		}
	})
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{ndjson.DefaultPath, true},
		{"{organization.name|organization.id}/{date}.json", true},
		{"tenants/{organization.id}/fw-{date}.ndjson", true},
		{"{kafka.topic}/{kafka.key}.json", true},
		{"", false},
		{"/abs/{organization.name}", false},
		{"../{organization.name}", false},
		{"a//b", false},
		{"a/./b", false},
		{"{nope}/x", false},
		{"{organization.name", false},
		{"organization.name}", false},
		{`a\b`, false},
		{"{organization.name}/", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			err := ndjson.CheckPath(tc.path)
			if (err == nil) != tc.ok {
				t.Errorf("CheckPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
			}
		})
	}
}

// vcoRecord is a record of a VCO event of an enterprise, as the source
// publishes it.
func vcoRecord(enterprise string, id int) stage.Record {
	orig := fmt.Sprintf(`{"id":%d,"eventTime":"2026-01-02T03:04:05.000Z","event":"EDGE_UP","category":"EDGE","severity":"NOTICE","message":"Edge up","detail":null,"enterpriseUsername":null,"edgeName":"b1-edge1","segmentName":null}`, id)
	e := &pipeline.Event{
		Timestamp:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ID:           fmt.Sprintf("ev-%d", id),
		Dataset:      pipeline.DatasetVeloCloudEvent,
		Original:     []byte(orig),
		Organization: pipeline.Organization{ID: "7", Name: enterprise},
	}
	e.VMware.VeloCloud.EventID = int64(id)
	e.VMware.VeloCloud.EnterpriseName = enterprise
	return stage.Record{Msg: kafka.Message{Topic: "vpipe.velocloud", Key: []byte("7")}, Event: e}
}

func records(enterprise string, from, to int) []stage.Record {
	var out []stage.Record
	for i := from; i < to; i++ {
		out = append(out, vcoRecord(enterprise, i))
	}
	return out
}

func open(t testing.TB, cfg ndjson.Config) (*ndjson.Sink, *prometheus.Registry) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	s, err := ndjson.Open(cfg, ndjson.NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

func write(t testing.TB, s *ndjson.Sink, recs []stage.Record) {
	t.Helper()
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// lines reads a file's lines.
func lines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// vcoIDs returns the "id" of each VCO JSON line.
func vcoIDs(t testing.TB, ls []string) []int {
	t.Helper()
	var out []int
	for _, l := range ls {
		var v struct{ ID int }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, v.ID)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestLayout: the seed's layout, one file per enterprise, unsafe names
// mapped to safe directories under dir and nowhere else.
func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, ndjson.Config{Dir: filepath.Join(dir, "events")})
	names := []string{"Acme Corp", "../../etc", "a/b", "", "Café", "..", "a-b"}
	var batch []stage.Record
	for i, n := range names {
		batch = append(batch, records(n, 10*i, 10*i+3)...)
	}
	write(t, s, batch)
	for i, n := range names {
		path := filepath.Join(dir, "events", ndjson.Sanitize(n), "events.json")
		if got, want := vcoIDs(t, lines(t, path)), seq(10*i, 10*i+3); !slices.Equal(got, want) {
			t.Errorf("%q: ids %v, want %v", n, got, want)
		}
	}
	// Nothing escaped dir/events.
	var outside []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() && !strings.HasPrefix(p, filepath.Join(dir, "events")+string(filepath.Separator)) {
			outside = append(outside, p)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("files outside the dir: %v", outside)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "events"))
	if len(ents) != len(names) {
		t.Errorf("%d directories, want %d (one per name)", len(ents), len(names))
	}
}

// TestFormats: original writes the VCO JSON object as it was; event the
// normalised event; an original that is not JSON becomes a JSON string.
func TestFormats(t *testing.T) {
	multi := vcoRecord("x", 1)
	multi.Event.Original = []byte("{\n  \"id\": 1,\n  \"event\": \"EDGE_UP\"\n}")
	syslogRec := vcoRecord("x", 2)
	syslogRec.Event.Dataset = pipeline.DatasetSyslogGeneric
	syslogRec.Event.Original = []byte(`<14>1 2026-01-02T03:04:05Z host app - - - hi "there"`)
	tests := []struct {
		name   string
		format string
		rec    stage.Record
		want   string
	}{
		{"original", ndjson.FormatOriginal, vcoRecord("x", 5), string(vcoRecord("x", 5).Event.Original)},
		{"original multi-line", ndjson.FormatOriginal, multi, `{"id":1,"event":"EDGE_UP"}`},
		{"original not json", ndjson.FormatOriginal, syslogRec, `"<14>1 2026-01-02T03:04:05Z host app - - - hi \"there\""`},
		{"event", ndjson.FormatEvent, vcoRecord("x", 5), string(vcoRecord("x", 5).Event.AppendJSON(nil))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, ndjson.Config{Dir: dir, Format: tc.format, Path: "f.json"})
			write(t, s, []stage.Record{tc.rec})
			got := lines(t, filepath.Join(dir, "f.json"))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("lines %q, want [%q]", got, tc.want)
			}
			if !json.Valid([]byte(got[0])) {
				t.Errorf("line is not JSON: %q", got[0])
			}
		})
	}
}

// TestDedupe: a replayed batch, a partly replayed one and duplicates
// within a batch are written once, also after the sink is reopened (the
// ids come back from the file's tail), in both formats.
func TestDedupe(t *testing.T) {
	for _, format := range []string{ndjson.FormatOriginal, ndjson.FormatEvent} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			cfg := ndjson.Config{Dir: dir, Format: format}
			s, reg := open(t, cfg)
			write(t, s, records("Acme", 0, 10))
			write(t, s, records("Acme", 0, 10))                                     // replay
			write(t, s, append(records("Acme", 5, 15), records("Acme", 14, 16)...)) // overlap, and a dup inside
			if got := metrictest.Sum(t, reg, "vpipe_ndjson_duplicates_total"); got != 10+5+1 {
				t.Errorf("duplicates = %v, want 16", got)
			}
			s.Close()
			s, _ = open(t, cfg) // a restart: ids from the tail
			write(t, s, records("Acme", 12, 20))
			path := filepath.Join(dir, "Acme", "events.json")
			if got, want := vcoIDs(t, lines(t, path)), seq(0, 20); !slices.Equal(got, want) && format == ndjson.FormatOriginal {
				t.Errorf("ids %v, want %v", got, want)
			}
			if n := len(lines(t, path)); n != 20 {
				t.Errorf("%d lines, want 20", n)
			}
		})
	}
}

// TestTornTail: a line cut by a crash is removed when the file is opened,
// and the batch written again completes it.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Acme", "events.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	var b []byte
	for _, r := range records("Acme", 0, 3) {
		b = append(append(b, r.Event.Original...), '\n')
	}
	b = append(b, `{"id":3,"eventTi`...)
	os.WriteFile(path, b, 0o644)
	s, reg := open(t, ndjson.Config{Dir: dir})
	write(t, s, records("Acme", 2, 5))
	if got, want := vcoIDs(t, lines(t, path)), seq(0, 5); !slices.Equal(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	if got := metrictest.Sum(t, reg, "vpipe_ndjson_torn_bytes_total"); got != float64(len(`{"id":3,"eventTi`)) {
		t.Errorf("torn bytes = %v", got)
	}
}

// TestRotation: by size and by age, keeping MaxFiles rotated files, and
// the dedupe window survives rotation and a restart right after it.
func TestRotation(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		dir := t.TempDir()
		line := len(vcoRecord("Acme", 10).Event.Original) + 1
		now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { now = now.Add(time.Millisecond); return now }
		cfg := ndjson.Config{Dir: dir, MaxBytes: int64(5 * line), MaxFiles: 2, Now: clock}
		s, reg := open(t, cfg)
		for i := 10; i < 40; i += 3 {
			write(t, s, records("Acme", i, i+3))
		}
		write(t, s, records("Acme", 37, 40)) // a replay after the rotation
		s.Close()
		rotated, _ := filepath.Glob(filepath.Join(dir, "Acme", "events.json.*"))
		if len(rotated) != 2 {
			t.Errorf("%d rotated files, want 2: %v", len(rotated), rotated)
		}
		if got := metrictest.Sum(t, reg, "vpipe_ndjson_rotations_total"); got != 9 {
			t.Errorf("rotations = %v, want 9", got)
		}
		if got := metrictest.Sum(t, reg, "vpipe_ndjson_removed_files_total"); got != 7 {
			t.Errorf("removed = %v, want 7", got)
		}
		var all []int
		for _, f := range append(rotated, filepath.Join(dir, "Acme", "events.json")) {
			all = append(all, vcoIDs(t, lines(t, f))...)
		}
		if want := seq(31, 40); !slices.Equal(all, want) {
			t.Errorf("ids kept %v, want %v", all, want)
		}
		// A restart right after a rotation still knows the last ids.
		s, _ = open(t, cfg)
		write(t, s, records("Acme", 39, 41))
		if got := vcoIDs(t, lines(t, filepath.Join(dir, "Acme", "events.json"))); !slices.Equal(got, seq(37, 41)) {
			t.Errorf("after restart: %v", got)
		}
	})
	t.Run("crash after the rename", func(t *testing.T) {
		dir := t.TempDir()
		s, _ := open(t, ndjson.Config{Dir: dir})
		write(t, s, records("Acme", 0, 4))
		s.Close()
		path := filepath.Join(dir, "Acme", "events.json")
		if err := os.Rename(path, path+".20260102T000000.000000000Z"); err != nil {
			t.Fatal(err)
		}
		s, _ = open(t, ndjson.Config{Dir: dir})
		write(t, s, records("Acme", 2, 6))
		if got := vcoIDs(t, lines(t, path)); !slices.Equal(got, []int{4, 5}) {
			t.Errorf("new file %v, want [4 5]", got)
		}
	})
	t.Run("age", func(t *testing.T) {
		dir := t.TempDir()
		now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
		s, reg := open(t, ndjson.Config{Dir: dir, MaxAge: time.Hour, Now: func() time.Time { return now }})
		write(t, s, records("Acme", 0, 2))
		now = now.Add(59 * time.Minute)
		write(t, s, records("Acme", 2, 4))
		now = now.Add(2 * time.Minute)
		write(t, s, records("Acme", 4, 6))
		if got := metrictest.Sum(t, reg, "vpipe_ndjson_rotations_total"); got != 1 {
			t.Errorf("rotations = %v, want 1", got)
		}
		if got := vcoIDs(t, lines(t, filepath.Join(dir, "Acme", "events.json"))); !slices.Equal(got, []int{4, 5}) {
			t.Errorf("current file %v, want [4 5]", got)
		}
	})
}

// TestReopenOnSIGHUP: logrotate renames the file and sends SIGHUP; the
// sink writes on in a new file and still drops duplicates.
func TestReopenOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	s, reg := open(t, ndjson.Config{Dir: dir})
	stop := s.ReopenOnSignal(syscall.SIGHUP)
	defer stop()
	path := filepath.Join(dir, "Acme", "events.json")
	write(t, s, records("Acme", 0, 3))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for metrictest.Sum(t, reg, "vpipe_ndjson_reopens_total") == 0 {
		write(t, s, records("Acme", 2, 3)) // a duplicate: never written
		if time.Now().After(deadline) {
			t.Fatal("no reopen 10s after SIGHUP")
		}
		time.Sleep(5 * time.Millisecond)
	}
	write(t, s, records("Acme", 2, 5))
	if got := vcoIDs(t, lines(t, path)); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("new file %v, want [3 4]", got)
	}
	if got := vcoIDs(t, lines(t, path+".1")); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("rotated file %v, want [0 1 2]", got)
	}
}

// TestMaxOpenFiles: files beyond the limit are closed and reopened with
// their ids.
func TestMaxOpenFiles(t *testing.T) {
	dir := t.TempDir()
	s, reg := open(t, ndjson.Config{Dir: dir, MaxOpenFiles: 2})
	for round := 0; round < 2; round++ {
		for e := 0; e < 5; e++ {
			write(t, s, records(fmt.Sprint("e", e), 0, 3))
		}
	}
	if got := metrictest.Sum(t, reg, "vpipe_ndjson_open_files"); got != 2 {
		t.Errorf("open files = %v, want 2", got)
	}
	for e := 0; e < 5; e++ {
		if got := vcoIDs(t, lines(t, filepath.Join(dir, fmt.Sprint("e", e), "events.json"))); !slices.Equal(got, []int{0, 1, 2}) {
			t.Errorf("e%d: %v", e, got)
		}
	}
}

// TestGenericTemplate: any topic's events to per-key files.
func TestGenericTemplate(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, ndjson.Config{Dir: dir, Path: "{kafka.topic}/{organization.name|organization.id}/{date}.ndjson", Format: ndjson.FormatEvent})
	r := vcoRecord("", 1)
	r.Event.Organization.Name = ""
	write(t, s, []stage.Record{r, vcoRecord("Acme", 2)})
	for _, p := range []string{"vpipe.velocloud/7/2026-01-02.ndjson", "vpipe.velocloud/Acme/2026-01-02.ndjson"} {
		if ls := lines(t, filepath.Join(dir, p)); len(ls) != 1 {
			t.Errorf("%s: %d lines", p, len(ls))
		}
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, ndjson.Config{Dir: dir})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, records("a", 0, 1)); err == nil {
		t.Error("cancelled context: no error")
	}
	// A file where a directory must go.
	os.WriteFile(filepath.Join(dir, "blocked"), nil, 0o644)
	if err := s.Write(context.Background(), records("blocked", 0, 1)); err == nil {
		t.Error("unwritable path: no error")
	}
	s.Close()
	if err := s.Write(context.Background(), records("a", 0, 1)); err == nil {
		t.Error("Write after Close: no error")
	}
	if _, err := ndjson.Open(ndjson.Config{Dir: dir, Format: "xml"}, nil, nil); err == nil {
		t.Error("bad format accepted")
	}
}

func ndjsonRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// TestDefaultPathFallback: a VCO event from the webhook route has no
// organization; the default path takes its enterprise name.
func TestDefaultPathFallback(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, ndjson.Config{Dir: dir})
	r := vcoRecord("Acme", 1)
	r.Event.Organization = pipeline.Organization{}
	write(t, s, []stage.Record{r, vcoRecord("Acme", 2)})
	if got := vcoIDs(t, lines(t, filepath.Join(dir, "Acme", "events.json"))); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("ids %v, want [1 2]", got)
	}
}
