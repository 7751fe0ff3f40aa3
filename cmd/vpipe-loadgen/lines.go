package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/vpipe/vpipe/pipeline/tenants"
)

// Kinds of generated lines: the -gen values.
const (
	kindDFW     = "dfw"     // NSX 4.x distributed firewall, RFC 5424 from ESXi
	kindGateway = "gateway" // NSX Edge gateway firewall, RFC 5424 from datapathd
	kindVCenter = "vcenter" // vCenter events streamed by vpxd
	kindFile    = "file"    // lines of -file, as they are
)

// generatedKinds lists what -gen may name.
var generatedKinds = []string{kindDFW, kindGateway, kindVCenter}

// source produces the records to send. next appends record seq (0, 1, ...)
// to dst and names its kind; it is safe for concurrent use.
type source interface {
	next(dst []byte, seq uint64) ([]byte, string)
	// limit is how many records the source holds when it is sent once
	// (a file), 0 for endless (generated lines).
	limit() uint64
}

// fileSource replays the non-empty lines of a file, in order, starting
// again at the first when they run out.
type fileSource struct{ lines [][]byte }

// readFile loads path's lines, without line endings, dropping empty ones.
func readFile(path string) (*fileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src := &fileSource{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if len(l) > 0 {
			src.lines = append(src.lines, bytes.Clone(l))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(src.lines) == 0 {
		return nil, fmt.Errorf("%s holds no lines", path)
	}
	return src, nil
}

func (s *fileSource) next(dst []byte, seq uint64) ([]byte, string) {
	return append(dst, s.lines[seq%uint64(len(s.lines))]...), kindFile
}

func (s *fileSource) limit() uint64 { return uint64(len(s.lines)) }

// genSource generates NSX and vCenter lines in the formats vpipe parses
// (DESIGN.md; shared/reference/formats.md for the layouts). Record seq is
// of kind kinds[seq%len(kinds)]; its fields derive from seq and the seed,
// so that every record differs (distinct event ids) and a run can be
// repeated exactly, apart from the timestamps, which are the time of
// sending.
type genSource struct {
	kinds   []string
	tenants []tenant
	hosts   int
	seed    uint64
	now     func() time.Time
}

// tenant is one generated VCD tenant with its firewall log labels, made
// as VCD makes them (DESIGN.md, "Multitenancy: VCD log labels"): the DFW
// label is 5 characters of the Data Center Group name and 27 of its UUID,
// the gateway label 10 characters of the parent Org VDC UUID, 5 of the
// gateway name and 5 of the gateway UUID.
type tenant struct {
	name, dfwLabel, gwLabel string
}

// tenantNames name the generated tenants; past the list they are numbered.
var tenantNames = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent", "aperture"}

func newGenSource(kinds []string, nTenants, hosts int, seed uint64) *genSource {
	g := &genSource{kinds: kinds, hosts: max(1, hosts), seed: seed, now: time.Now}
	for i := range max(1, nTenants) {
		name := tenantNames[i%len(tenantNames)]
		if i >= len(tenantNames) {
			name += strconv.Itoa(i / len(tenantNames))
		}
		dcgUUID := uuid(mix(seed, uint64(i), 1))
		vdcUUID := uuid(mix(seed, uint64(i), 2))
		gwUUID := uuid(mix(seed, uint64(i), 3))
		// The labels as vpipe's tenant registry computes them, so that a
		// tenants file listing these groups and gateways resolves them.
		dfw, _ := tenants.DFWLabels(pad5(name+"-dcg"), dcgUUID)
		g.tenants = append(g.tenants, tenant{
			name:     name,
			dfwLabel: dfw,
			gwLabel:  tenants.GatewayLabel(vdcUUID, pad5(name+"-gw"), gwUUID),
		})
	}
	return g
}

func pad5(s string) string { return (s + "-----")[:5] }

func (g *genSource) limit() uint64 { return 0 }

func (g *genSource) next(dst []byte, seq uint64) ([]byte, string) {
	kind := g.kinds[seq%uint64(len(g.kinds))]
	r := mix(g.seed, seq, 0)
	switch kind {
	case kindDFW:
		return g.dfw(dst, seq, r), kind
	case kindGateway:
		return g.gateway(dst, seq, r), kind
	default:
		return g.vcenter(dst, seq, r), kind
	}
}

// dfw appends an NSX 4.x DFW packet log line as ESXi sends it over syslog
// (RFC 5424, APP-NAME FIREWALL-PKTLOG), e.g.
//
//	<13>1 2024-05-15T19:41:25.001Z esxi-03.sddc.example.com FIREWALL-PKTLOG - - - 5ff3a4d0 INET match PASS mainrs/1024 OUT 60 TCP 10.10.10.11/60517->10.10.10.10/443 S acme-2a55d8e4c1f7b1ad8a7e95c07fd
func (g *genSource) dfw(dst []byte, seq, r uint64) []byte {
	t := &g.tenants[r%uint64(len(g.tenants))]
	dst = append(dst, "<13>1 "...)
	dst = g.now().UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, " esxi-"...)
	dst = appendPad2(dst, (r>>8)%uint64(g.hosts))
	dst = append(dst, ".sddc.example.com FIREWALL-PKTLOG - - - "...)
	dst = appendHex32(dst, uint32(r>>16))
	dst = append(dst, " INET match "...)
	dst = append(dst, action(r)...)
	dst = append(dst, " mainrs/"...)
	dst = strconv.AppendUint(dst, 1024+(r>>24)%16, 10)
	dst = append(dst, direction(r)...)
	dst = append(dst, " 60 TCP "...)
	dst = appendTraffic(dst, seq, r)
	dst = append(dst, " S "...)
	return append(dst, t.dfwLabel...)
}

// gateway appends an NSX Edge gateway firewall line (RFC 5424, APP-NAME
// NSX, MSGID FIREWALL, the datapathd structured data), e.g.
//
//	<181>1 2024-05-15T10:00:00.000001Z edge-01.sddc.example.com NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd" s2comp="firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match DROP 1007 IN 60 TCP 198.51.100.7/50000->10.0.0.10/22 S 4e3f7d2a-5acme-1a2b3
func (g *genSource) gateway(dst []byte, seq, r uint64) []byte {
	t := &g.tenants[r%uint64(len(g.tenants))]
	dst = append(dst, "<181>1 "...)
	dst = g.now().UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, " edge-"...)
	dst = appendPad2(dst, (r>>8)%uint64(g.hosts))
	dst = append(dst, `.sddc.example.com NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd" s2comp="firewallpkt" level="INFO"] <1 `...)
	h1, h2 := mix(r, 1, 0), mix(r, 2, 0)
	dst = appendHex32(dst, uint32(h1>>32))
	dst = appendHex32(dst, uint32(h1))
	dst = append(dst, ':')
	dst = appendHex32(dst, uint32(h2>>32))
	dst = appendHex32(dst, uint32(h2))
	dst = append(dst, "> INET reason-match "...)
	dst = append(dst, action(r)...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, 1000+(r>>24)%16, 10)
	dst = append(dst, direction(r)...)
	dst = append(dst, " 60 TCP "...)
	dst = appendTraffic(dst, seq, r)
	dst = append(dst, " S "...)
	return append(dst, t.gwLabel...)
}

