package vmware

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"github.com/vpipe/vpipe/parsers/internal/golden"
	"github.com/vpipe/vpipe/pipeline"
)

func TestGolden(t *testing.T) {
	golden.Lines(t, "all", golden.Syslog(New()))
}

// TestTopics checks that every real line lands on the topic and with the
// key DESIGN.md gives its dataset.
func TestTopics(t *testing.T) {
	chain := golden.Syslog(New())
	for _, c := range []struct{ line, topic, key string }{
		{"<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow", pipeline.TopicFirewall, "DR-Allow"},
		{"2017-10-19T22:38:08.723Z 58734 INET match PASS domain-c8/1006 OUT 60 TCP 172.18.8.121/36485->172.18.8.119/22 S RULE_TAG", pipeline.TopicFirewall, "RULE_TAG"},
		{`<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`, pipeline.TopicFirewall, "lur-svc.nsxedge-ob-16404613-1-gdefw"},
		{`<14>1 2021-10-14T09:47:57.600Z vcsa01.example.com vpxd 123 - - Event [326221] [1-1] [2021-10-14T09:47:57.491999Z] [com.vmware.cis.tagging.attach] [info] [VSPHERE.LOCAL\Administrator] [example-vm] [326221] [User VSPHERE.LOCAL\Administrator attached tag example-tag to object example-vm]`, pipeline.TopicVCenter, "vcsa01.example.com/example-vm"},
		{`<158>Dec 17 07:21:16 b1-edge1 velocloud.sdwan: ACTION=VCF Deny SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x TYPE=8 FW_POLICY_NAME=test SEGMENT_NAME=Global Segment`, pipeline.TopicVeloCloud, "b1-edge1"},
		{`<182>1 2024-05-15T10:00:00.000Z nsx-mgr-01.corp.example NSX 2326 POLICY [nsx@6876 audit="true" comp="nsx-manager" level="INFO" subcomp="policy" update="true" username="vpipe"] UserName="vpipe", ModuleName="PolicyRealizedState", Operation="TagVirtualMachine", Operation status="success"`, pipeline.TopicNSX, "nsx-mgr-01.corp.example"},
		{"<34>1 2024-05-15T19:41:39.018Z host sshd 123 - - Accepted publickey", pipeline.TopicOther, "host"},
	} {
		e := &pipeline.Event{Original: []byte(c.line), Created: golden.Created}
		chain(e)
		if got := pipeline.TopicFor(e.Dataset); got != c.topic {
			t.Errorf("%s: topic %q, want %q", c.line, got, c.topic)
		}
		if got := string(pipeline.AppendKey(nil, e)); got != c.key {
			t.Errorf("%s: key %q, want %q", c.line, got, c.key)
		}
	}
}

// FuzzParse: the dispatcher never panics, accepted events survive the JSON
// round trip, and a refused message leaves the event untouched.
func FuzzParse(f *testing.F) {
	golden.AddSeeds(f)
	p := New()
	chain := golden.Syslog(p)
	f.Fuzz(func(t *testing.T, line []byte) {
		e := &pipeline.Event{Original: line, Created: golden.Created}
		if p.Parse(e, line) {
			golden.CheckJSON(t, e)
		} else if e.Dataset != "" || e.Error != "" || len(e.Labels) != 0 {
			t.Fatalf("refused but touched: %+v", e)
		}
		e = &pipeline.Event{Original: line, Created: golden.Created, LogSource: golden.LogSource}
		chain(e)
		golden.CheckChain(t, e)
	})
}

// TestConcurrent parses the golden lines from several goroutines at once,
// each with its own events, and compares with a sequential run (run with
// -race: the parsers share no state).
func TestConcurrent(t *testing.T) {
	in, err := os.ReadFile("testdata/all.log")
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(in, []byte("\n")) {
		if len(l) > 0 && l[0] != '#' {
			lines = append(lines, l)
		}
	}
	chain := golden.Syslog(New())
	encode := func(l []byte) string {
		e := &pipeline.Event{Original: l, Created: golden.Created}
		chain(e)
		return string(e.AppendJSON(nil))
	}
	want := make([]string, len(lines))
	for i, l := range lines {
		want[i] = encode(l)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 20; r++ {
				for i, l := range lines {
					if got := encode(l); got != want[i] {
						t.Errorf("line %d differs under concurrency:\n got %s\nwant %s", i, got, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
