package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runMain(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestCLI(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kafka:\n  compression: brotli\nsyslog:\n  - {transport: sctp, address: x}\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{name: "no args", code: 2, stderr: "Usage:"},
		{name: "help", args: []string{"help"}, stdout: "vpipe run [-c FILE]"},
		{name: "unknown", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, stdout: "event schema 1"},
		{name: "validate example", args: []string{"validate", "-c", "../../deploy/vpipe.example.yaml"}, stdout: "vpipe.example.yaml: ok"},
		{name: "validate without file", args: []string{"validate"}, code: 2, stderr: "vpipe validate -c FILE"},
		{name: "validate bad", args: []string{"validate", "-c", bad}, code: 1, noStdout: true,
			stderr: "kafka.compression: \"brotli\" is not one of none, gzip, snappy, lz4, zstd\nsyslog[0].transport: \"sctp\" is not one of udp, tcp, tls\nsyslog[0].address: \"x\": want host:port"},
		{name: "validate missing", args: []string{"validate", "-c", "/nonexistent.yaml"}, code: 1, stderr: "no such file"},
		{name: "validate help", args: []string{"validate", "--help"}, stderr: "every problem with its key path"},
		{name: "run help", args: []string{"run", "-h"}, stderr: "--data-dir"},
		{name: "run bad stage", args: []string{"run", "--stages", "ingest,nope"}, code: 2, stderr: `unknown role "nope"`},
		{name: "run bad flag", args: []string{"run", "--frob"}, code: 2, stderr: "flag provided but not defined"},
		{name: "tap help", args: []string{"tap", "--help"}, stderr: "--from-beginning"},
		{name: "tap without topic", args: []string{"tap"}, code: 2, stderr: "TOPIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			if tt.noStdout && stdout != "" {
				t.Errorf("stdout should be empty: %s", stdout)
			}
		})
	}
}
