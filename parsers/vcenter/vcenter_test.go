package vcenter

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

type fields struct {
	eventType, user, domain, tag, object, message, level, err, part string
	key, chain                                                      int64
	ts                                                              string
}

func got(e *pipeline.Event) fields {
	v := e.VMware.VCenter
	f := fields{eventType: v.EventType, user: e.User.Name, domain: e.User.Domain, tag: v.Tag, object: v.ObjectName,
		message: e.Message, level: e.LogLevel, err: e.Error, key: v.Key, chain: v.ChainID}
	for _, l := range e.Labels {
		if l.Key == "vcenter_part" {
			f.part = l.Value
		}
	}
	if !e.Timestamp.IsZero() {
		f.ts = e.Timestamp.Format(time.RFC3339Nano)
	}
	return f
}

func TestParse(t *testing.T) {
	login := `Event [3481177] [1-1] [2019-05-23T09:03:36.213922Z] [vim.event.UserLoginSessionEvent] [info] [VSPHERE.LOCAL\svc-vcenter-user] [] [3481177] [User VSPHERE.LOCAL\svc-vcenter-user@192.168.10.10 logged in as pyvmomi Python/2.7.13 (Linux; 4.9.0-7-amd64; x86_64)]`
	loginWant := fields{eventType: "vim.event.UserLoginSessionEvent", user: "svc-vcenter-user", domain: "VSPHERE.LOCAL",
		message: `User VSPHERE.LOCAL\svc-vcenter-user@192.168.10.10 logged in as pyvmomi Python/2.7.13 (Linux; 4.9.0-7-amd64; x86_64)`,
		level:   "info", key: 3481177, chain: 3481177, ts: "2019-05-23T09:03:36.213922Z"}
	tests := []struct {
		name, msg string
		want      fields
	}{
		{"event line", login, loginWant},
		{"quoted from APP-NAME", "vpxd 123 - - " + login, loginWant},
		{"tag text", `User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm`,
			fields{eventType: EventTagAttach, user: "Administrator", domain: "VSPHERE.LOCAL", tag: "example-tag", object: "example-vm",
				message: `User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm`}},
		{"detach text", `User VSPHERE.LOCAL\Administrator detached tag PCI Zone from object Büro VM 01`,
			fields{eventType: EventTagDetach, user: "Administrator", domain: "VSPHERE.LOCAL", tag: "PCI Zone", object: "Büro VM 01",
				message: `User VSPHERE.LOCAL\Administrator detached tag PCI Zone from object Büro VM 01`}},
		{"tag event line", `Event [326221] [1-1] [2021-10-14T09:47:57.491999Z] [com.vmware.cis.tagging.attach] [info] [VSPHERE.LOCAL\Administrator] [] [326221] [User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm]`,
			fields{eventType: EventTagAttach, user: "Administrator", domain: "VSPHERE.LOCAL", tag: "example-tag", object: "example-vm",
				message: `User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm`, level: "info",
				key: 326221, chain: 326221, ts: "2021-10-14T09:47:57.491999Z"}},
		{"user event quoting a tag sentence is not a tag event", `Event [1] [1-1] [2021-10-14T09:47:57Z] [vim.event.GeneralUserEvent] [user] [u] [vm1] [2] [User a attached tag t to object o]`,
			fields{eventType: "vim.event.GeneralUserEvent", user: "u", object: "vm1", message: "User a attached tag t to object o",
				level: "user", key: 1, chain: 2, ts: "2021-10-14T09:47:57Z"}},
		{"split first part", `Event [7] [1-2] [2021-10-14T09:47:57Z] [vim.event.TaskEvent] [warning] [u] [obj] [7] [a long descr`,
			fields{eventType: "vim.event.TaskEvent", user: "u", object: "obj", message: "a long descr", level: "warning",
				key: 7, chain: 7, part: "1-2", ts: "2021-10-14T09:47:57Z"}},
		{"split second part", `Event [7] [2-2] [iption that goes on]`,
			fields{key: 7, part: "2-2", message: "iption that goes on"}},
		{"truncated", `Event [7] [1-1] [2021-10-14T09:47:57Z] [vim.event.TaskEvent] [info`,
			fields{eventType: "vim.event.TaskEvent", level: "info", key: 7, ts: "2021-10-14T09:47:57Z",
				err: "vcenter.event: expected user at byte 66"}},
		{"CRLF", "User a attached tag t to object o\r\n",
			fields{eventType: EventTagAttach, user: "a", tag: "t", object: "o", message: "User a attached tag t to object o"}},
		{"attach without object", "User a attached tag t",
			fields{eventType: EventTagAttach, user: "a", tag: "t", message: "User a attached tag t",
				err: `vcenter.event: expected "to object" at byte 21`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Event{Original: []byte(tt.msg)}
			if !(Parser{}).Parse(e, e.Original) {
				t.Fatal("not recognised")
			}
			if e.Dataset != pipeline.DatasetVCenterEvent {
				t.Errorf("dataset %q", e.Dataset)
			}
			if g := got(e); g != tt.want {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, msg := range []string{"", "Event", "User logged in", "vpxd 123 - - hello", "hello attached tag x to object y"} {
		e := &pipeline.Event{Original: []byte(msg)}
		if (Parser{}).Parse(e, e.Original) || e.Dataset != "" {
			t.Errorf("accepted %q", msg)
		}
	}
}

func TestParseText(t *testing.T) {
	text := []byte(`2021-10-14T09:47:57Z vc01 vpxd 1 - - Event [326221] [1-1] [2021-10-14T09:47:57.491999Z] [com.vmware.cis.tagging.detach] [info] [VSPHERE.LOCAL\Administrator] [] [326221] [User VSPHERE.LOCAL\Administrator detached tag web from object vm-a]`)
	e := &pipeline.Event{}
	if !ParseText(e, text) {
		t.Fatal("not found")
	}
	if v := e.VMware.VCenter; v.EventType != EventTagDetach || v.Tag != "web" || v.ObjectName != "vm-a" || v.Key != 326221 {
		t.Errorf("got %+v", v)
	}
	e = &pipeline.Event{}
	if !ParseText(e, []byte(`alert: [User VSPHERE.LOCAL\Administrator attached tag web to object vm-b] seen`)) {
		t.Fatal("not found")
	}
	if v := e.VMware.VCenter; v.EventType != EventTagAttach || v.Tag != "web" || v.ObjectName != "vm-b" {
		t.Errorf("got %+v", v)
	}
	if ParseText(&pipeline.Event{}, []byte("hello world")) {
		t.Error("accepted hello world")
	}
}

func TestParseEventJSON(t *testing.T) {
	data, err := os.ReadFile("../../testdata/samples/vcenter-tag-attach-event.json")
	if err != nil {
		t.Fatal(err)
	}
	e := &pipeline.Event{Original: data}
	if err := ParseEventJSON(e, data); err != nil {
		t.Fatal(err)
	}
	want := fields{eventType: EventTagAttach, user: "Administrator", domain: "VSPHERE.LOCAL", tag: "example-tag", object: "example-vm",
		message: `User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm`, level: "info",
		key: 326221, chain: 326221, ts: "2021-10-14T09:47:57.491999Z"}
	if g := got(e); g != want {
		t.Errorf("got  %+v\nwant %+v", g, want)
	}
	for _, bad := range []string{"", "{", "[]", "{}", `{"Key":"x"}`} {
		e := &pipeline.Event{}
		if err := ParseEventJSON(e, []byte(bad)); err == nil || !strings.Contains(err.Error(), "vcenter event JSON") {
			t.Errorf("%q: err %v", bad, err)
		}
		if e.Dataset != "" {
			t.Errorf("%q: event touched", bad)
		}
	}
}