// vcenterEvents are the generated vCenter event types with their
// description; %[1]s is the VM, %[2]s the user.
var vcenterEvents = []struct{ typ, desc string }{
	{"vim.event.VmPoweredOnEvent", "%[1]s on esx-01.sddc.example.com in DC1 is powered on"},
	{"vim.event.VmPoweredOffEvent", "%[1]s on esx-01.sddc.example.com in DC1 is powered off"},
	{"vim.event.UserLoginSessionEvent", "User %[2]s@192.0.2.10 logged in as VMware vim-java 1.0"},
	{"com.vmware.cis.tagging.attach", "User %[2]s attached tag PCI to object %[1]s"},
	{"com.vmware.cis.tagging.detach", "User %[2]s detached tag PCI from object %[1]s"},
}

// vcenter appends a vCenter event as vpxd streams it to a remote syslog
// server ("Configure Streaming of Events to a Remote Syslog Server",
// vSphere 8.0), e.g.
//
//	<14>1 2021-10-14T09:47:57.600Z vcsa-01.sddc.example.com vpxd 123 - - Event [326221] [1-1] [2021-10-14T09:47:57.491999Z] [com.vmware.cis.tagging.attach] [info] [VSPHERE.LOCAL\Administrator] [vm-0042] [326221] [User VSPHERE.LOCAL\Administrator attached tag PCI to object vm-0042]
func (g *genSource) vcenter(dst []byte, seq, r uint64) []byte {
	ev := vcenterEvents[(r>>8)%uint64(len(vcenterEvents))]
	now := g.now().UTC()
	vm := "vm-" + strconv.FormatUint(1000+(r>>16)%uint64(64*len(g.tenants)), 10)
	const user = `VSPHERE.LOCAL\Administrator`
	key := strconv.FormatUint(seq+1, 10)
	dst = append(dst, "<14>1 "...)
	dst = now.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, " vcsa-"...)
	dst = appendPad2(dst, (r>>4)%uint64(max(1, g.hosts/8)))
	dst = append(dst, ".sddc.example.com vpxd 123 - - Event ["...)
	dst = append(dst, key...)
	dst = append(dst, "] [1-1] ["...)
	dst = now.AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, "] ["...)
	dst = append(dst, ev.typ...)
	dst = append(dst, "] [info] ["...)
	dst = append(dst, user...)
	dst = append(dst, "] ["...)
	dst = append(dst, vm...)
	dst = append(dst, "] ["...)
	dst = append(dst, key...)
	dst = append(dst, "] ["...)
	dst = fmt.Appendf(dst, ev.desc, vm, user)
	return append(dst, ']')
}

