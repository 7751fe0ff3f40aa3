package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForensicsFiles checks testdata/forensics: valid-*.yaml must load,
// bad-*.yaml must fail with exactly the problems of its .err file.
func TestForensicsFiles(t *testing.T) {
	checkFixtures(t, "../../testdata/forensics/*.yaml", "valid-", func(t *testing.T, c *Config) {
		if c.Stages.Forensics == nil || len(c.Sources.NSXGroups) == 0 {
			t.Fatal("nsx_groups or forensics missing after load")
		}
	})
}

func TestForensicsDefaults(t *testing.T) {
	c, err := Load("../../testdata/forensics/valid-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := c.Sources.NSXGroups[0]
	st := c.Stages.Forensics
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
		{"aliases", strings.Join(src.Aliases, ","), "nsx-mgr-01,nsx-mgr-02.example.com,192.0.2.11,2001:db8::11"},
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
