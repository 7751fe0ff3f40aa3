package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJITFiles checks every testdata/jit fixture: valid-*.yaml validate,
// bad-*.yaml fail with exactly the problems of their .err file.
func TestJITFiles(t *testing.T) {
	checkFixtures(t, "../../testdata/jit/*.yaml", "valid", func(t *testing.T, c *Config) {
		if c.Stages.JITAccess == nil {
			t.Fatal("jit_access missing after load")
		}
	})
}

func TestJITDefaults(t *testing.T) {
	c, err := Load("../../testdata/jit/valid-vmc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j := c.Stages.JITAccess
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