func action(r uint64) string {
	if r>>40&7 == 0 {
		return "DROP"
	}
	return "PASS"
}

func direction(r uint64) string {
	if r>>44&1 == 0 {
		return " OUT"
	}
	return " IN"
}

// appendTraffic appends "src/port->dst/port". The source address comes
// from seq, so that no two records of a run are alike (for the first 16
// million of them; the timestamps differ anyway).
func appendTraffic(dst []byte, seq, r uint64) []byte {
	host := seq % (254 << 16)
	sub := host / 254
	dst = append(dst, "10."...)
	dst = strconv.AppendUint(dst, sub>>8, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, sub&0xff, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, 1+host%254, 10)
	dst = append(dst, '/')
	dst = strconv.AppendUint(dst, 1024+(r>>8)%64000, 10)
	dst = append(dst, "->172.16."...)
	dst = strconv.AppendUint(dst, (r>>48)&0xff, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, 1+(r>>56)%254, 10)
	ports := [...]uint64{443, 22, 53, 80, 3389, 8443}
	dst = append(dst, '/')
	return strconv.AppendUint(dst, ports[(r>>36)%uint64(len(ports))], 10)
}

func appendPad2(dst []byte, n uint64) []byte {
	if n < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendUint(dst, n, 10)
}

func appendHex32(dst []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for s := 28; s >= 0; s -= 4 {
		dst = append(dst, digits[v>>uint(s)&0xf])
	}
	return dst
}

// mix is SplitMix64 over its inputs: cheap, well spread, deterministic.
func mix(seed, a, b uint64) uint64 {
	z := seed ^ a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uuid formats 128 bits derived from r as a lower-case UUID.
func uuid(r uint64) string {
	r2 := mix(r, 0, 7)
	h := appendHex32(appendHex32(appendHex32(appendHex32(nil, uint32(r>>32)), uint32(r)), uint32(r2>>32)), uint32(r2))
	return string(h[:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:])
}
