package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/record"
	"github.com/vpipe/vpipe/parsers/syslog"
	"github.com/vpipe/vpipe/parsers/vmware"
	"github.com/vpipe/vpipe/pipeline"
)

// TestGeneratedLinesParse runs every generated kind through vpipe's own
// parse chain: each line must become an event of its dataset, fully
// parsed, with the fields the stages key on.
func TestGeneratedLinesParse(t *testing.T) {
	parser := record.New(syslog.Options{Location: time.UTC}, vmware.New(), nil)
	tests := []struct {
		kind, dataset string
		check         func(e *pipeline.Event) string
	}{
		{kindDFW, pipeline.DatasetNSXDFW, func(e *pipeline.Event) string {
			if len(e.VMware.NSX.LogLabel) != 32 {
				return "log label " + e.VMware.NSX.LogLabel + " is not 32 characters"
			}
			return ""
		}},
		{kindGateway, pipeline.DatasetNSXGatewayFW, func(e *pipeline.Event) string {
			if len(e.VMware.NSX.LogLabel) != 20 {
				return "log label " + e.VMware.NSX.LogLabel + " is not 20 characters"
			}
			return ""
		}},
		{kindVCenter, pipeline.DatasetVCenterEvent, func(e *pipeline.Event) string {
			if e.VMware.VCenter.EventType == "" || e.VMware.VCenter.ObjectName == "" || e.VMware.VCenter.Server == "" {
				return "event type, object or server missing"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			g := newGenSource([]string{tt.kind}, 5, 4, 42)
			seen := map[string]bool{}
			labels := map[string]bool{}
			var buf []byte
			for seq := range uint64(200) {
				var kind string
				buf, kind = g.next(buf[:0], seq)
				if kind != tt.kind {
					t.Fatalf("kind %q, want %q", kind, tt.kind)
				}
				var e pipeline.Event
				e.Original = append(e.Original, buf...)
				e.Created = time.Now()
				e.LogSource = "192.0.2.1:514"
				parser.ParseRecord(&e)
				if e.Dataset != tt.dataset || e.Error != "" {
					t.Fatalf("line %d: dataset %q error %q, want %q without error\n%s", seq, e.Dataset, e.Error, tt.dataset, buf)
				}
				if msg := tt.check(&e); msg != "" {
					t.Fatalf("line %d: %s\n%s", seq, msg, buf)
				}
				if seen[string(buf)] {
					t.Fatalf("line %d repeats an earlier line:\n%s", seq, buf)
				}
				seen[string(buf)] = true
				labels[e.TenantLabel()] = true
			}
			if tt.dataset != pipeline.DatasetVCenterEvent && len(labels) != 5 {
				t.Errorf("%d distinct log labels over 200 lines, want the 5 tenants'", len(labels))
			}
		})
	}
}

// TestGeneratedMix checks that -gen kinds take turns.
func TestGeneratedMix(t *testing.T) {
	g := newGenSource(generatedKinds, 1, 1, 1)
	var got []string
	for seq := range uint64(6) {
		_, kind := g.next(nil, seq)
		got = append(got, kind)
	}
	if want := "dfw gateway vcenter dfw gateway vcenter"; strings.Join(got, " ") != want {
		t.Errorf("kinds %v, want %s", got, want)
	}
}

func TestReadFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
		err           string
	}{
		{name: "lines", content: "a\r\n\nb\nc", want: []string{"a", "b", "c"}},
		{name: "empty", content: "\n\n", err: "holds no lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lines.log")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := readFile(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for seq := range uint64(len(tt.want) + 1) {
				b, _ := src.next(nil, seq)
				got = append(got, string(b))
			}
			want := append(tt.want, tt.want[0]) // round again
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("lines %q, want %q", got, want)
			}
			if src.limit() != uint64(len(tt.want)) {
				t.Errorf("limit %d, want %d", src.limit(), len(tt.want))
			}
		})
	}
}
