package nsxfw

import (
	"bytes"
	"unsafe"

	"github.com/vpipe/vpipe/parsers/internal/offset"
	"github.com/vpipe/vpipe/pipeline/jsontext"

	"github.com/vpipe/vpipe/pipeline"
)

// Variant names the product that wrote a DFW packet-log body.
type Variant uint8

// The DFW variants. They share one grammar; NSX-V differs in its ruleset
// (the vCenter cluster MoRef "domain-c<N>"), its decimal filter hash and its
// rule tag (formats.md §3).
const (
	// NSXT is NSX-T 3.x, NSX 4.x and VMware Cloud on AWS: dataset nsx.dfw,
	// fields under vmware.nsx.
	NSXT Variant = iota + 1
	// NSXV is NSX for vSphere 6.x: dataset nsxv.dfw, fields under
	// vmware.nsxv (the log label is encoded as rule_tag).
	NSXV
)

// DFW is the pipeline.FormatParser of NSX-T / NSX 4.x distributed firewall
// packet logs (dataset nsx.dfw). It returns false for NSX-V bodies, which
// package nsxv claims. The zero value is ready to use and safe for
// concurrent use.
type DFW struct{}

// Parse implements pipeline.FormatParser; see ParseDFW.
func (DFW) Parse(e *pipeline.Event, msg []byte) bool { return ParseDFW(e, msg, NSXT) }

// ParseDFW parses a DFW packet log of variant want (0: either) into e and
// reports whether msg was one. msg may be the syslog MSG part or a whole line that
// the envelope parser could not read: a bare local-file line, an RFC 3164
// line, or the VMware Cloud on AWS JSON wrapper {"text":"<99>... FIREWALL_PKTLOG: ..."}.
// It tells NSX-T from NSX-V by the body, not the syslog tag (formats.md §7):
// a "domain-c<N>/" ruleset means NSX-V; without a ruleset, a decimal filter
// hash of other than 8 digits means NSX-V, and so does, last, the
// dfwpktlogs tag; everything else is NSX-T.
//
// It returns false and leaves e untouched when msg is not a DFW line of
// that variant. When the line looks like one but does not fully parse, it
// keeps the fields parsed so far and sets e.Error to
// "<dataset>: expected <token> at byte <offset in e.Original>".
func ParseDFW(e *pipeline.Event, msg []byte, want Variant) bool {
	msg = bytes.TrimRight(msg, " \t\r\n\x00")
	if len(msg) > 0 && msg[0] == '{' {
		return parseVMC(e, msg, want)
	}
	h, body, ok := splitHeader(msg, false)
	if !ok {
		return false
	}
	var r record
	if !r.parse(body, false) {
		return false
	}
	v := classify(&r, h.tag, e.Syslog.AppName)
	if want != 0 && v != want {
		return false
	}
	commitDFW(e, &r, v, offset.In(e.Original, body))
	h.apply(e)
	return true
}

func commitDFW(e *pipeline.Event, r *record, v Variant, base int) {
	if v == NSXV {
		r.commit(e, &e.VMware.NSXV, pipeline.DatasetNSXVDFW, "NSX-V", base)
		return
	}
	r.commit(e, &e.VMware.NSX, pipeline.DatasetNSXDFW, "NSX", base)
}

// classify tells NSX-T from NSX-V (formats.md §3 and §7).
func classify(r *record, tag []byte, app string) Variant {
	if r.ruleID != nil {
		if bytes.HasPrefix(r.ruleset, []byte("domain-c")) {
			return NSXV
		}
		return NSXT
	}
	// The line ended (or broke) before the rule: fall back on the hash,
	// then on the tag.
	if len(r.hash) > 0 && len(r.hash) != 8 && allDigits(r.hash) {
		return NSXV
	}
	if string(tag) == "dfwpktlogs" || app == "dfwpktlogs" {
		return NSXV
	}
	return NSXT
}

// parseVMC reads the VMware Cloud on AWS log forwarder's JSON wrapper
// (formats.md §1, broerman/graylog_content_pack_nsxedge README.md):
//
//	{"sddc_id":"...","text":"<99>2020-05-15T09:08:27.965Z host FIREWALL_PKTLOG: f2c65dd5 INET TERM ... 10.23.150.100\/53408->...","timestamp":1.589533710199E12}
//
// The text is unescaped into e's scratch space and parsed as a header-less
// line; the other members are kept as labels, under their JSON names.
func parseVMC(e *pipeline.Event, msg []byte, want Variant) bool {
	var members [8]member
	n, ok := scanObject(msg, members[:])
	if !ok {
		return false
	}
	ti := -1
	for i := range members[:n] {
		if string(members[i].key) == "text" && members[i].str {
			ti = i
		}
	}
	if ti < 0 {
		return false
	}
	var buf [1024]byte
	un, ok := jsontext.AppendUnescaped(buf[:0], members[ti].val)
	if !ok {
		return false
	}
	// Check the header on the stack copy first, so that a wrapper of
	// something else costs no scratch space. The body is parsed from the
	// interned copy (netip.ParseAddr would move buf to the heap); should
	// it still not be a DFW body, only unused scratch space is left behind.
	if _, _, ok := splitHeader(un, false); !ok {
		return false
	}
	s := e.Intern(un)
	text := unsafe.Slice(unsafe.StringData(s), len(s))
	h, body, _ := splitHeader(text, false)
	var r record
	if !r.parse(body, false) {
		return false
	}
	v := classify(&r, h.tag, "")
	if want != 0 && v != want {
		return false
	}
	commitDFW(e, &r, v, -1)
	if r.errAt >= 0 {
		// Say where in the unwrapped text; offsets in e.Original would
		// be off by every escape before the fault.
		setError(e, e.Dataset, -1, len(text)-len(body)+r.errAt, r.errWant)
	}
	h.apply(e)
	for i := range members[:n] {
		if i == ti {
			continue
		}
		m := &members[i]
		val := e.Alias(m.val)
		if m.str && bytes.IndexByte(m.val, '\\') >= 0 {
			var vb [256]byte
			if u, ok := jsontext.AppendUnescaped(vb[:0], m.val); ok {
				val = e.Intern(u)
			}
		}
		e.AddLabel(e.Alias(m.key), val)
	}
	return true
}
