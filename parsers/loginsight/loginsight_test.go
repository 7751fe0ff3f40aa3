package loginsight

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/pipeline"
)

var created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func collect(t *testing.T, body string) ([]*pipeline.Event, error) {
	t.Helper()
	var got []*pipeline.Event
	err := ParseWebhook([]byte(body), created, func(e *pipeline.Event) { got = append(got, e) })
	return got, err
}

func TestSample(t *testing.T) {
	b, err := os.ReadFile("../../testdata/samples/loginsight-webhook.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	if e.Dataset != pipeline.DatasetHTTPGeneric || e.Message != "hello world 1" || e.Rule.Name != "Hello World" ||
		!e.Timestamp.Equal(time.UnixMilli(1451940578545)) || !e.Created.Equal(created) ||
		!strings.HasPrefix(string(e.Original), "{") || !strings.Contains(string(e.Original), `"hello world 1"`) {
		t.Errorf("got %+v", e)
	}
	want := []pipeline.Label{{Key: "Field_1", Value: "Content 1"}, {Key: "Field_2", Value: "Content 2"}, {Key: "alert_url", Value: "https://10.11.12.13/s/8pgzq6"}}
	if len(e.Labels) != 3 || e.Labels[0] != want[0] || e.Labels[1] != want[1] || e.Labels[2] != want[2] {
		t.Errorf("labels %v", e.Labels)
	}
}

func TestTagMessages(t *testing.T) {
	body := `{"AlertType":1,"AlertName":"vTagSync","messages":[
	 {"text":"User VSPHERE.LOCAL\\Administrator attached tag example-tag to object example-vm","timestamp":1634204877491,"fields":[{"name":"com.vmware.vsphere:vc_username","content":"x"}]},
	 {"text":"Event [326222] [1-1] [2021-10-14T09:50:00.1Z] [com.vmware.cis.tagging.detach] [info] [VSPHERE.LOCAL\\Administrator] [] [326222] [User VSPHERE.LOCAL\\Administrator detached tag example-tag from object example-vm]","timestamp":1634205000100},
	 {"text":"hello","timestamp":1},
	 42
	],"HasMoreResults":false}`
	got, err := collect(t, body)
	if err == nil || !strings.Contains(err.Error(), "messages[3]") {
		t.Errorf("err %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("%d events", len(got))
	}
	a, d, g := got[0], got[1], got[2]
	if a.Dataset != pipeline.DatasetVCenterEvent || a.VMware.VCenter.EventType != vcenter.EventTagAttach ||
		a.VMware.VCenter.Tag != "example-tag" || a.VMware.VCenter.ObjectName != "example-vm" || a.User.Name != "Administrator" ||
		a.Labels[0].Key != "com_vmware_vsphere:vc_username" {
		t.Errorf("attach %+v", a)
	}
	if d.VMware.VCenter.EventType != vcenter.EventTagDetach || d.VMware.VCenter.Tag != "example-tag" || d.VMware.VCenter.Key != 326222 ||
		!d.Timestamp.Equal(time.Date(2021, 10, 14, 9, 50, 0, 100e6, time.UTC)) {
		t.Errorf("detach %+v", d)
	}
	if g.Dataset != pipeline.DatasetHTTPGeneric || g.Message != "hello" {
		t.Errorf("generic %+v", g)
	}
}

func TestBadBodies(t *testing.T) {
	for _, body := range []string{"", "null", "[]", "{", `{"messages":"x"}`, `{"AlertName":1}`} {
		got, err := collect(t, body)
		if err == nil || len(got) != 0 {
			t.Errorf("%q: err %v, %d events", body, err, len(got))
		}
	}
	got, err := collect(t, `{"AlertName":"empty","Info":"no messages"}`)
	if err != nil || len(got) != 1 || got[0].Message != "empty: no messages" || got[0].Dataset != pipeline.DatasetHTTPGeneric {
		t.Errorf("err %v events %+v", err, got)
	}
}
