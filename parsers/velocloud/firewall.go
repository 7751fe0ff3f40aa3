package velocloud

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/vpipe/vpipe/parsers/internal/offset"

	"github.com/vpipe/vpipe/parsers/nsxfw"
	"github.com/vpipe/vpipe/pipeline"
)

// Tag is the syslog TAG (APP-NAME) of VeloCloud Edge firewall logs. The
// admin guide's samples use it; "VCF_FW" and "VELOCLOUD" were not found in
// any source (formats.md §5).
const Tag = "velocloud.sdwan"

// Firewall is the pipeline.FormatParser of VeloCloud Edge firewall logs
// (dataset velocloud.firewall). msg is the syslog MSG after the
// "velocloud.sdwan:" tag, in one of the admin guide's layouts:
//
//	VCF Open xR6FveSQT220kZiTmoYJHA SID=12278 SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x DEST_NAME=Internet-via-gateway-3      (4.0)
//	ACTION=VCF Open FW_POLICY_NAME=test SID=0000012278 SEGMENT_NAME=Global Segment IN="IFNAME" PROTO=ICMP ...                             (4.5)
//	ACTION=VCF Deny SEGMENT=0 IN="IFNAME" PROTO=ICMP SRC=x.x.x.x DST=x.x.x.x TYPE=8 FW_POLICY_NAME=test SEGMENT_NAME=Global Segment    (5.0, 6.0)
//
// Values may contain spaces (a value runs up to the next " KEY=", KEY in
// upper case) and may be quoted. The verb (Open, Close, Deny, Update,
// Allow) is event.action in lower case, with event.outcome success for
// Open and Allow, failure for Deny. PROTO gives network.transport, SRC and
// DST source.ip and destination.ip when they are addresses (the guides
// mask them as x.x.x.x, which is then kept as a label), FW_POLICY_NAME
// rule.ruleset, SEGMENT_NAME vmware.velocloud.segment_name; the syslog
// HOSTNAME is the Edge (vmware.velocloud.edge_name). Every other key
// (SID, SEGMENT, IN, DEST_NAME, TYPE, ...) is kept as a label under its
// name as printed, and so is the unnamed token after the 4.0 verb, whose
// meaning no source gives, as "VCF_ID".
//
// The zero value is ready to use and safe for concurrent use.
type Firewall struct{}

// Parse implements pipeline.FormatParser.
func (Firewall) Parse(e *pipeline.Event, msg []byte) bool {
	msg = bytes.TrimRight(msg, " \t\r\n\x00")
	i := 0
	switch {
	case bytes.HasPrefix(msg, []byte("ACTION=VCF ")):
		i = len("ACTION=VCF ")
	case bytes.HasPrefix(msg, []byte("VCF ")):
		i = len("VCF ")
	default:
		return false
	}
	base := offset.In(e.Original, msg)
	e.Dataset = pipeline.DatasetVeloCloudFW
	e.Observer.Vendor = "VMware"
	e.Observer.Product = "SD-WAN Edge"
	e.Observer.Type = "firewall"
	e.VMware.VeloCloud.EdgeName = e.Syslog.Hostname
	s, end := word(msg, i)
	if s == end {
		fwError(e, base, s, "firewall verb (Open, Close, Deny, ...)")
		return true
	}
	verb := msg[s:end]
	if bytes.IndexByte(verb, '=') >= 0 {
		fwError(e, base, s, "firewall verb (Open, Close, Deny, ...)")
		return true
	}
	switch string(verb) {
	case "Open":
		e.Action, e.Outcome = "open", "success"
	case "Allow":
		e.Action, e.Outcome = "allow", "success"
	case "Deny":
		e.Action, e.Outcome = "deny", "failure"
	case "Close":
		e.Action, e.Outcome = "close", "unknown"
	case "Update":
		e.Action, e.Outcome = "update", "unknown"
	default:
		e.Action, e.Outcome = nsxfw.Lower(e, verb), "unknown"
	}
	i = end
	for first := true; i < len(msg); first = false {
		for i < len(msg) && msg[i] == ' ' {
			i++
		}
		if i >= len(msg) {
			break
		}
		k := keyLen(msg[i:])
		if k == 0 {
			// Not KEY=value: the 4.0 token after the verb, or junk.
			if s, end := word(msg, i); first {
				e.AddLabel("VCF_ID", e.Alias(msg[s:end]))
				i = end
				continue
			}
			fwError(e, base, i, "KEY=value")
			return true
		}
		key := msg[i : i+k]
		vs := i + k + 1
		var val []byte
		if vs < len(msg) && msg[vs] == '"' {
			q := bytes.IndexByte(msg[vs+1:], '"')
			if q < 0 {
				fwError(e, base, len(msg), `'"' closing the value of `+string(key))
				return true
			}
			val = msg[vs+1 : vs+1+q]
			i = vs + 2 + q
		} else {
			ve := valueEnd(msg, vs)
			val = msg[vs:ve]
			i = ve
		}
		field(e, key, val)
	}
	return true
}

// field maps one KEY=value.
func field(e *pipeline.Event, key, val []byte) {
	switch string(key) {
	case "PROTO":
		t, n, ok := nsxfw.Transport(val, -1, false)
		if !ok {
			t = nsxfw.Lower(e, val)
		}
		e.Network.Transport, e.Network.IANANumber = t, n
		return
	case "SRC", "DST":
		if len(val) > 0 {
			if ip, err := netip.ParseAddr(str(val)); err == nil && (isHexOrColon(val[0])) {
				ep := &e.Source
				if key[0] == 'D' {
					ep = &e.Destination
				}
				ep.IP = ip
				if ip.Is4() {
					e.Network.Type = "ipv4"
				} else {
					e.Network.Type = "ipv6"
				}
				return
			}
		}
	case "FW_POLICY_NAME":
		e.Rule.Ruleset = e.Alias(val)
		return
	case "SEGMENT_NAME":
		e.VMware.VeloCloud.SegmentName = e.Alias(val)
		return
	}
	e.AddLabel(e.Alias(key), e.Alias(val))
}

func isHexOrColon(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == ':'
}

// keyLen returns the length of "KEY" when b starts with "KEY=" (upper-case
// letters, digits and '_', starting with a letter), else 0.
func keyLen(b []byte) int {
	for k, c := range b {
		switch {
		case 'A' <= c && c <= 'Z' || c == '_' || k > 0 && '0' <= c && c <= '9':
		case c == '=' && k > 0:
			return k
		default:
			return 0
		}
	}
	return 0
}

// valueEnd returns where the unquoted value starting at b[i] ends: at the
// next " KEY=" or at the end (values contain spaces, formats.md §7).
func valueEnd(b []byte, i int) int {
	for {
		sp := bytes.IndexByte(b[i:], ' ')
		if sp < 0 {
			return len(b)
		}
		j := i + sp
		k := j
		for k < len(b) && b[k] == ' ' {
			k++
		}
		if k < len(b) && keyLen(b[k:]) > 0 {
			return j
		}
		i = k
		if i >= len(b) {
			return j
		}
	}
}

// word returns the space-delimited word at or after b[i].
func word(b []byte, i int) (s, e int) {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	s = i
	for i < len(b) && b[i] != ' ' {
		i++
	}
	return s, i
}

func fwError(e *pipeline.Event, base, at int, want string) {
	var buf [160]byte
	b := append(buf[:0], "velocloud.firewall: expected "...)
	b = append(b, want...)
	b = append(b, " at byte "...)
	if base >= 0 {
		at += base
	}
	b = strconv.AppendInt(b, int64(at), 10)
	e.Error = e.Intern(b)
}
