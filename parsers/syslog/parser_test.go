package syslog

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vpipe/vpipe/pipeline"
)

// fixedNow is the clock of the table tests: 2024-05-20 12:00:00 UTC.
var fixedNow = time.Date(2024, 5, 20, 12, 0, 0, 0, time.UTC)

func testParser() *Parser {
	return NewParser(Options{Now: func() time.Time { return fixedNow }})
}

// result is what a table test compares.
type result struct {
	Msg       string
	Time      string // RFC 3339 nano, "" when zero
	PriValid  bool
	Pri       uint8
	Facility  uint8
	Severity  uint8
	Version   uint8
	Host      string
	App       string
	ProcID    string
	MsgID     string
	SD        string // id{name=value,...} ...
	Error     string // substring expected in e.Error; "" means no error
	ErrorFull string // set by run: the actual error
}

func sdString(sd []pipeline.SDElement) string {
	var b strings.Builder
	for i, el := range sd {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(el.ID)
		b.WriteByte('{')
		for j, p := range el.Params {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p.Name + "=" + p.Value)
		}
		b.WriteByte('}')
	}
	return b.String()
}

func run(p *Parser, e *pipeline.Event, in string) result {
	e.Reset()
	e.Original = append(e.Original[:0], in...)
	msg := p.Parse(e)
	r := result{
		Msg:       string(msg),
		PriValid:  e.Syslog.PriorityValid,
		Pri:       e.Syslog.Priority,
		Facility:  e.Syslog.Facility,
		Severity:  e.Syslog.Severity,
		Version:   e.Syslog.Version,
		Host:      e.Syslog.Hostname,
		App:       e.Syslog.AppName,
		ProcID:    e.Syslog.ProcID,
		MsgID:     e.Syslog.MsgID,
		SD:        sdString(e.Syslog.StructuredData),
		ErrorFull: e.Error,
	}
	if !e.Timestamp.IsZero() {
		r.Time = e.Timestamp.Format(time.RFC3339Nano)
		if e.Timestamp.Location() != time.UTC {
			r.Time += " (not UTC)"
		}
	}
	if e.Observer.Hostname != e.Syslog.Hostname {
		r.Host += " (observer " + e.Observer.Hostname + ")"
	}
	if len(msg) > 0 && !aliases(e.Original, msg) {
		r.Msg += " (not a subslice of Original)"
	}
	return r
}

