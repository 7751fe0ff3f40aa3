package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkFixtures loads every file matching glob through Load: a file whose
// name starts with validPrefix must load (and pass check, when given), any
// other must fail with exactly the problems of its .err file beside it.
func checkFixtures(t *testing.T, glob, validPrefix string, check func(t *testing.T, c *Config)) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures match %s: %v", glob, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			c, err := Load(f)
			if strings.HasPrefix(name, validPrefix) {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				if check != nil {
					check(t, c)
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
}

// TestFiles checks testdata/config: valid-*.yaml load, bad-*.yaml fail
// with exactly the problems of their .err file.
func TestFiles(t *testing.T) {
	checkFixtures(t, "../../testdata/config/*.yaml", "valid-", nil)
}

// TestExample checks that the shipped example configuration validates.
func TestExample(t *testing.T) {
	if _, err := Load("../../deploy/vpipe.example.yaml"); err != nil {
		t.Fatalf("deploy/vpipe.example.yaml: %v", err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if len(c.Kafka.Brokers) != 0 || c.Kafka.Embedded.DataDir != "./vpipe-data" {
		t.Errorf("default should use the embedded broker under ./vpipe-data, got %+v", c.Kafka)
	}
	if len(c.Syslog) != 2 || c.Syslog[0].Transport != "udp" || c.Syslog[1].Transport != "tcp" {
		t.Errorf("default listeners: %+v", c.Syslog)
	}
	if c.Syslog[1].IdleTimeout.D() != 5*time.Minute || c.Syslog[1].Name != "tcp:127.0.0.1:5514" {
		t.Errorf("listener defaults not filled: %+v", c.Syslog[1])
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	c, err := Decode(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Address != "127.0.0.1:8080" || len(c.Syslog) != 0 {
		t.Errorf("empty file: %+v", c)
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("VPIPE_TEST_TOKEN", " s3cret\n")
	got, err := HTTP{BearerTokenEnv: "VPIPE_TEST_TOKEN"}.Secret()
	if err != nil || got != "s3cret" {
		t.Fatalf("Secret() = %q, %v", got, err)
	}
	if _, err := (HTTP{BearerTokenEnv: "VPIPE_TEST_UNSET"}).Secret(); err == nil {
		t.Fatal("unset variable: want an error")
	}
}
