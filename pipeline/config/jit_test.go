package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// jitSection decodes the stages.jit_access section of a configuration file
// strictly, as Decode does once Stages has the field.
func jitSection(t *testing.T, path string) *JITAccessStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Stages struct {
			JITAccess yaml.Node `yaml:"jit_access"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(&doc.Stages.JITAccess); err != nil {
		t.Fatal(err)
	}
	j := &JITAccessStage{}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return j
}

// TestJITFiles checks every testdata/jit fixture: valid-*.yaml validate,
// bad-*.yaml fail with exactly the problems of their .err file.
func TestJITFiles(t *testing.T) {
	files, err := filepath.Glob("../../testdata/jit/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no jit fixtures: %v", err)
	}
	_, wired := reflect.TypeFor[Stages]().FieldByName("JITAccess")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			j := jitSection(t, f)
			j.fill()
			p := &Problems{}
			j.validate(p)
			if strings.HasPrefix(name, "valid") {
				if len(p.List) > 0 {
					t.Fatalf("want valid, got:\n%v", p)
				}
				if wired {
					if _, err := Load(f); err != nil {
						t.Fatalf("Load: %v", err)
					}
				}
				return
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Error(); got != strings.TrimSpace(string(want)) {
				t.Fatalf("problems differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestJITDefaults(t *testing.T) {
	j := jitSection(t, "../../testdata/jit/valid-vmc.yaml")
	j.fill()
	want := JITAccessStage{
		MaxDuration: Duration(8 * time.Hour), ReconcileInterval: Duration(5 * time.Minute),
		SearchLimit: 10000, GroupID: "vpipe-jit-access",
	}
	if j.MaxDuration != want.MaxDuration || j.ReconcileInterval != want.ReconcileInterval ||
		j.SearchLimit != want.SearchLimit || j.GroupID != want.GroupID {
		t.Errorf("defaults: %+v", j)
	}
	if j.NSX.API != "policy" || j.Znuny.Timeout.D() != 30*time.Second || j.Webhook.SignatureHeader != "X-Vpipe-Signature" || j.Znuny.Auth != "basic" {
		t.Errorf("nested defaults: %+v", j)
	}
	var none *JITAccessStage
	none.fill()
	none.validate(&Problems{})
	if JITStage(&Config{}) != nil {
		t.Error("JITStage of a config without the section")
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte(" s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	t.Setenv("VPIPE_JIT_TEST", "from-env ")
	for _, tc := range []struct {
		name, file, env, want, err string
	}{
		{"file", file, "", "s3cret", ""},
		{"env", "", "VPIPE_JIT_TEST", "from-env", ""},
		{"none", "", "", "", ""},
		{"unset env", "", "VPIPE_JIT_UNSET", "", "VPIPE_JIT_UNSET is not set"},
		{"empty file", empty, "", "", "is empty"},
		{"missing file", filepath.Join(dir, "nope"), "", "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Secret("stages.jit_access.znuny.password", tc.file, tc.env)
			if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Secret = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}
