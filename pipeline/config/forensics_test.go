package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var updateForensics = flag.Bool("update-forensics", false, "rewrite testdata/forensics/*.err from the problems found")

// forensicsParts is the part of the configuration forensics.go reads,
// decoded on its own until config.go declares sources.nsx_groups and
// stages.forensics.
type forensicsParts struct {
	Sources struct {
		NSXGroups []NSXGroupsSource `yaml:"nsx_groups"`
	} `yaml:"sources"`
	Stages struct {
		Forensics *ForensicsStage `yaml:"forensics"`
	} `yaml:"stages"`
}

// loadForensics decodes strictly, fills and validates like Decode.
func loadForensics(t *testing.T, data []byte) (*forensicsParts, error) {
	t.Helper()
	var f forensicsParts
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	fillNSXGroups(f.Sources.NSXGroups)
	p := &Problems{}
	validateNSXGroups(p, f.Sources.NSXGroups)
	if st := f.Stages.Forensics; st != nil {
		st.fill(f.Sources.NSXGroups)
		st.validate(p, f.Sources.NSXGroups)
	}
	if len(p.List) > 0 {
		return &f, p
	}
	return &f, nil
}

// TestForensicsFiles checks testdata/forensics: valid-*.yaml must load,
// bad-*.yaml must fail with exactly the problems of its .err file.
func TestForensicsFiles(t *testing.T) {
	files, err := filepath.Glob("../../testdata/forensics/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = loadForensics(t, data)
			if strings.HasPrefix(name, "valid-") {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want problems, got none")
			}
			errFile := strings.TrimSuffix(f, ".yaml") + ".err"
			if *updateForensics {
				os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644)
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Fatalf("problems differ\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestForensicsDefaults(t *testing.T) {
	data, err := os.ReadFile("../../testdata/forensics/valid-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := loadForensics(t, data)
	if err != nil {
		t.Fatal(err)
	}
	src := f.Sources.NSXGroups[0]
	st := f.Stages.Forensics
	tests := []struct {
		name      string
		got, want any
	}{
		{"api", src.API, "policy"},
		{"auth", src.Auth, "basic"},
		{"short id becomes the policy path", src.Groups[0].ID, "/infra/domains/default/groups/quarantine"},
		{"path id kept", src.Groups[1].ID, "/infra/domains/cgw/groups/ids-alert"},
		{"name defaults to id", src.Groups[1].Name, "/infra/domains/cgw/groups/ids-alert"},
		{"stage group by name", st.Groups[0].Group, "/infra/domains/default/groups/quarantine"},
		{"stage group by short id", st.Groups[1].Group, "/infra/domains/cgw/groups/ids-alert"},
		{"webhook timeout", st.Groups[0].Webhook.Timeout.D().String(), "10s"},
		{"snapshot on", st.Snapshot.On(), true},
		{"mirror on", st.Mirror.On(), true},
		{"retention interval", st.Snapshot.RetentionInterval.D().String(), "1h0m0s"},
		{"group id", st.GroupID, "vpipe-forensics"},
		{"batch size", st.BatchSize, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestForensicsSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte(" s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("VPIPE_TEST_FORENSICS", "env-secret")
	tests := []struct {
		name    string
		get     func() (string, error)
		want    string
		wantErr bool
	}{
		{"vcenter from file", ForensicsVCenter{PasswordFile: file}.Password, "s3cret", false},
		{"nsx from env", NSXGroupsSource{PasswordEnv: "VPIPE_TEST_FORENSICS"}.Password, "env-secret", false},
		{"unset env", NSXGroupsSource{PasswordEnv: "VPIPE_TEST_UNSET_X"}.Password, "", true},
		{"empty file", ForensicsVCenter{PasswordFile: empty}.Password, "", true},
		{"no webhook token", ForensicsWebhook{}.Token, "", false},
		{"vmc token", NSXGroupsSource{VMC: NSXGroupsVMC{RefreshTokenFile: file}}.RefreshToken, "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the error shows the secret")
			}
		})
	}
}
