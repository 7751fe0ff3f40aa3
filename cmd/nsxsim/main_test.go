package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
)

func TestRunRefuses(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "inv.json")
	os.WriteFile(bad, []byte(`[{"display_name":"no id"}]`), 0o600)
	tests := []struct {
		name  string
		args  []string
		usage bool
	}{
		{"unknown flag", []string{"-nope"}, true},
		{"users", []string{"-users", "admin"}, false},
		{"inventory without external_id", []string{"-inventory", bad}, false},
		{"listen", []string{"-listen", "256.0.0.1:0"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard)
			if err == nil || errors.Is(err, simcmd.ErrUsage) != tt.usage {
				t.Errorf("run(%v) = %v; want an error (usage %v)", tt.args, err, tt.usage)
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	cert, pemBytes, err := selfSigned(nil)
	if err != nil || len(cert.Certificate) != 1 || len(pemBytes) == 0 {
		t.Fatalf("selfSigned: %v", err)
	}
}