func aliases(orig, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	start := &orig[0]
	for i := range orig {
		if &orig[i] == &sub[0] {
			_ = start
			return i+len(sub) <= len(orig)
		}
	}
	return false
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want result
	}{
		{
			name: "rfc5424 nsx dfw nil fields",
			in:   "<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow",
			want: result{Msg: "INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow",
				Time: "2024-05-15T19:41:25.001Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1,
				Host: "vcf-w1c1-esxi05.corporate.rjet.com", App: "FIREWALL-PKTLOG"},
		},
		{
			name: "rfc5424 gateway firewall with sd",
			in:   `<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`,
			want: result{Msg: "<1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S",
				Time: "2020-09-21T22:14:12.080427Z", PriValid: true, Pri: 181, Facility: 22, Severity: 5, Version: 1,
				Host: "lur-svc.nsxedge-ob-16404613-1-gdefw", App: "NSX", ProcID: "2802", MsgID: "FIREWALL",
				SD: "nsx@6876{comp=nsx-edge,subcomp=datapathd.firewallpkt,level=INFO}"},
		},
		{
			name: "rfc5424 rfc example 1 with BOM",
			in:   "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
			want: result{Msg: "'su root' failed for lonvick on /dev/pts/8", Time: "2003-10-11T22:14:15.003Z",
				PriValid: true, Pri: 34, Facility: 4, Severity: 2, Version: 1, Host: "mymachine.example.com", App: "su", MsgID: "ID47"},
		},
		{
			name: "rfc5424 negative offset",
			in:   "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
			want: result{Msg: "%% It's time to make the do-nuts.", Time: "2003-08-24T12:14:15.000003Z",
				PriValid: true, Pri: 165, Facility: 20, Severity: 5, Version: 1, Host: "192.0.2.1", App: "myproc", ProcID: "8710"},
		},
		{
			name: "rfc5424 multiple sd elements and no msg",
			in:   `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			want: result{Time: "2003-10-11T22:14:15.003Z", PriValid: true, Pri: 165, Facility: 20, Severity: 5, Version: 1,
				Host: "mymachine.example.com", App: "evntslog", MsgID: "ID47",
				SD: "exampleSDID@32473{iut=3,eventSource=Application,eventID=1011} examplePriority@32473{class=high}"},
		},
		{
			name: "rfc5424 sd escapes",
			in:   `<14>1 2024-01-02T03:04:05Z h a p m [x@1 q="say \"hi\"" b="c:\\dir" r="a\]b" o="\n stays" e=""] body`,
			want: result{Msg: "body", Time: "2024-01-02T03:04:05Z", PriValid: true, Pri: 14, Facility: 1, Severity: 6, Version: 1,
				Host: "h", App: "a", ProcID: "p", MsgID: "m",
				SD: `x@1{q=say "hi",b=c:\dir,r=a]b,o=\n stays,e=}`},
		},
		{
			name: "rfc5424 sd element without params",
			in:   `<14>1 2024-01-02T03:04:05Z h a p m [empty@1][x@1 k="v"] body`,
			want: result{Msg: "body", Time: "2024-01-02T03:04:05Z", PriValid: true, Pri: 14, Facility: 1, Severity: 6, Version: 1,
				Host: "h", App: "a", ProcID: "p", MsgID: "m", SD: "empty@1{} x@1{k=v}"},
		},
		{
			name: "rfc5424 all nil",
			in:   "<0>1 - - - - - -",
			want: result{PriValid: true, Version: 1},
		},
		{
			name: "rfc5424 crlf trimmed",
			in:   "<13>1 2024-05-15T19:41:25Z h a - - - hello\r\n",
			want: result{Msg: "hello", Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a"},
		},
		{
			name: "rfc5424 trailing nul trimmed",
			in:   "<13>1 2024-05-15T19:41:25Z h a - - - hello\x00",
			want: result{Msg: "hello", Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a"},
		},
		{
			name: "rfc5424 invalid utf-8 kept",
			in:   "<13>1 2024-05-15T19:41:25Z h a - - - caf\xe9 \xff\xfe",
			want: result{Msg: "caf\xe9 \xff\xfe", Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a"},
		},
		{
			name: "rfc5424 timestamp without offset is lenient",
			in:   "<13>1 2024-05-15T19:41:25.5 h a - - - m",
			want: result{Msg: "m", Time: "2024-05-15T19:41:25.5Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a",
				Error: `syslog: expected TIME-OFFSET ("Z" or "+hh:mm") at byte 27`},
		},
		{
			name: "rfc5424 too many fraction digits",
			in:   "<13>1 2024-05-15T19:41:25.123456789Z h a - - - m",
			want: result{Msg: "m", Time: "2024-05-15T19:41:25.123456789Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a",
				Error: "syslog: expected at most 6 TIME-SECFRAC digits at byte 32"},
		},
		{
			name: "rfc5424 bad month keeps the other fields",
			in:   "<13>1 2024-13-15T19:41:25Z h a p m - msg",
			want: result{Msg: "msg", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a", ProcID: "p", MsgID: "m",
				Error: "syslog: expected DATE-MONTH (01-12) at byte 11"},
		},
		{
			name: "rfc5424 missing sd",
			in:   "<13>1 2024-05-15T19:41:25Z h a p m hello world",
			want: result{Msg: "hello world", Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a", ProcID: "p", MsgID: "m",
				Error: `syslog: expected STRUCTURED-DATA ("-" or "[") at byte 35`},
		},
		{
			name: "rfc5424 unterminated sd keeps earlier element",
			in:   `<13>1 2024-05-15T19:41:25Z h a p m [ok@1 a="1"][bad@1 a="1`,
			want: result{Msg: `[bad@1 a="1`, Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a", ProcID: "p", MsgID: "m",
				SD: "ok@1{a=1}", Error: `syslog: expected '"' closing PARAM-VALUE at byte 58`},
		},
		{
			name: "rfc5424 sd param without quotes",
			in:   `<13>1 2024-05-15T19:41:25Z h a p m [x@1 a=1] m`,
			want: result{Msg: `[x@1 a=1] m`, Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a", ProcID: "p", MsgID: "m",
				Error: `syslog: expected "=" and '"' after PARAM-NAME at byte 42`},
		},
		{
			name: "rfc5424 no SP after sd",
			in:   `<13>1 2024-05-15T19:41:25Z h a p m [x@1 a="1"]m`,
			want: result{Msg: `m`, Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "h", App: "a", ProcID: "p", MsgID: "m",
				SD: "x@1{a=1}", Error: `syslog: expected SP after STRUCTURED-DATA at byte 46`},
		},
		{
			name: "rfc5424 truncated header",
			in:   "<13>1 2024-05-15T19:41:25Z host app",
			want: result{Time: "2024-05-15T19:41:25Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: "host",
				Error: "syslog: expected SP after APP-NAME at byte 35"},
		},
		{
			name: "rfc5424 hostname too long",
			in:   "<13>1 - " + strings.Repeat("h", 256) + " a - - - m",
			want: result{Msg: "m", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 1, Host: strings.Repeat("h", 256), App: "a",
				Error: "syslog: expected HOSTNAME of at most 255 characters at byte 263"},
		},
		{
			name: "rfc5424 version 2",
			in:   "<13>2 - h a - - - m",
			want: result{Msg: "m", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Version: 2, Host: "h", App: "a",
				Error: "syslog: expected VERSION 1 at byte 4"},
		},
		{
			name: "rfc3164 classic",
			in:   "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
			want: result{Msg: "'su root' failed for lonvick on /dev/pts/8", Time: "2024-10-11T22:14:15Z",
				PriValid: true, Pri: 34, Facility: 4, Severity: 2, Host: "mymachine", App: "su"},
		},
		{
			name: "rfc3164 velocloud",
			in:   `<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3`,
			want: result{Msg: `VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3`,
				Time: "2023-12-17T07:21:16Z", PriValid: true, Pri: 158, Facility: 19, Severity: 6, Host: "b1-edge1", App: "velocloud.sdwan"},
		},
		{
			name: "rfc3164 space padded day and pid",
			in:   "<13>Feb  5 01:02:03 host sshd[4242]: Accepted",
			want: result{Msg: "Accepted", Time: "2024-02-05T01:02:03Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Host: "host", App: "sshd", ProcID: "4242"},
		},
		{
			name: "rfc3164 missing hostname",
			in:   "<13>Feb  5 01:02:03 sshd[4242]: Accepted",
			want: result{Msg: "Accepted", Time: "2024-02-05T01:02:03Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, App: "sshd", ProcID: "4242"},
		},
		{
			name: "rfc3164 no tag",
			in:   "<13>Feb  5 01:02:03 host just text",
			want: result{Msg: "just text", Time: "2024-02-05T01:02:03Z", PriValid: true, Pri: 13, Facility: 1, Severity: 5, Host: "host"},
		},
		{
			name: "rfc3164 iso timestamp esxi",
			in:   "<99>2020-05-15T09:08:27.965Z ip-10-23-254-72.ap-southeast-1.compute.internal FIREWALL_PKTLOG: f2c65dd5 INET TERM 24642815 IN UDP 10.23.150.100/53408->10.123.70.101/53 1/1 72/103",
			want: result{Msg: "f2c65dd5 INET TERM 24642815 IN UDP 10.23.150.100/53408->10.123.70.101/53 1/1 72/103", Time: "2020-05-15T09:08:27.965Z",
				PriValid: true, Pri: 99, Facility: 12, Severity: 3, Host: "ip-10-23-254-72.ap-southeast-1.compute.internal", App: "FIREWALL_PKTLOG"},
		},
		{
			name: "rfc3164 esxi 8 marker without PRI",
			in:   "2026-03-03T00:02:11.678Z No(13) FIREWALL-PKTLOG[1069031]: 8b4a1980 INET match PASS 25577 OUT 84 ICMP 192.168.72.10->192.168.72.17",
			want: result{Msg: "8b4a1980 INET match PASS 25577 OUT 84 ICMP 192.168.72.10->192.168.72.17", Time: "2026-03-03T00:02:11.678Z",
				PriValid: true, Pri: 13, Facility: 1, Severity: 5, App: "FIREWALL-PKTLOG", ProcID: "1069031"},
		},
		{
			name: "rfc3164 esxi 8 marker after hostname keeps PRI",
			in:   "<166>2026-03-03T00:02:11.678Z esx01 In(14) Hostd[12]: hello",
			want: result{Msg: "hello", Time: "2026-03-03T00:02:11.678Z",
				PriValid: true, Pri: 166, Facility: 20, Severity: 6, Host: "esx01", App: "Hostd", ProcID: "12"},
		},
		{
			name: "no PRI with host and tag",
			in:   "2017-04-11T21:09:59.877Z ESXi_FQDN dfwpktlogs: 50047 INET TERM domain-c1/1001 IN TCP RST 10.1.2.3/33491->10.4.5.6/10001 22/14 7684/1070",
			want: result{Msg: "50047 INET TERM domain-c1/1001 IN TCP RST 10.1.2.3/33491->10.4.5.6/10001 22/14 7684/1070", Time: "2017-04-11T21:09:59.877Z",
				Host: "ESXi_FQDN", App: "dfwpktlogs"},
		},
		{
			name: "no PRI bare file line keeps first word",
			in:   "2018-07-03T19:44:09.749Z b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW",
			want: result{Msg: "b6507827 INET match PASS mainrs/1024 IN 52 TCP 192.168.4.3/49627->192.168.4.4/49153 SEW", Time: "2018-07-03T19:44:09.749Z"},
		},
		{
			name: "no PRI edge file line is rfc5424 shaped",
			in:   `2021-08-19T02:37:29.031Z edge01.lab01.one NSX 5055 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd" s2comp="firewallpkt" level="INFO"] <3 a91a35d4acea4843:8b0fb4b8b5fe50a4> INET reason-match DROP 1001 OUT 84 PROTO 1 172.16.20.10->172.16.5.1`,
			want: result{Msg: `<3 a91a35d4acea4843:8b0fb4b8b5fe50a4> INET reason-match DROP 1001 OUT 84 PROTO 1 172.16.20.10->172.16.5.1`,
				Time: "2021-08-19T02:37:29.031Z", Host: "edge01.lab01.one", App: "NSX", ProcID: "5055", MsgID: "FIREWALL",
				SD: "nsx@6876{comp=nsx-edge,subcomp=datapathd,s2comp=firewallpkt,level=INFO}"},
		},
		{
			name: "no PRI five words then broken sd",
			in:   `2021-08-19T02:37:29.031Z a b c d [x y`,
			want: result{Msg: `a b c d [x y`, Time: "2021-08-19T02:37:29.031Z"},
		},
		{
			name: "no PRI classic",
			in:   "Jan 27 16:42:13 ORIGINNAME dfwpktlogs: PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S",
			want: result{Msg: "PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S", Time: "2024-01-27T16:42:13Z",
				Host: "ORIGINNAME", App: "dfwpktlogs"},
		},
		{
			name: "PRI without timestamp",
			in:   "<13>myapp: hello",
			want: result{Msg: "hello", PriValid: true, Pri: 13, Facility: 1, Severity: 5, App: "myapp"},
		},
		{
			name: "PRI and plain text",
			in:   "<13>hello world",
			want: result{Msg: "hello world", PriValid: true, Pri: 13, Facility: 1, Severity: 5},
		},
		{
			name: "not syslog",
			in:   "vpxd 123 - - Event [3481177] [1-1] [2019-05-23T09:03:36.213922Z]",
			want: result{Msg: "vpxd 123 - - Event [3481177] [1-1] [2019-05-23T09:03:36.213922Z]", Error: `syslog: expected "<" (PRI) or a timestamp at byte 0`},
		},
		{
			name: "not syslog trimmed",
			in:   "plain\r\n",
			want: result{Msg: "plain", Error: `syslog: expected "<" (PRI) or a timestamp at byte 0`},
		},
		{
			name: "timestamp-like garbage",
			in:   "2024-99 nope",
			want: result{Msg: "2024-99 nope", Error: `syslog: expected "<" (PRI) or a timestamp at byte 0`},
		},
		{
			name: "empty",
			in:   "\r\n",
			want: result{Error: "syslog: expected a syslog record, got an empty one, at byte 0"},
		},
		{
			name: "bad PRI value",
			in:   "<192>1 - - - - - -",
			want: result{Msg: "<192>1 - - - - - -", Error: "syslog: expected PRIVAL (0 to 191) at byte 1"},
		},
		{
			name: "bad PRI close",
			in:   "<1 55f1af2f487544e9:b0e059132ad7753d> INET",
			want: result{Msg: "<1 55f1af2f487544e9:b0e059132ad7753d> INET", Error: `syslog: expected ">" after PRIVAL at byte 2`},
		},
		{
			name: "PRI only",
			in:   "<13>",
			want: result{PriValid: true, Pri: 13, Facility: 1, Severity: 5},
		},
		{
			name: "binary garbage",
			in:   "\x00\x01\x02\xff<\x80",
			want: result{Msg: "\x00\x01\x02\xff<\x80", Error: `syslog: expected "<" (PRI) or a timestamp at byte 0`},
		},
	}
	p := testParser()
	var e pipeline.Event
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(p, &e, tc.in)
			if tc.want.Error == "" && got.ErrorFull != "" {
				t.Errorf("unexpected error %q", got.ErrorFull)
			}
			if tc.want.Error != "" && !strings.Contains(got.ErrorFull, tc.want.Error) {
				t.Errorf("error = %q, want %q", got.ErrorFull, tc.want.Error)
			}
			got.ErrorFull, got.Error = "", tc.want.Error
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseYear(t *testing.T) {
	tests := []struct {
		now  time.Time
		in   string
		want string
	}{
		{time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), "<13>Dec 31 23:59:00 h t: m", "2024-12-31T23:59:00Z"},
		{time.Date(2024, 12, 31, 23, 59, 0, 0, time.UTC), "<13>Jan  1 00:01:00 h t: m", "2025-01-01T00:01:00Z"},
		{time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), "<13>Jun  1 00:00:00 h t: m", "2024-06-01T00:00:00Z"},
		{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), "<13>Feb 29 10:00:00 h t: m", "2024-02-29T10:00:00Z"},
	}
	var e pipeline.Event
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p := NewParser(Options{Now: func() time.Time { return tc.now }})
			got := run(p, &e, tc.in)
			if got.Time != tc.want {
				t.Errorf("time = %s, want %s", got.Time, tc.want)
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	loc := time.FixedZone("CEST", 2*3600)
	p := NewParser(Options{Location: loc, Now: func() time.Time { return fixedNow }})
	var e pipeline.Event
	for _, tc := range []struct{ in, want string }{
		{"<13>May 15 21:41:25 h t: m", "2024-05-15T19:41:25Z"},
		{"<13>2024-05-15T21:41:25 h t: m", "2024-05-15T19:41:25Z"},
		{"<13>2024-05-15T21:41:25+02:00 h t: m", "2024-05-15T19:41:25Z"},
		{"<13>2024-05-15T21:41:25+0200 h t: m", "2024-05-15T19:41:25Z"},
	} {
		if got := run(p, &e, tc.in); got.Time != tc.want {
			t.Errorf("%s: time = %s, want %s", tc.in, got.Time, tc.want)
		}
	}
}

