package config

import (
	"testing"
)

// TestVCenterFiles checks every testdata/vcenter fixture: valid-*.yaml
// validate, bad-*.yaml fail with exactly the problems of their .err file.
func TestVCenterFiles(t *testing.T) {
	checkFixtures(t, "../../testdata/vcenter/*.yaml", "valid", func(t *testing.T, c *Config) {
		if c.Stages.TagSync == nil || c.VCenterByName(c.Stages.TagSync.VCenter) == nil {
			t.Fatal("tag_sync or its vCenter missing after load")
		}
	})
}

func TestVCenterDefaults(t *testing.T) {
	c, err := Load("../../testdata/vcenter/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v, ts := c.Sources.VCenter[0], c.Stages.TagSync
	if v.PageSize != 1000 || v.PollInterval.D().String() != "1s" || v.TLS.InsecureSkipVerify || v.MaxBackoff.D().String() != "1m0s" {
		t.Errorf("source defaults: %+v", v)
	}
	if !ts.ReconcileOn() || ts.ReconcileInterval.D().String() != "15m0s" || ts.Concurrency != 8 ||
		ts.GroupID != "vpipe-tag-sync" || ts.NSX.API != "policy" || ts.DryRun {
		t.Errorf("tag_sync defaults: %+v", ts)
	}
	t.Setenv("VCENTER_PASSWORD", " s3cret\n")
	if p, err := v.Password("sources.vcenter[0]"); err != nil || p != "s3cret" {
		t.Errorf("Password = %q, %v", p, err)
	}
}

// TestVCenterExample checks that the example configures the vCenter
// source and tag sync (TestExample checks that it validates), so the
// documented keys stay true.
func TestVCenterExample(t *testing.T) {
	c, err := Load("../../deploy/vpipe.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Stages.TagSync == nil || len(c.Sources.VCenter) != 1 || c.VCenterByName(c.Stages.TagSync.VCenter) == nil {
		t.Fatalf("the example does not configure a vCenter source and tag_sync: %+v", c.Sources)
	}
}
