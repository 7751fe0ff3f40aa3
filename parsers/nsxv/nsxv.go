// Package nsxv parses NSX for vSphere (NSX-V 6.x) distributed firewall
// packet logs (dataset nsxv.dfw): the dfwpktlogs lines that ESXi hosts
// write, with or without the decimal filter hash (added in NSX-V
// 6.2.3/6.2.4), TERM lines without action and with packet/byte counters,
// and the rule tag at the end of the line (the Org VDC UUID when VMware
// Cloud Director created the rule).
//
// Sources: NSX-V 6.4 Administration Guide "Firewall Logs"
// (https://docs.vmware.com/en/VMware-NSX-Data-Center-for-vSphere/6.4/com.vmware.nsx.admin.doc/GUID-6F9DC53E-222D-464B-8613-AB2D517CE5E3.html),
// blog "NSXv - DFW Log Format Change" (2016-09-17), shared/reference/formats.md §3.
//
// NSX-V shares its grammar with NSX-T (package nsxfw); the two are told
// apart by the body, not the syslog tag (formats.md §7): NSX-V rules carry
// the ruleset "domain-c<N>/", the vCenter cluster MoRef of the section.
// Fields ECS lacks go under vmware.nsxv; the rule tag is vmware.nsxv.rule_tag.
package nsxv

import (
	"bytes"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/vpipe/vpipe/parsers/internal/offset"

	"github.com/vpipe/vpipe/parsers/nsxfw"
	"github.com/vpipe/vpipe/pipeline"
)

// Parser is the pipeline.FormatParser of NSX-V DFW packet logs. The zero
// value is ready to use and safe for concurrent use.
type Parser struct{}

// Parse implements pipeline.FormatParser. It accepts the native body (see
// nsxfw.ParseDFW, which it uses with nsxfw.NSXV) and the relay-rewritten
// CSV form (see ParseCSV).
func (Parser) Parse(e *pipeline.Event, msg []byte) bool {
	return nsxfw.ParseDFW(e, msg, nsxfw.NSXV) || ParseCSV(e, msg)
}

// ParseCSV parses the comma-separated form that some syslog relays make of
// NSX-V DFW lines, known only from the header comment of a third-party
// parser (formats.md §3; repository not identified), so its layout beyond
// that one sample is an assumption:
//
//	dfwpktlogs: PASS, domain-c100488/1279, IN, 48, TCP, 1.1.1.1, 64208, 2.2.2.2, 7,  S
//
// that is action, ruleset/rule, direction, packet length, protocol, source
// IP, source port, destination IP, destination port, TCP flags. Fields
// after the flags are kept as the label "trailing". msg is the MSG part
// after the dfwpktlogs tag, or a line that still holds the tag. It returns
// false, leaving e untouched, unless the first two fields are an action
// and a "domain-c<N>/<rule>".
func ParseCSV(e *pipeline.Event, msg []byte) bool {
	if i := bytes.Index(msg, []byte("dfwpktlogs: ")); i >= 0 && i < 80 {
		msg = msg[i+len("dfwpktlogs: "):]
	}
	msg = bytes.TrimRight(msg, " \t\r\n\x00")
	var f [10][]byte
	var off [10]int
	n, rest := 0, -1
	for i := 0; n < len(f); n++ {
		j := bytes.IndexByte(msg[i:], ',')
		end := len(msg)
		if j >= 0 {
			end = i + j
		}
		s := i
		for s < end && msg[s] == ' ' {
			s++
		}
		f[n], off[n] = bytes.TrimRight(msg[s:end], " \t\r\n\x00"), s
		if j < 0 {
			n++
			break
		}
		i = end + 1
		if n == len(f)-1 {
			rest = i
		}
	}
	if n < 2 || !isUpper(f[0]) || !bytes.HasPrefix(f[1], []byte("domain-c")) || bytes.IndexByte(f[1], '/') < 0 {
		return false
	}
	base := offset.In(e.Original, msg)
	// fail reports field k, or the end of the line for k < 0.
	fail := func(k int, want string) bool {
		at := len(msg)
		if k >= 0 {
			at = off[k]
		}
		var buf [128]byte
		b := append(buf[:0], "nsxv.dfw: expected "...)
		b = append(b, want...)
		if base >= 0 {
			b = append(b, " at byte "...)
			b = strconv.AppendInt(b, int64(base+at), 10)
		} else {
			b = append(b, " at byte "...)
			b = strconv.AppendInt(b, int64(at), 10)
			b = append(b, " of the message"...)
		}
		e.Error = e.Intern(b)
		return true
	}
	e.Dataset = pipeline.DatasetNSXVDFW
	e.Observer.Vendor, e.Observer.Product, e.Observer.Type = "VMware", "NSX-V", "firewall"
	nsx := &e.VMware.NSXV
	e.Action, e.Outcome = nsxfw.Action(e, f[0])
	k := bytes.LastIndexByte(f[1], '/')
	e.Rule.Ruleset, e.Rule.ID = e.Alias(f[1][:k]), e.Alias(f[1][k+1:])
	if !allDigits(f[1][k+1:]) {
		return fail(1, "rule id (digits)")
	}
	if n < 3 {
		return fail(-1, "direction (IN or OUT)")
	}
	switch string(f[2]) {
	case "IN":
		e.Network.Direction = "ingress"
	case "OUT":
		e.Network.Direction = "egress"
	default:
		return fail(2, "direction (IN or OUT)")
	}
	if n < 4 {
		return fail(-1, "packet length")
	}
	l, err := strconv.ParseUint(unsafe.String(unsafe.SliceData(f[3]), len(f[3])), 10, 32)
	if err != nil {
		return fail(3, "packet length")
	}
	nsx.PacketLength = uint32(l)
	if n < 5 {
		return fail(-1, "protocol")
	}
	var ok bool
	e.Network.Transport, e.Network.IANANumber, ok = nsxfw.Transport(f[4], -1, false)
	if !ok {
		e.Network.Transport = nsxfw.Lower(e, f[4])
	}
	endpoint := func(ip, port int, ep *pipeline.Endpoint) bool {
		if n <= ip {
			return fail(-1, "IP address")
		}
		a, err := netip.ParseAddr(e.Alias(f[ip]))
		if err != nil {
			return fail(ip, "IP address")
		}
		ep.IP = a
		if a.Is4() {
			e.Network.Type = "ipv4"
		} else {
			e.Network.Type = "ipv6"
		}
		if n <= port {
			return fail(-1, "port")
		}
		if len(f[port]) > 0 {
			p, err := strconv.ParseUint(e.Alias(f[port]), 10, 16)
			if err != nil {
				return fail(port, "port")
			}
			ep.Port, ep.PortValid = uint16(p), true
		}
		return false
	}
	if endpoint(5, 6, &e.Source) || endpoint(7, 8, &e.Destination) {
		return true
	}
	if n > 9 {
		nsx.TCPFlags = e.Alias(f[9])
	}
	if rest >= 0 && rest < len(msg) {
		e.AddLabel("trailing", e.Alias(bytes.TrimLeft(msg[rest:], " ")))
	}
	return true
}

func isUpper(t []byte) bool {
	if len(t) < 2 {
		return false
	}
	for _, c := range t {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func allDigits(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