// TestParseReuse checks that a reused event keeps no state from the
// previous record and reuses its structured-data capacity.
func TestParseReuse(t *testing.T) {
	p := testParser()
	var e pipeline.Event
	run(p, &e, `<13>1 - h a - - [a@1 x="1" y="2"][b@1 z="3"] m`)
	got := run(p, &e, `<13>1 - h a - - [c@1 w="\"4"] m`)
	if got.SD != `c@1{w="4}` {
		t.Errorf("SD = %s", got.SD)
	}
	got = run(p, &e, `<13>1 - h a - - - m`)
	if got.SD != "" {
		t.Errorf("SD = %s", got.SD)
	}
}

func TestParseAllocs(t *testing.T) {
	p := testParser()
	var e pipeline.Event
	for _, line := range []string{
		dfwLine, gatewayLine,
		`<14>1 2024-01-02T03:04:05Z h a p m [x@1 q="say \"hi\""] body`,
		"<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: VCF Open",
		"<13>1 2024-13-15T19:41:25Z h a p m - msg",
		"not syslog",
	} {
		e.Original = append(e.Original[:0], line...)
		p.Parse(&e)
		allocs := testing.AllocsPerRun(100, func() {
			e.Reset()
			e.Original = append(e.Original[:0], line...)
			p.Parse(&e)
		})
		if allocs != 0 {
			t.Errorf("%.40s: %v allocs per Parse", line, allocs)
		}
	}
}
