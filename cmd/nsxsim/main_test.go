package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
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

// TestLoadGroups: a -groups file creates Policy groups whose tag condition
// then decides membership, and a group the API refuses fails the start.
func TestLoadGroups(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "groups.json")
	os.WriteFile(good, []byte(`[{"id": "quarantine", "group": {"display_name": "Quarantine",
	  "expression": [{"resource_type": "Condition", "member_type": "VirtualMachine", "key": "Tag", "operator": "EQUALS", "value": "av|infected"}]}}]`), 0o600)
	sim := simulator.New(simulator.Options{Users: map[string]string{"admin": "pw"}})
	sim.AddVM(simulator.VM{ExternalID: "vm-a", DisplayName: "a", Tags: []simulator.Tag{{Scope: "av", Tag: "infected"}}})
	sim.AddVM(simulator.VM{ExternalID: "vm-b", DisplayName: "b"})
	if err := loadGroups(sim, good, map[string]string{"admin": "pw"}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/policy/api/v1/infra/domains/default/groups/quarantine/members/virtual-machines", nil)
	req.SetBasicAuth("admin", "pw")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	var members struct {
		Results []struct {
			ExternalID string `json:"external_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &members); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("members: %d %s", rec.Code, rec.Body)
	}
	if len(members.Results) != 1 || members.Results[0].ExternalID != "vm-a" {
		t.Fatalf("members %+v, want only vm-a", members.Results)
	}

	for name, body := range map[string]string{
		"refused by the API": `[{"id": "g", "group": {"expression": [{"resource_type": "IPAddressExpression"}]}}]`,
		"no id":              `[{"group": {}}]`,
		"unknown field":      `[{"id": "g", "group": {}, "members": []}]`,
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(body), 0o600)
		if err := loadGroups(sim, p, map[string]string{"admin": "pw"}); err == nil {
			t.Errorf("%s: loadGroups accepted %s", name, body)
		}
	}
}
